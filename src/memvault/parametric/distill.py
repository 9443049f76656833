"""Distilling memories into a LoRA adapter: training examples, the loop, background jobs.

Each memory becomes a question/answer pair the model is trained to reply to through the
chat template, so recall is measurable the way it is used (ask, read the reply):

* ``metadata["qa"] = [{"question": ..., "answer": ...}]`` (or ``question``/``answer``)
  gives the pairs explicitly;
* "<subject>'s <attribute> is <value>." becomes "What is <subject>'s <attribute>?" ->
  the sentence itself;
* "<Capitalised Name> <rest>" becomes "What do you know about <Name>?" -> the sentence;
* anything else: "Complete this from memory: <first words> ..." -> the sentence.

The loss covers the answer tokens (and the end-of-turn token) only. Training runs on the
shared model: each step holds ``llm.lock`` for one forward/backward pass with the training
adapter switched on, so generations by others interleave and always see the base model.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .._validate import bounded_int, finite
from ..errors import Conflict, InvalidInput, MemvaultError, ModelError
from ..models.base import Embedder
from ..models.local import LocalLLM
from ..types import MemoryItem, utcnow
from . import retention as retention_mod
from . import runtime as lora_runtime
from .adapters import Adapter, AdapterStore, DistilledAdapter, validate_name

if TYPE_CHECKING:
    import torch

__all__ = ["DistillJob", "DistillProgress", "Example", "build_examples", "distill", "start_distill"]

MAX_ITEMS = 2000
_POSSESSIVE = re.compile(r"^(?P<subj>[^.?!]+?)'s (?P<attr>[^.?!]+?) (?P<verb>is|are|was|were) "
                         r"(?P<val>.+?)[.!]?$")
_NAMED = re.compile(r"^(?P<subj>[A-Z][\w'-]*(?: [A-Z][\w'-]*){0,3}) (?P<rest>[a-z].+)$")


@dataclass(frozen=True, slots=True)
class Example:
    question: str
    answer: str
    source: str


@dataclass(frozen=True, slots=True)
class DistillProgress:
    name: str
    step: int
    total: int
    loss: float | None
    elapsed_s: float


ProgressFn = Callable[[DistillProgress], None]


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text[-1] in ".!?" else text + "."


def build_examples(items: Iterable[MemoryItem]) -> list[Example]:
    """Question/answer pairs for the memories (see the module docstring)."""
    out: list[Example] = []
    for item in items:
        meta = item.metadata or {}
        pairs = meta.get("qa") or ([{"question": meta["question"], "answer": meta["answer"]}]
                                   if "question" in meta and "answer" in meta else [])
        if pairs:
            for pair in pairs:
                if not isinstance(pair, dict) or not all(
                        isinstance(pair.get(k), str) and pair[k].strip()
                        for k in ("question", "answer")):
                    raise InvalidInput(f"memory {item.id}: metadata qa pairs need non-empty "
                                       "question and answer strings", field="metadata.qa")
                out.append(Example(pair["question"].strip(), pair["answer"].strip(), item.id))
            continue
        text = _sentence(item.text)
        body = text.rstrip(".!?")
        if m := _POSSESSIVE.match(body):
            question = f"What {m['verb']} {m['subj']}'s {m['attr']}?"
        elif m := _NAMED.match(body):
            question = f"What do you know about {m['subj']}?"
        else:
            words = body.split()
            question = ("Complete this from memory: "
                        + " ".join(words[:max(2, len(words) // 2)]) + " ...")
        out.append(Example(question, text, item.id))
    return out


def _check_items(items: Iterable[MemoryItem]) -> list[MemoryItem]:
    chosen: dict[str, MemoryItem] = {}
    for item in items:
        if not isinstance(item, MemoryItem):
            raise InvalidInput(f"distil expects MemoryItems, got {type(item).__name__}")
        if item.status != "active":
            raise InvalidInput(f"memory {item.id} is {item.status}; only active memories are "
                               "distilled", field="items")
        chosen[item.id] = item
    if not chosen:
        raise InvalidInput("nothing to distil: no memories given", field="items")
    if len(chosen) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} memories per adapter", field="items")
    return list(chosen.values())


@dataclass(frozen=True)
class _Options:
    steps: int
    lr: float
    rank: int
    alpha: float
    batch_size: int
    seed: int
    targets: tuple[str, ...]


def _options(steps: Any, lr: Any, rank: Any, alpha: Any, batch_size: Any, seed: Any,
             targets: Any) -> _Options:
    rank = bounded_int(rank, field="rank", low=1, high=256)
    targets = tuple(targets)
    if not targets or not set(targets) <= set(lora_runtime.TARGETS):
        raise InvalidInput(f"targets must be among {', '.join(lora_runtime.TARGETS)}",
                           field="targets")
    return _Options(steps=bounded_int(steps, field="steps", low=1, high=100_000),
                    lr=finite(lr, field="lr", low=1e-7, high=1.0), rank=rank,
                    alpha=finite(2 * rank if alpha is None else alpha, field="alpha",
                                 low=1e-3, high=1e4),
                    batch_size=bounded_int(batch_size, field="batch_size", low=1, high=512),
                    seed=bounded_int(seed, field="seed", low=0, high=2**31 - 1),
                    targets=targets)


def _encode(llm: LocalLLM, examples: Sequence[Example]) -> list[tuple[list[int], list[int]]]:
    eos = llm.tokenizer.eos_token_id
    out = []
    for ex in examples:
        prompt = llm.encode_chat([{"role": "user", "content": ex.question}])[0].tolist()
        out.append((prompt, llm.encode(ex.answer)[0].tolist() + [eos]))
    return out


def _batch_loss(llm: LocalLLM, batch: Sequence[tuple[list[int], list[int]]]) -> "torch.Tensor":
    """Cross-entropy over the answer tokens; logits are computed for those positions only
    (the vocabulary projection is a fifth of the model: skipping the prompt's pays)."""
    import torch

    width = max(len(p) + len(t) for p, t in batch)
    ids = torch.full((len(batch), width), int(llm.tokenizer.eos_token_id), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    rows, cols, targets = [], [], []
    for i, (prompt, target) in enumerate(batch):
        seq = prompt + target
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
        for j, tok in enumerate(target):  # position len(prompt)+j-1 predicts target[j]
            rows.append(i)
            cols.append(len(prompt) + j - 1)
            targets.append(tok)
    hidden = llm.model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    logits = llm.model.get_output_embeddings()(hidden[rows, cols])
    return torch.nn.functional.cross_entropy(logits.float(), torch.tensor(targets))


def distill(llm: LocalLLM, items: Iterable[MemoryItem], name: str, *, steps: int = 60,
            lr: float = 3e-3, rank: int = 8, alpha: float | None = None, batch_size: int = 8,
            seed: int = 0, targets: Sequence[str] = lora_runtime.TARGETS,
            progress: ProgressFn | None = None,
            cancel: threading.Event | None = None, retention: bool = True,
            gate_embedder: Embedder | None = None,
            gate_threshold: float = retention_mod.DEFAULT_THRESHOLD,
            cache_dir: str | Path | None = None) -> DistilledAdapter:
    """Train a LoRA adapter on ``items`` and return it (nothing is written to disk).

    Deterministic for a given seed on one machine. ``cancel`` set -> :class:`Conflict`,
    and the model is left without the half-trained adapter.

    ``retention`` (default on): after training, measure how much general knowledge the
    model keeps with the adapter in chat's path (:mod:`.retention`), through a topic gate
    on ``gate_embedder`` (None: the adapter always on) and write it to
    ``meta["retention"]``; chat refuses an adapter without it or below 0.95. The base
    model's answers are cached in ``cache_dir``. Progress counts training steps, then
    the retention batches.
    """
    import torch

    validate_name(name)
    opts = _options(steps, lr, rank, alpha, batch_size, seed, targets)
    chosen = _check_items(items)
    examples = build_examples(chosen)
    encoded = _encode(llm, examples)
    gate = (retention_mod.AdapterGate.from_texts(gate_embedder, [i.text for i in chosen],
                                                 gate_threshold)
            if retention and gate_embedder is not None else None)
    total = opts.steps + (_retention_batches(llm, gate, cache_dir) if retention else 0)
    config = {"r": opts.rank, "lora_alpha": opts.alpha, "target_modules": list(opts.targets)}
    key = f"{lora_runtime.TRAINING}{name}:{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    losses: list[float] = []
    with torch.random.fork_rng():  # LoRA A is initialised from the global RNG
        torch.manual_seed(opts.seed)
        lora_runtime.install(llm, key, config)
    try:
        params = lora_runtime.trainable_parameters(llm, key)
        optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.0)
        order = random.Random(opts.seed)
        queue: list[int] = []
        for step in range(1, opts.steps + 1):
            if cancel is not None and cancel.is_set():
                raise Conflict(f"distillation of adapter {name!r} was cancelled", adapter=name)
            batch = []
            while len(batch) < min(opts.batch_size, len(encoded)):
                if not queue:
                    queue = list(range(len(encoded)))
                    order.shuffle(queue)
                batch.append(encoded[queue.pop()])
            try:
                with lora_runtime.enabled(llm, key, trainable=True), torch.enable_grad():
                    loss = _batch_loss(llm, batch)
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            except MemvaultError:
                raise
            except Exception as exc:
                raise ModelError(f"training adapter {name!r} failed: {exc}") from exc
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(DistillProgress(name, step, total, losses[-1],
                                         time.perf_counter() - started))
        tensors = lora_runtime.slot_tensors(llm, key)
        kept = _measure_retention(llm, key, gate, cache_dir, name, progress, opts.steps,
                                  total, losses[-1], started) if retention else None
    finally:
        lora_runtime.uninstall(llm, key)
    seconds = time.perf_counter() - started
    meta = {
        "fingerprint": llm.fingerprint.to_dict(), "fingerprint_key": llm.fingerprint.key,
        "model": llm.id, "created_at": utcnow().isoformat(),
        "sources": [{"id": i.id, "version": i.version,
                     "content_sha256": hashlib.sha256(i.text.encode()).hexdigest()}
                    for i in chosen],
        "examples": len(examples),  # their text stays in the vault, not beside the weights
        "training": {"steps": opts.steps, "lr": opts.lr, "rank": opts.rank,
                     "alpha": opts.alpha, "batch_size": opts.batch_size, "seed": opts.seed,
                     "targets": list(opts.targets), "seconds": round(seconds, 3),
                     "first_loss": losses[0], "final_loss": losses[-1],
                     "losses": [round(v, 4) for v in losses]},
        "retention": kept,
    }
    return DistilledAdapter(name=name, config=config, tensors=tensors, meta=meta)


def _retention_batches(llm: LocalLLM, gate: Any, cache_dir: Any) -> int:
    """Generation batches :func:`_measure_retention` will run (for the progress total):
    the base pass unless cached, and the questions the gate may route (an upper bound:
    those the base model gets wrong are skipped)."""
    questions = retention_mod.GENERAL_QUESTIONS
    per = retention_mod.BATCH
    base = 0 if retention_mod.base_cached(llm, cache_dir) else -(-len(questions) // per)
    routed = sum(gate is None or gate.routes(q) for q, _ in questions)
    return base + -(-routed // per)


def _measure_retention(llm: LocalLLM, key: str, gate: Any, cache_dir: Any, name: str,
                       progress: ProgressFn | None, done: int, total: int, loss: float,
                       started: float) -> dict[str, Any]:
    count = [done]

    def tick() -> None:
        count[0] += 1
        if progress is not None:
            progress(DistillProgress(name, min(count[0], total), total, loss,
                                     time.perf_counter() - started))

    base = retention_mod.base_answers(llm, cache_dir, on_batch=tick)
    doc = retention_mod.measure(llm, key, gate, base, on_batch=tick)
    while count[0] < total:  # questions the base got wrong were not asked
        tick()
    return doc


class DistillJob:
    """One distillation running in a daemon thread: progress, cancel, result or error.

    ``progress`` may be a callable (gets :class:`DistillProgress` after each step) or
    ``"tqdm"`` for a progress bar on stderr.
    """

    def __init__(self, name: str, total: int) -> None:
        self.name = name
        self._progress = DistillProgress(name, 0, total, None, 0.0)
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, llm: LocalLLM, items: Iterable[MemoryItem], name: str, *,
              save: Callable[[DistilledAdapter], Adapter] | None = None,
              progress: ProgressFn | str | None = None, **options: Any) -> "DistillJob":
        """Check the arguments here (bad input raises now), then train in the background."""
        validate_name(name)
        chosen = _check_items(items)
        opts = _options(options.get("steps", 60), options.get("lr", 3e-3),
                        options.get("rank", 8), options.get("alpha"),
                        options.get("batch_size", 8), options.get("seed", 0),
                        options.get("targets", lora_runtime.TARGETS))
        build_examples(chosen)
        job = cls(name, opts.steps)  # the total grows once retention batches are known
        report = job._reporter(progress)

        def run() -> None:
            try:
                adapter = distill(llm, chosen, name, progress=report, cancel=job._cancel,
                                  **options)
                job._result = save(adapter) if save is not None else adapter
            except BaseException as exc:  # kept for result(); a thread cannot raise
                job._error = exc
            finally:
                job._done.set()
                report(None)

        job._thread = threading.Thread(target=run, name=f"memvault-distill-{name}",
                                       daemon=True)
        job._thread.start()
        return job

    def _reporter(self, progress: ProgressFn | str | None) -> Callable[[Any], None]:
        bar = None
        if progress == "tqdm":
            from tqdm import tqdm

            bar = tqdm(total=self._progress.total, desc=f"distil {self.name}", unit="step")
        elif progress is not None and not callable(progress):
            raise InvalidInput("progress must be a callable, 'tqdm' or None", field="progress")

        def report(p: DistillProgress | None) -> None:
            if p is None:  # finished
                if bar is not None:
                    bar.close()
                return
            self._progress = p
            if bar is not None:
                if bar.total != p.total:
                    bar.total = p.total
                bar.update(p.step - bar.n)
                bar.set_postfix(loss=f"{p.loss:.3f}")
            elif callable(progress):
                progress(p)

        return report

    @property
    def progress(self) -> DistillProgress:
        return self._progress

    def cancel(self) -> None:
        """Ask the job to stop before its next step (nothing is saved)."""
        self._cancel.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def exception(self) -> BaseException | None:
        return self._error if self._done.is_set() else None

    def result(self, timeout: float | None = None) -> Any:
        """The saved :class:`Adapter` (or the :class:`DistilledAdapter` without a store);
        raises the job's error, or :class:`Conflict` if not done within ``timeout``."""
        if not self._done.wait(timeout):
            raise Conflict(f"distillation of {self.name!r} is still running "
                           f"(step {self._progress.step}/{self._progress.total})")
        if self._error is not None:
            raise self._error
        return self._result


def start_distill(store: AdapterStore, llm: LocalLLM, items: Any, name: str, *,
                  overwrite: bool = False, **options: Any) -> "DistillJob":
    """Train in a background thread and save the result in ``store``; see :func:`distill`."""
    validate_name(name)
    if (store.root / name).exists() and not overwrite:
        raise Conflict(f"adapter {name!r} exists; pass overwrite=True to replace it",
                       adapter=name)
    options.setdefault("cache_dir", store.root)
    return DistillJob.start(llm, items, name, save=lambda a: store.save(a, overwrite=overwrite),
                            **options)
