"""Adapters that do not make the model wrong: route by topic, measure retention, refuse.

A LoRA adapter distilled from a few facts memorises them and damages the rest of the
model (bench-lora before this module: general knowledge the base model had, 71 % kept;
issue 26: "What is the capital of France?" -> "Reykjavik"). Training alone cannot
promise the model stays right on every question nobody tested, so the adapter is put in
the path of the questions it was made for only:

* :class:`AdapterGate`: the adapter is on for a query only when the query's embedding
  is close (cosine >= ``threshold``) to one of the adapter's source memories. A question
  about something else runs on the exact base model, so it keeps the base answer bit for
  bit; a question about the scope's facts gets the adapter.
* :func:`measure`: after training, the general-knowledge questions
  (:mod:`.general`) the base model answers right are asked again through the gate with
  the adapter; the share still right is the adapter's *retention*, written into its
  metadata (``meta["retention"]``).
* :func:`servable`: chat refuses, by default, an adapter whose retention was not
  measured or is below :data:`MIN_RETENTION` (0.95).

The base model's answers are computed once per model and kept as JSON beside the
adapters (``<store>/.general-<fingerprint>.json``, never pickle): generation is the cost.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import InvalidInput, ModelError
from ..models.base import Embedder
from ..models.local import LocalLLM
from . import runtime as lora_runtime
from .general import GENERAL_QUESTIONS, correct

if TYPE_CHECKING:
    import torch

__all__ = ["AdapterGate", "DEFAULT_THRESHOLD", "MIN_RETENTION", "base_answers", "gate_for",
           "measure", "replies", "servable"]

#: Retention below this and chat does not serve the adapter (issue 26 part 6's goal).
MIN_RETENTION = 0.95
#: Cosine similarity between a query and the closest source memory above which the
#: adapter is on. Measured in bench-lora (README, parametric section) for the hash and the
#: MiniLM embedders: in-scope questions, held-out phrasings, control people, general.
DEFAULT_THRESHOLD = 0.5
#: Tokens generated per general question (the answer comes first in a short reply).
GENERAL_TOKENS = 12
BATCH = 16


@dataclass(frozen=True)
class AdapterGate:
    """Routes a query to an adapter when it is about the adapter's source memories."""

    embedder: Embedder
    sources: np.ndarray  # (n, dim) unit rows, one per source memory
    threshold: float = DEFAULT_THRESHOLD

    @classmethod
    def from_texts(cls, embedder: Embedder, texts: Sequence[str],
                   threshold: float = DEFAULT_THRESHOLD) -> "AdapterGate":
        if not texts:
            raise InvalidInput("a gate needs at least one source memory", field="sources")
        if not 0.0 <= float(threshold) <= 1.0:
            raise InvalidInput("the gate threshold is a cosine in [0, 1]", field="threshold")
        vectors = np.asarray(embedder.embed(list(texts)), dtype=np.float32)
        return cls(embedder, vectors, float(threshold))

    def score(self, query: str) -> float:
        """Cosine similarity of ``query`` to its closest source memory."""
        q = np.asarray(self.embedder.embed([query]), dtype=np.float32)[0]
        return float(np.max(self.sources @ q))

    def routes(self, query: str) -> bool:
        return self.score(query) >= self.threshold

    def describe(self) -> dict[str, Any]:
        return {"embedder": self.embedder.id, "threshold": self.threshold,
                "sources": int(self.sources.shape[0])}


_GATES: "OrderedDict[tuple[str, str, float], AdapterGate]" = OrderedDict()
_GATES_LOCK = threading.Lock()


def gate_for(key: str, embedder: Embedder, texts: Callable[[], Sequence[str]],
             threshold: float = DEFAULT_THRESHOLD) -> AdapterGate:
    """The gate of adapter ``key`` under ``embedder``, cached (32 most recent): the key
    changes when the weights (and so the sources) change, so a cached gate never lags."""
    cache_key = (key, embedder.id, float(threshold))
    with _GATES_LOCK:
        gate = _GATES.get(cache_key)
        if gate is not None:
            _GATES.move_to_end(cache_key)
            return gate
    gate = AdapterGate.from_texts(embedder, list(texts()), threshold)
    with _GATES_LOCK:
        _GATES[cache_key] = gate
        while len(_GATES) > 32:
            _GATES.popitem(last=False)
    return gate


def replies(llm: LocalLLM, questions: Sequence[str], max_tokens: int = GENERAL_TOKENS,
            batch: int = BATCH, on_batch: Callable[[], None] | None = None) -> list[str]:
    """Greedy replies to single-turn ``questions``, generated in left-padded batches
    (one question at a time costs ~1 s on a CPU core; batches amortise the weights)."""
    import torch

    out: list[str] = []
    pad = int(llm.tokenizer.eos_token_id)
    for start in range(0, len(questions), batch):
        rows = [llm.encode_chat([{"role": "user", "content": q}])[0]
                for q in questions[start:start + batch]]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = r
            mask[i, width - len(r):] = 1
        try:
            with llm.lock, torch.inference_mode():
                gen = llm.model.generate(ids, attention_mask=mask, max_new_tokens=max_tokens,
                                         do_sample=False, temperature=None, top_p=None,
                                         top_k=None, pad_token_id=pad)
        except Exception as exc:
            raise ModelError(f"local generation failed: {exc}") from exc
        out += [llm.decode(g[width:]) for g in gen]
        if on_batch is not None:
            on_batch()
    return out


