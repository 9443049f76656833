"""``memvault ingest FILE`` and ``memvault extract``: the reader on the command line.

Both use the CLI's global options (``--db``, ``--embedder``, ``--json``) and its vault;
the LLM spec comes from ``--llm`` or ``$MEMVAULT_LLM`` (neither: rule-based reading) and
an endpoint's key from ``$MEMVAULT_LLM_API_KEY`` (read here, at the edge, never by the
library). ``ingest`` reads its file as bytes: text that is not UTF-8 or JSON is refused,
naming the line, before anything is stored.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import click

from ..models import get_llm
from ..reader.pipeline import MODES, ExtractionJob, RememberResult, remember
from ._common import (App, global_options, llm_options, pass_app, progress_bar,
                      scope_options)

__all__ = ["ingest", "extract"]


def _resolve(app: App, spec: str | None, api_key: str | None, timeout: float) -> Any:
    return get_llm(spec if spec is not None else app.settings().llm,
                   api_key=api_key, timeout=timeout)


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
@llm_options()
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
    from ..plaintext.jsonl import decode_utf8, loads
    from ..reader.formats import parse_chat
    from .writes import read_bytes

    sessions = parse_chat(loads(decode_utf8(read_bytes(file))))
    llm = _resolve(app, llm_spec, api_key, timeout) if mode == "fine" else None
    vault, results, started = app.vault_for_write(), [], time.perf_counter()
    def step(n: int) -> None:
        vault.searcher.sync()  # the turns' sentence vectors: inside the bar and the timing
        bar.update(n)

    with progress_bar(app, total=sum(len(s.messages) for s in sessions), unit=" turn") as bar:
        for session in sessions:
            chosen = {**scope, "session_id": scope.get("session_id") or session.session_id}
            results.append(remember(vault, session.messages, mode=mode, llm=llm or "none",
                                    progress=step, **chosen))
    human, doc = _summary("ingested", results, time.perf_counter() - started)
    doc["mode"], doc["sessions"] = mode, len(sessions)
    if mode == "fast":
        human += " (run `memvault extract` to read facts from them)"
    app.out(human, doc)


@click.command("extract")
@llm_options()
@click.option("--batch", default=64, show_default=True, help="Turns read per job step.")
@global_options
@pass_app
def extract(app: App, llm_spec: str | None, api_key: str | None, timeout: float,
            batch: int) -> None:
    """Read the turns that fast-mode ingest deferred (resumable: progress is kept)."""
    job = ExtractionJob(app.vault(), _resolve(app, llm_spec, api_key, timeout) or "none",
                        batch=batch)
    started = time.perf_counter()
    with progress_bar(app, total=job.pending(), unit=" turn") as bar:
        result = job.run(progress=bar.update)
    human, doc = _summary("read", [result], time.perf_counter() - started)
    doc["watermark"] = job.watermark
    app.out(human, doc)
