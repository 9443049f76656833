"""Parametric memory: LoRA adapters distilled from stable memories, stored as safetensors.

On disk (the ``parametric/`` part of a MemCube; ``<db>.adapters/`` next to a vault)::

    <root>/<adapter-name>/adapter_model.safetensors   LoRA weights (peft's key names)
    <root>/<adapter-name>/adapter_config.json         peft LoraConfig fields (r, alpha, targets)
    <root>/<adapter-name>/memvault.json               base-model fingerprint, source memories
                                                      (id + version), training stats, sha256

The first two files are what ``peft`` writes, so a directory also loads with
``PeftModel.from_pretrained``; memvault itself reads them with ``safetensors`` and
``json`` only (never pickle), checks the weights' sha256 and refuses an adapter made for
another base model (:class:`ModelError`): a LoRA delta is meaningless on other weights.

Use::

    store = AdapterStore(root)
    job = start_distill(store, llm, items, "alice", steps=60, progress="tqdm")  # .distill
    adapter = job.result()                 # an Adapter handle (or the training error)
    with adapter.active(llm):              # hot-swapped in, base model restored after
        reply = llm.complete(messages)

Training and adapter switching live in :mod:`.distill` and :mod:`.runtime`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from .. import _validate as check
from .._files import load_safetensors
from ..errors import Conflict, IntegrityError, InvalidInput, ModelError, NotFound, StorageError
from ..models.local import LocalLLM, ModelFingerprint
from . import runtime as lora_runtime
from .runtime import adapter_state, detach

if TYPE_CHECKING:
    import torch

__all__ = ["Adapter", "AdapterStore", "DistilledAdapter", "adapter_state", "detach",
           "llm_adapter_state", "validate_name"]

FORMAT_VERSION = 1
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
META = "memvault.json"
_MAX_JSON_BYTES = 16 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")

#: What chat code calls to key model-state caches: None means the plain base model.
llm_adapter_state = adapter_state


def validate_name(name: Any) -> str:
    """Adapter names are directory names: 1-64 of ``[A-Za-z0-9_.-]``, not starting with '.'."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith("."):
        raise InvalidInput("an adapter name is 1-64 characters of A-Z a-z 0-9 _ . - and does "
                           f"not start or end with '.', got {name!r}", field="name")
    return name


@dataclass(frozen=True)
class DistilledAdapter:
    """A trained adapter in memory (what :func:`~.distill.distill` returns)."""

    name: str
    config: dict[str, Any]
    tensors: dict[str, "torch.Tensor"] = field(repr=False)
    meta: dict[str, Any]


def _config_json(config: Mapping[str, Any]) -> dict[str, Any]:
    """peft's adapter_config.json fields that matter (peft fills in the rest on load)."""
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": int(config["r"]),
            "lora_alpha": float(config["lora_alpha"]), "lora_dropout": 0.0, "bias": "none",
            "target_modules": sorted(config["target_modules"]), "fan_in_fan_out": False,
            "inference_mode": True, "base_model_name_or_path": None}


def _read_config(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    try:
        config = {"r": int(data["r"]), "lora_alpha": float(data["lora_alpha"]),
                  "target_modules": [str(t) for t in data["target_modules"]]}
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"bad adapter config {path}: {exc}") from exc
    if data.get("peft_type", "LORA") != "LORA" or data.get("bias", "none") != "none" \
            or not 1 <= config["r"] <= 256 or not config["target_modules"] \
            or not set(config["target_modules"]) <= set(lora_runtime.TARGETS):
        raise IntegrityError(f"adapter config {path} is not a plain LoRA over "
                             f"{', '.join(lora_runtime.TARGETS)}")
    return config


def _read_json(path: Path) -> dict[str, Any]:
    """A small JSON sidecar (it may come from a foreign MemCube): bounded size and depth."""
    try:
        if path.stat().st_size > _MAX_JSON_BYTES:
            raise IntegrityError(f"{path} is implausibly large")
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"{path} is missing") from exc
    except OSError as exc:
        raise IntegrityError(f"unreadable {path}: {exc}") from exc
    data = check.parse_json(raw, max_depth=16, what=f"adapter file {path}",
                            error=IntegrityError)
    if not isinstance(data, dict):
        raise IntegrityError(f"{path} is not a JSON object")
    return data


