"""``memvault ingest FILE`` and ``memvault extract``: the reader on the command line.

Registered by :mod:`memvault.cli` (import that module, not this one, first). Both use the
CLI's global options (``--db``, ``--embedder``, ``--json``) and its vault; the LLM spec
comes from ``--llm`` or ``$MEMVAULT_LLM`` and an endpoint's key from
``$MEMVAULT_LLM_API_KEY`` (read here, at the edge, never by the library).
"""

from __future__ import annotations

import collections
import sys
import time
from typing import Any

import click

from . import App, _open, global_options, pass_app, scope_options
from ..models import get_llm
from ..reader.pipeline import MODES, ExtractionJob, RememberResult, remember

__all__ = ["ingest", "extract"]


def _llm_options(f: Any) -> Any:
    f = click.option("--api-key", envvar="MEMVAULT_LLM_API_KEY", metavar="KEY",
                     help="Key for an HTTP LLM; default $MEMVAULT_LLM_API_KEY.")(f)
    f = click.option("--timeout", default=60.0, show_default=True,
                     help="Seconds per LLM request (HTTP endpoints).")(f)
    return click.option("--llm", "llm_spec", metavar="SPEC",
                        help="none, local (SmolLM2), openai:<base_url>#<model>, "
                             "ollama:<model>; default $MEMVAULT_LLM, else rules.")(f)


def _resolve(app: App, spec: str | None, api_key: str | None, timeout: float) -> Any:
    return get_llm(spec if spec is not None else app.vault.settings.llm,
                   api_key=api_key, timeout=timeout)


def _bar(app: App, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=" turn", file=sys.stderr, leave=False,
                disable=app.as_json or not sys.stderr.isatty())


def _summary(verb: str, results: list[RememberResult], seconds: float) -> tuple[str, dict]:
    turns = sum(len(r.turns) for r in results)
    counts: collections.Counter[str] = collections.Counter()
    methods: collections.Counter[str] = collections.Counter()
    for r in results:
        counts.update(r.counts())
        methods.update(r.methods)
    rate = turns / seconds if seconds > 0 else 0.0
    doc = {"turns": turns, "decisions": dict(counts), "methods": dict(methods),
           "seconds": round(seconds, 3), "turns_per_second": round(rate, 2)}
    human = f"{verb} {turns} turns in {seconds:.2f} s ({rate:,.1f}/s)"
    if sum(counts.values()):
        human += "; " + ", ".join(f"{k} {v}" for k, v in counts.items())
    if methods:
        human += "; read by " + ", ".join(f"{k} x{v}" for k, v in methods.items())
    return human, doc


@click.command("ingest")
@click.argument("file", metavar="FILE")
@click.option("--mode", type=click.Choice(MODES), default="fast", show_default=True,
              help="fast: store turns now, extract later (memvault extract); "
                   "fine: extract facts and decide ADD/UPDATE/DELETE/NOOP now.")
@_llm_options
@scope_options
@global_options
@pass_app
def ingest(app: App, file: str, mode: str, llm_spec: str | None, api_key: str | None,
           timeout: float, **scope: str | None) -> None:
    """Read a chat export into the vault.

    FILE ('-' is stdin): a JSON list of {role, content, name?, timestamp?} messages (or
    {"messages": [...]}), memvault's sample conversation, a LoCoMo-like file or a ChatGPT
    export. Each session of the export becomes a session scope unless --session is given.
    """
    from ..reader.formats import loads_chat

    with _open(file, "r") as stream:
        sessions = loads_chat(stream.read())
    llm = _resolve(app, llm_spec, api_key, timeout) if mode == "fine" else None
    vault, results, started = app.vault, [], time.perf_counter()
    with _bar(app, sum(len(s.messages) for s in sessions)) as bar:
        for session in sessions:
            chosen = {**scope, "session_id": scope.get("session_id") or session.session_id}
            results.append(remember(vault, session.messages, mode=mode, llm=llm or "none",
                                    progress=bar.update, **chosen))
    human, doc = _summary("ingested", results, time.perf_counter() - started)
    doc["mode"], doc["sessions"] = mode, len(sessions)
    if mode == "fast":
        human += " (run `memvault extract` to read facts from them)"
    app.out(human, doc)


@click.command("extract")
@_llm_options
@click.option("--batch", default=64, show_default=True, help="Turns read per job step.")
@global_options
@pass_app
def extract(app: App, llm_spec: str | None, api_key: str | None, timeout: float,
            batch: int) -> None:
    """Read the turns that fast-mode ingest deferred (resumable: progress is kept)."""
    job = ExtractionJob(app.vault, _resolve(app, llm_spec, api_key, timeout) or "none",
                        batch=batch)
    started = time.perf_counter()
    with _bar(app, job.pending()) as bar:
        result = job.run(progress=bar.update)
    human, doc = _summary("read", [result], time.perf_counter() - started)
    doc["watermark"] = job.watermark
    app.out(human, doc)
