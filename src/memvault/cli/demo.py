"""``memvault demo``: a guided tour on a bundled sample conversation.

It runs on a temporary vault (removed at the end) unless ``--db`` is given, and closes
by saying how to run ``memvault`` from where it is installed: ``make demo`` runs the
virtualenv's console script, which a new shell does not have on its PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import click

from ..errors import ModelError
from ..types import utcnow
from ._common import App, global_options, pass_app
from ._tables import history_table, one_line, short_time, terminal_width, truncate

__all__ = ["demo", "how_to_run"]

DEMO_USER = "maya"
DEMO_QUESTIONS = ("Where does Maya live?", "What is Maya's dog called?", "What is Maya's job?",
                  "Does Maya eat fish?", "How did Jonas do in the Berlin Marathon?")


def _load_sample() -> dict[str, Any]:
    source = resources.files("memvault").joinpath("data/sample_conversation.json")
    return json.loads(source.read_text(encoding="utf-8"))


@click.command()
@global_options
@pass_app
def demo(app: App) -> None:
    """Run a guided demo on a sample conversation.

    Ingests four chat sessions, searches them, updates a fact and looks back in time.

    Uses a temporary vault, removed at the end, unless --db is given.
    """
    with contextlib.ExitStack() as stack:
        settings = app.settings()
        if app.db is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="memvault-demo-"))
            settings = settings.replace(path=Path(tmp) / "vault.db", index_dir=None)
        if not app.as_json:
            click.echo(f"loading the {settings.embedder or 'minilm'} embedder ...", err=True)
        try:
            from ..vault import Vault

            vault = Vault(settings=settings)
            stack.callback(vault.close)  # runs before the temporary directory is removed
            vault.embedder.embed(["warm up"])  # load the model now, outside the timing
        except ModelError as exc:
            raise ModelError(f"{exc.message} (for a model-free demo: memvault demo --embedder hash)",
                             **exc.details) from exc
        echo = (lambda *a: None) if app.as_json else click.echo
        report = _run_demo(vault, _load_sample(), echo,
                           "a temporary vault" if app.db is None else str(settings.path))
        if app.as_json:
            app.out("", report)


def _run_demo(vault: Any, sample: dict[str, Any], echo: Callable[..., None],
              where: str) -> dict[str, Any]:
    sessions, width = sample["sessions"], terminal_width()
    turns = sum(len(s["turns"]) for s in sessions)
    echo(f"memvault demo: {turns} turns between {' and '.join(sample['speakers'])} over "
         f"{len(sessions)} sessions ({sessions[0]['date']} .. {sessions[-1]['date']})")
    echo(f"embedder {vault.embedder.id} ({vault.embedder.dim}-d), stored in {where}")
    started = time.perf_counter()
    for n, session in enumerate(sessions, 1):
        vault.add_messages([{"role": "user", "name": t["speaker"], "content": t["text"],
                             "timestamp": session["date"]} for t in session["turns"]],
                           user_id=DEMO_USER, session_id=f"session-{n}")
    echo(f"stored {turns} turns in {time.perf_counter() - started:.2f} s\n")
    echo("Top 3 memories per question (score, session date, speaker); facts change over time,"
         "\nso the date tells which answer is current.\n")
    report: dict[str, Any] = {"turns": turns, "embedder": vault.embedder.id, "questions": []}
    for question in DEMO_QUESTIONS:
        hits = vault.search(question, k=3, user_id=DEMO_USER, filters={"kind": "turn"})
        echo(f"Q: {question}")
        for h in hits:
            echo(truncate(f"  {h.score:.4f}  {short_time(h.item.event_time)}  "
                          f"{h.item.metadata.get('speaker')}: {one_line(h.item.text)}", width))
        echo()
        report["questions"].append({"question": question, "hits": [
            {"score": h.score, "date": short_time(h.item.event_time), "id": h.item.id,
             "speaker": h.item.metadata.get("speaker"), "text": h.item.text} for h in hits]})

    fact = vault.add("Maya lives in Lisbon and works as a data analyst at Marlow Freight.",
                     kind="profile", user_id=DEMO_USER, event_time=sessions[0]["date"])
    time.sleep(0.01)
    before = utcnow()
    time.sleep(0.01)
    vault.update(fact.id, "Maya lives in Porto and works as a product manager at the Ribeira "
                 "Design Museum.", reason="moved to Porto in July")
    versions = vault.history(fact.id)
    echo("An update writes a new version and keeps the old one (memvault history ID):")
    for row in history_table(versions, precise=True, width=width - 2).splitlines():
        echo("  " + row)
    old = vault.get(fact.id, known_at=before)  # what the vault had recorded then
    query = "Where does Maya live?"
    then = vault.search(query, k=1, user_id=DEMO_USER, filters={"kind": "profile"},
                        known_at=before)
    now = vault.search(query, k=1, user_id=DEMO_USER, filters={"kind": "profile"})
    echo(f"\nWhat the vault knew at {short_time(before, precise=True)} (--known-at), before "
         "the update:")
    echo(truncate(f"  get     -> v{old.version}: {old.text}", width))
    for label, hits in (("search", then), ("and now", now)):
        for h in hits:
            echo(truncate(f"  {label:<7} -> v{h.item.version}: {h.item.text}", width))
    echo("\n" + how_to_run())
    report.update({"history": [v.to_dict() for v in versions], "as_of": before.isoformat(),
                   "get_as_of": old.to_dict(), "search_as_of": [h.to_dict() for h in then],
                   "search_now": [h.to_dict() for h in now]})
    return report


def how_to_run() -> str:
    """The closing lines: the commands to try, as this shell can run them.

    When the running ``memvault`` lives in a virtualenv whose ``bin`` is not on $PATH
    (``make demo`` runs ``.venv/bin/memvault``), say how to activate it or call it by
    path; the Python API needs that environment's interpreter too."""
    bin_dir = Path(sys.executable).parent
    script = bin_dir / "memvault"
    found = shutil.which("memvault")
    if not script.exists() or (found and Path(found).resolve() == script.resolve()):
        return 'Your turn: memvault add "...", memvault search "...", memvault --help'
    try:
        shown = Path(os.path.relpath(bin_dir))
        shown = shown if not str(shown).startswith("..") else bin_dir
    except ValueError:  # another drive (Windows)
        shown = bin_dir
    lines = [f"Your turn. memvault is installed in {bin_dir.parent}, which this shell's "
             "PATH does not include:"]
    if (bin_dir / "activate").exists():
        lines.append(f"  source {shown}/activate     # then: memvault --help, "
                     "python -c 'import memvault'")
    lines.append(f'  {shown}/memvault add "..."; {shown}/memvault search "..."  '
                 "# or call it by path")
    return "\n".join(lines)