class Adapter:
    """A handle on one stored adapter. Cheap: weights are read on first :meth:`active`.

    ``key`` (name + weights digest) identifies these exact weights; it is what
    :func:`llm_adapter_state` returns while the adapter is on, so caches keyed by it
    never mix an adapter's model state with the base model's or another adapter's.
    """

    def __init__(self, path: Path, config: dict[str, Any], meta: dict[str, Any],
                 pager: Any = None) -> None:
        self.path = path
        self.pager = pager
        self.name = path.name
        self.config = config
        self.meta = meta
        self.fingerprint = ModelFingerprint.from_dict(meta["fingerprint"])
        self.weights_sha256 = str(meta["weights_sha256"])
        self.key = f"lora:{self.name}:{self.weights_sha256[:16]}"
        self.id = self.key  # what chat.AdapterHandle calls it

    def __repr__(self) -> str:
        return f"Adapter({self.name!r}, key={self.key!r})"

    @property
    def size_bytes(self) -> int:
        return (self.path / WEIGHTS).stat().st_size

    @property
    def sources(self) -> list[dict[str, Any]]:
        """The memories (id, version) the adapter was distilled from."""
        return list(self.meta.get("sources", []))

    def check_model(self, llm: LocalLLM) -> None:
        """Refuse a model other than the one the adapter was trained on."""
        if self.fingerprint != llm.fingerprint:
            raise ModelError(
                f"adapter {self.name} was trained on model {self.fingerprint.key} "
                f"({self.fingerprint.architecture}, {self.fingerprint.dtype}), not on "
                f"{llm.fingerprint.key}; distil it again for this model", adapter=self.name,
                adapter_fingerprint=self.fingerprint.to_dict(),
                model_fingerprint=llm.fingerprint.to_dict())

    def tensors(self) -> dict[str, "torch.Tensor"]:
        """The weights, read with safetensors after checking their sha256."""
        return load_safetensors(self.path / WEIGHTS, self.weights_sha256, "adapter weights",
                                adapter=self.name)

    def attach(self, llm: LocalLLM) -> None:
        """Load the weights into ``llm`` (switched off) unless they are there already.

        With a pager (:class:`memvault.activation.pager.Pager`, shared with the KV blocks)
        the adapter is a page: loading it may evict blocks or other adapters to stay in
        the budget, and the pager unloads it from the model when it is evicted; one the
        pager did not keep is unloaded when :meth:`active` ends."""
        self.check_model(llm)
        if self.pager is None:
            if not lora_runtime.is_loaded(llm, self.key):
                lora_runtime.install(llm, self.key, self.config, self.tensors())
            return
        key = self.key

        def page_in() -> tuple[str, int]:
            tensors = self.tensors()
            lora_runtime.install(llm, key, self.config, tensors, max_loaded=1_000_000)
            size = _element_size(llm)
            return key, sum(t.numel() for t in tensors.values()) * size

        def evict(_: Any) -> None:
            try:
                lora_runtime.uninstall(llm, key)
            except ModelError:
                pass  # switched on in a generation right now: unloaded when next evicted

        self.pager.get("adapter", (id(llm), key), page_in, on_evict=evict,
                       valid=lambda _: lora_runtime.is_loaded(llm, key))

    @contextmanager
    def active(self, llm: LocalLLM) -> Iterator["Adapter"]:
        """Generate with this adapter inside the block; the exact base model after it.

        Holds ``llm.lock`` for the block (other threads wait instead of seeing the
        adapter). The first use loads the weights; later swaps only flip the LoRA layers.
        """
        with llm.lock:
            self.attach(llm)
            page = ("adapter", (id(llm), self.key))
            if self.pager is not None:
                self.pager.pin(*page)
            try:
                with lora_runtime.enabled(llm, self.key):
                    yield self
            finally:
                if self.pager is not None:
                    self.pager.pin(*page, pinned=False)
                    if not self.pager.holds(*page):  # used unkept: not left in the model
                        lora_runtime.uninstall(llm, self.key)

    def detach_from(self, llm: LocalLLM) -> None:
        """Unload this adapter's weights from ``llm`` (it stays on disk)."""
        lora_runtime.uninstall(llm, self.key)


class AdapterStore:
    """Adapters under one directory, one sub-directory per adapter name. ``pager``: the
    RAM budget the handles' weights count against (None: the runtime's own LRU)."""

    def __init__(self, root: str | Path, *, pager: Any = None) -> None:
        self.root = Path(root)
        self.pager = pager

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and _NAME.match(p.name) and (p / META).is_file())

    def list(self) -> list[Adapter]:
        return [self.get(n) for n in self.names()]

    def get(self, name: str) -> Adapter:
        """The handle of adapter ``name`` (its JSON checked; weights are read on use)."""
        path = self.root / validate_name(name)
        if not (path / META).is_file():
            raise NotFound(f"no adapter named {name!r} in {self.root}", adapter=name)
        meta = _read_json(path / META)
        if meta.get("format") != FORMAT_VERSION or not isinstance(meta.get("fingerprint"),
                                                                   dict):
            raise IntegrityError(f"{path / META}: unknown adapter format {meta.get('format')!r}")
        if not isinstance(meta.get("weights_sha256"), str):
            raise IntegrityError(f"{path / META}: no weights checksum")
        return Adapter(path, _read_config(path / CONFIG), meta, pager=self.pager)

    def save(self, adapter: DistilledAdapter, *, overwrite: bool = False) -> Adapter:
        """Write the three files atomically (temp dir + rename); returns the handle."""
        from safetensors.torch import save

        name = validate_name(adapter.name)
        data = save(adapter.tensors, metadata={"format": "pt", "memvault": str(FORMAT_VERSION)})
        meta = {**adapter.meta, "format": FORMAT_VERSION, "name": name,
                "weights_sha256": hashlib.sha256(data).hexdigest(), "weights_bytes": len(data)}
        final = self.root / name
        if final.exists() and not overwrite:
            raise Conflict(f"adapter {name!r} exists; pass overwrite=True to replace it",
                           adapter=name)
        tmp = self.root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(parents=True)
            _write(tmp / WEIGHTS, data)
            _write(tmp / CONFIG, json.dumps(_config_json(adapter.config), indent=2).encode())
            _write(tmp / META, json.dumps(meta, indent=2, ensure_ascii=False).encode())
            old = None
            if final.exists():
                old = self.root / f".old-{name}-{uuid.uuid4().hex[:8]}"
                os.replace(final, old)
            os.replace(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StorageError(f"cannot write adapter {name} under {self.root}: {exc}") from exc
        return self.get(name)

    def delete(self, name: str) -> None:
        path = self.root / validate_name(name)
        if not path.is_dir():
            raise NotFound(f"no adapter named {name!r} in {self.root}", adapter=name)
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise StorageError(f"cannot delete adapter {name}: {exc}") from exc


def _element_size(llm: LocalLLM) -> int:
    """Bytes per LoRA weight once installed (peft casts them to the model's dtype)."""
    import torch

    return torch.empty(0, dtype=llm.model.dtype).element_size()


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
