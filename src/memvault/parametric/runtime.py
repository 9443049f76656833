"""LoRA adapters on the shared local model: load, hot-swap, disable, without a reload.

One :class:`~memvault.models.local.LocalLLM` is shared by everything that generates in the
process (chat, the fine reader, activation blocks). Parametric memory must not change what
those callers get, so adapters are handled like this:

* LoRA layers are injected into ``llm.model`` *in place* (peft's functional API), so
  ``llm.model`` stays the same object and no second copy of the base weights exists.
* Outside an :func:`enabled` block every LoRA layer is *disabled*; a disabled LoRA layer
  computes exactly its base layer, so the base model's outputs are unchanged bit for bit.
* :func:`enabled` holds ``llm.lock`` (re-entrant) for its whole duration, and
  ``LocalLLM.generate_ids`` takes the same lock: another thread cannot generate while an
  adapter is switched on, and a generation inside the block sees the adapter.
* :func:`adapter_state` names the adapter that is on (None: the base model), so caches of
  model state (activation blocks, KV caches) can be keyed by it: an adapter-active
  generation must never reuse a base-model KV cache, nor the other way round.

Each loaded adapter gets an internal peft name (``mv<n>``); the public identity is the
adapter *key* (name + weights digest) chosen by :mod:`memvault.parametric`.
Up to ``MAX_LOADED`` adapters stay loaded per model (least recently used is dropped); when
the last one goes, the LoRA layers are removed and the original modules put back.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from .._extras import requires
from ..errors import IntegrityError, ModelError
from ..models.local import LocalLLM

if TYPE_CHECKING:
    import torch

__all__ = ["MAX_LOADED", "adapter_state", "detach", "enabled", "install", "is_loaded",
           "loaded_keys", "lora_config", "slot_tensors", "trainable_parameters", "uninstall"]

MAX_LOADED = 8
#: Key prefix peft's ``save_pretrained`` writes for a causal LM; our files use it too, so
#: an adapter directory is also readable by ``PeftModel.from_pretrained``.
FILE_PREFIX = "base_model.model."
#: Keys of adapters being trained start with this; they are never evicted.
TRAINING = "training:"
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class _Slots:
    """Adapters present in one model (all access under ``llm.lock``)."""

    loaded: "OrderedDict[str, str]" = field(default_factory=OrderedDict)  # key -> internal
    active: str | None = None
    counter: int = 0
    layers: list[Any] = field(default_factory=list)  # the peft LoRA layers, once injected


_STATE: "weakref.WeakKeyDictionary[LocalLLM, _Slots]" = weakref.WeakKeyDictionary()
_STATE_LOCK = threading.Lock()


def _slots(llm: LocalLLM) -> _Slots:
    with _STATE_LOCK:
        slots = _STATE.get(llm)
        if slots is None:
            slots = _STATE[llm] = _Slots()
        return slots


def adapter_state(llm: LocalLLM) -> str | None:
    """Key of the adapter switched on in ``llm`` right now, or None for the base model."""
    slots = _STATE.get(llm)
    return None if slots is None else slots.active


def is_loaded(llm: LocalLLM, key: str) -> bool:
    slots = _STATE.get(llm)
    return slots is not None and key in slots.loaded


def loaded_keys(llm: LocalLLM) -> list[str]:
    """Keys of the adapters in ``llm.model``, least recently used first."""
    slots = _STATE.get(llm)
    return [] if slots is None else list(slots.loaded)


def lora_config(config: Mapping[str, Any]) -> Any:
    """A peft ``LoraConfig`` from the few fields memvault writes (anything else ignored)."""
    with requires("local", "LoRA adapters"):
        from peft import LoraConfig

    return LoraConfig(r=int(config["r"]), lora_alpha=float(config["lora_alpha"]),
                      lora_dropout=0.0, bias="none", target_modules=list(config["target_modules"]),
                      task_type="CAUSAL_LM")


def _lora_layers(model: Any) -> list[Any]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def _all_off(slots: _Slots) -> None:
    for layer in slots.layers:
        layer.enable_adapters(False)


def install(llm: LocalLLM, key: str, config: Mapping[str, Any],
            tensors: Mapping[str, "torch.Tensor"] | None = None, *,
            max_loaded: int = MAX_LOADED) -> str:
    """Add an adapter to ``llm.model`` under ``key`` (disabled); returns its internal name.

    ``tensors`` are keyed as in our files (``FILE_PREFIX`` + module path); they must match
    the injected layers exactly (names and shapes), else :class:`IntegrityError` and the
    model is left as it was. ``tensors=None`` keeps peft's initialisation (B = 0: the
    adapter starts as a no-op), which is how training starts. ``max_loaded``: how many
    adapters may stay loaded (least recently used dropped first); a caller that budgets
    residency itself (:class:`memvault.activation.pager.Pager`) passes a large number.
    """
    with requires("local", "LoRA adapters"):
        from peft.functional import get_peft_model_state_dict, inject_adapter_in_model
        from peft.functional import set_peft_model_state_dict

    with llm.lock:
        slots = _slots(llm)
        if key in slots.loaded:
            slots.loaded.move_to_end(key)
            return slots.loaded[key]
        while len(slots.loaded) >= max(1, max_loaded):
            victim = next((k for k in slots.loaded
                           if k != slots.active and not k.startswith(TRAINING)), None)
            if victim is None:
                break
            uninstall(llm, victim)
        slots.counter += 1
        internal = f"mv{slots.counter}"
        try:
            with warnings.catch_warnings():  # "multiple adapters in the model": on purpose
                warnings.simplefilter("ignore", UserWarning)
                inject_adapter_in_model(lora_config(config), llm.model, internal)
            slots.layers = _lora_layers(llm.model)
            _restate(slots)
            if tensors is not None:
                expected = get_peft_model_state_dict(llm.model, adapter_name=internal)
                weights = _match(expected, tensors, key)
                set_peft_model_state_dict(llm.model, weights, adapter_name=internal)
        except IntegrityError:
            _remove(llm, slots, internal)
            raise
        except Exception as exc:  # peft/torch errors
            _remove(llm, slots, internal)
            raise ModelError(f"cannot load adapter {key} into {llm.id}: {exc}") from exc
        _freeze(slots)
        slots.loaded[key] = internal
        return internal


def _match(expected: Mapping[str, "torch.Tensor"], tensors: Mapping[str, "torch.Tensor"],
           key: str) -> dict[str, "torch.Tensor"]:
    got = {name[len(FILE_PREFIX):] if name.startswith(FILE_PREFIX) else name: t
           for name, t in tensors.items()}
    if set(got) != set(expected):
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        raise IntegrityError(f"adapter {key}: tensor names do not fit this model "
                             f"(missing {missing[:3]}, unexpected {extra[:3]})", adapter=key)
    out = {}
    for name, want in expected.items():
        t = got[name]
        if tuple(t.shape) != tuple(want.shape) or not t.is_floating_point():
            raise IntegrityError(f"adapter {key}: {name} has shape {tuple(t.shape)} "
                                 f"{t.dtype}, expected {tuple(want.shape)}", adapter=key)
        out[name] = t.to(want.dtype)
    return out


def _freeze(slots: _Slots) -> None:
    """Loaded adapters are inference-only; training re-enables grads for its own slot."""
    for layer in slots.layers:
        for name in layer.adapter_layer_names:
            for sub in getattr(layer, name).values():
                sub.requires_grad_(False)


def _remove(llm: LocalLLM, slots: _Slots, internal: str) -> None:
    from peft.functional import delete_adapter

    if any(internal in getattr(layer, "lora_A", {}) for layer in slots.layers):
        with warnings.catch_warnings():  # "was active, now deleted": we track activity
            warnings.simplefilter("ignore", UserWarning)
            delete_adapter(llm.model, internal, prefix="lora_")
    getattr(llm.model, "peft_config", {}).pop(internal, None)
    if not slots.loaded or set(slots.loaded.values()) <= {internal}:
        _restore_base_modules(llm, slots)
    else:
        _restate(slots)


def uninstall(llm: LocalLLM, key: str) -> None:
    """Drop one adapter from the model (no-op if it is not loaded)."""
    with llm.lock:
        slots = _slots(llm)
        internal = slots.loaded.get(key)
        if internal is None:
            return
        if slots.active == key:
            raise ModelError(f"adapter {key} is in use and cannot be unloaded now")
        _remove(llm, slots, internal)
        del slots.loaded[key]


def detach(llm: LocalLLM) -> None:
    """Remove every adapter and every LoRA layer: ``llm.model`` is the plain base model."""
    with llm.lock:
        slots = _slots(llm)
        if slots.active is not None:
            raise ModelError(f"adapter {slots.active} is in use; cannot detach now")
        _restore_base_modules(llm, slots)
        slots.loaded.clear()


def _restore_base_modules(llm: LocalLLM, slots: _Slots) -> None:
    model = llm.model
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    slots.layers = []


@contextmanager
def enabled(llm: LocalLLM, key: str, *, trainable: bool = False) -> Iterator[str]:
    """Switch the loaded adapter ``key`` on for the block; the previous state after it.

    Holds ``llm.lock`` throughout. Nested blocks (same thread) restore the outer adapter.
    ``trainable`` turns on gradients for this adapter's weights only (distillation).
    """
    from peft.functional import set_adapter

    with llm.lock:
        slots = _slots(llm)
        internal = slots.loaded.get(key)
        if internal is None:
            raise ModelError(f"adapter {key} is not loaded into {llm.id}")
        previous = slots.active
        slots.loaded.move_to_end(key)
        try:
            if trainable:  # peft's public path: also sets requires_grad (slow, ~0.1 s)
                set_adapter(llm.model, internal, inference_mode=False)
                for layer in slots.layers:
                    layer.enable_adapters(True)
            else:
                _switch(slots, internal)
            slots.active = key
            yield internal
        finally:
            if previous not in slots.loaded:  # an outer adapter unloaded inside the block
                previous = None
            slots.active = previous
            if trainable:
                _all_off(slots)  # also freezes every adapter's weights again
            _switch(slots, None if previous is None else slots.loaded[previous])


def _restate(slots: _Slots) -> None:
    """Put the layers back in the recorded state (after peft touched them)."""
    _switch(slots, None if slots.active is None else slots.loaded[slots.active])


def _switch(slots: _Slots, internal: str | None) -> None:
    """Turn one (frozen) adapter on in every LoRA layer, or all of them off.

    peft's ``set_adapter``/``enable_adapters`` also walk every adapter parameter to set
    ``requires_grad``: ~0.2 s per switch on SmolLM2's 210 LoRA layers, for a flag that
    does not matter at inference (adapters stay frozen outside training). So this sets
    the two layer attributes those methods set, when the layers have them, and falls back
    to the public methods otherwise (another peft version).
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    fast = {"_active_adapter", "_disable_adapters"} <= set(vars(BaseTunerLayer))
    for layer in slots.layers:
        if internal is None:
            if fast:
                layer._disable_adapters = True
            else:
                layer.enable_adapters(False)
        elif fast:
            layer._active_adapter = [internal]
            layer._disable_adapters = False
        else:
            layer.set_adapter(internal, inference_mode=True)
            layer.enable_adapters(True)
    if internal is not None and not fast:
        _freeze(slots)


def trainable_parameters(llm: LocalLLM, key: str) -> list["torch.nn.Parameter"]:
    """The LoRA weights of one loaded adapter (what an optimizer updates)."""
    with llm.lock:
        slots = _slots(llm)
        internal = slots.loaded[key]
        params = []
        for layer in slots.layers:
            for name in layer.adapter_layer_names:
                sub = getattr(layer, name)
                if internal in sub:
                    params.extend(sub[internal].parameters())
        return params


def slot_tensors(llm: LocalLLM, key: str) -> dict[str, "torch.Tensor"]:
    """A detached CPU copy of one adapter's weights, keyed as in our files."""
    from peft.functional import get_peft_model_state_dict

    with llm.lock:
        internal = _slots(llm).loaded[key]
        state = get_peft_model_state_dict(llm.model, adapter_name=internal)
        return {FILE_PREFIX + k: v.detach().to("cpu").clone().contiguous()
                for k, v in state.items()}