def _questions_digest(questions: Sequence[tuple[str, Sequence[str]]]) -> str:
    return hashlib.sha256(json.dumps(list(questions)).encode()).hexdigest()[:16]


def _cache_path(llm: LocalLLM, cache_dir: str | Path | None,
                questions: Sequence[tuple[str, Sequence[str]]]) -> Path | None:
    if cache_dir is None:
        return None
    digest = _questions_digest(questions)
    return Path(cache_dir) / f".general-{llm.fingerprint.key}-{digest}.json"


def base_cached(llm: LocalLLM, cache_dir: str | Path | None,
                questions: Sequence[tuple[str, list[str]]] = GENERAL_QUESTIONS) -> bool:
    path = _cache_path(llm, cache_dir, questions)
    return path is not None and path.is_file()


def base_answers(llm: LocalLLM, cache_dir: str | Path | None = None,
                 questions: Sequence[tuple[str, list[str]]] = GENERAL_QUESTIONS,
                 on_batch: Callable[[], None] | None = None) -> list[bool]:
    """Which ``questions`` the base model (no adapter on) answers right, cached as JSON
    in ``cache_dir`` per model fingerprint and question set. Other threads may generate
    between the batches (each batch holds ``llm.lock``, and an adapter is only ever on
    inside a block that holds it too, so every batch sees the base model)."""
    path = _cache_path(llm, cache_dir, questions)
    if path is not None and path.is_file() and path.stat().st_size < 1_000_000:
        try:
            data = json.loads(path.read_text())
            if (isinstance(data, list) and len(data) == len(questions)
                    and all(isinstance(x, bool) for x in data)):
                return data
        except (OSError, ValueError):
            pass  # recompute below
    if lora_runtime.adapter_state(llm) is not None:  # this very thread is inside one
        raise ModelError("base answers need the base model, but an adapter is on")
    got = replies(llm, [q for q, _ in questions], on_batch=on_batch)
    right = [correct(r, ok) for r, (_, ok) in zip(got, questions)]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(right))
            tmp.replace(path)
        except OSError:
            pass  # a cache only
    return right


def measure(llm: LocalLLM, key: str, gate: AdapterGate | None, base_right: Sequence[bool],
            questions: Sequence[tuple[str, list[str]]] = GENERAL_QUESTIONS,
            on_batch: Callable[[], None] | None = None) -> dict[str, Any]:
    """Retention of the loaded adapter ``key``: of the questions the base model answers
    right, the share still right when each is asked the way chat asks it (through
    ``gate``; ``gate=None``: with the adapter always on). A question the gate does not
    route runs on the base model and so keeps its base answer exactly."""
    known = [(q, ok) for (q, ok), right in zip(questions, base_right) if right]
    if not known:
        raise ModelError("the base model answers none of the general questions right; "
                         "retention cannot be measured")
    routed = [(q, ok) for q, ok in known if gate is None or gate.routes(q)]
    with lora_runtime.enabled(llm, key):
        got = replies(llm, [q for q, _ in routed], on_batch=on_batch)
    wrong = [q for (q, ok), r in zip(routed, got) if not correct(r, ok)]
    doc: dict[str, Any] = {"general": round(1 - len(wrong) / len(known), 4),
                           "questions": len(known), "routed": len(routed),
                           "wrong": wrong[:20], "gate": gate.describe() if gate else None}
    return doc


def servable(meta: Mapping[str, Any], embedder_id: str | None,
             minimum: float = MIN_RETENTION) -> str | None:
    """Why an adapter must not be served (None: it may). Chat calls this with the
    embedder its gate will use: a retention measured through another gate says nothing
    about this one."""
    doc = meta.get("retention")
    if not isinstance(doc, dict) or not isinstance(doc.get("general"), (int, float)):
        return "its general-knowledge retention was not measured"
    if doc["general"] < minimum:
        return (f"it keeps {doc['general']:.0%} of the general knowledge the base model "
                f"has (< {minimum:.0%})")
    gate = doc.get("gate")
    if gate is None:
        return None  # measured always-on: any gate only routes fewer questions to it
    if not isinstance(gate, dict) or gate.get("embedder") != embedder_id:
        return (f"its retention was measured through a gate on embedder "
                f"{gate.get('embedder') if isinstance(gate, dict) else gate!r}, not "
                f"{embedder_id!r}")
    return None
