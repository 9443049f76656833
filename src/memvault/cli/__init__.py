"""The ``memvault`` command line: a thin face over :class:`~memvault.Vault`.

Each command parses its options, makes one or two Vault calls and renders the result,
as an aligned table for people or, with ``--json``, as one JSON document (JSONL for
``export``). This module is an edge: the only place that reads the environment, through
:meth:`Settings.from_env`. A :class:`MemvaultError` becomes ``error [<code>]: <message>``
on stderr and exit status 2; the vault is always closed so its index snapshot is saved.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

import click

from .. import __version__
from ._tables import (audit_table, history_table, hits_table, item_detail, items_table, kv,
                      one_line, parse_pairs, read_import, short_time, terminal_width, truncate)
from ..errors import InvalidInput, MemvaultError, ModelError
from ..settings import Settings
from ..types import STATUSES, utcnow
from ..vault import Vault

__all__ = ["cli", "main"]


class App:
    """Per-invocation state: the global options, and the vault, opened on first use."""

    def __init__(self) -> None:
        self.db: str | None = None
        self.embedder: str | None = None
        self.as_json = False
        self._vault: Vault | None = None

    def settings(self) -> Settings:
        return Settings.from_env(os.environ, path=self.db, embedder=self.embedder)

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault(settings=self.settings())
        return self._vault

    def close(self) -> None:
        vault, self._vault = self._vault, None
        if vault is not None:
            vault.close()

    def out(self, human: str | Callable[[], str], doc: Any) -> None:
        """Print ``doc`` as JSON with ``--json``, else the human rendering."""
        if self.as_json:
            click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        else:
            click.echo(human() if callable(human) else human)


class Group(click.Group):
    """Turns a MemvaultError into ``error [code]: message`` and exit 2; closes the vault."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                if isinstance(ctx.obj, App):
                    ctx.obj.close()
        except MemvaultError as exc:
            click.echo(f"error [{exc.code}]: {exc.message}", err=True)
            ctx.exit(2)


pass_app = click.make_pass_decorator(App, ensure=True)


def _setter(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            setattr(ctx.ensure_object(App), attr, value)
    return callback


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--db/--embedder/--json, accepted before the command name or after it."""
    f = click.option("--json", "as_json", is_flag=True, expose_value=False, callback=_setter("as_json"),
                     help="Machine output: one JSON document (JSONL for streams).")(f)
    f = click.option("--embedder", metavar="NAME", expose_value=False, callback=_setter("embedder"),
                     help="minilm, mpnet or hash[-DIM]; default $MEMVAULT_EMBEDDER, else the "
                          "vault's own (minilm for a new one).")(f)
    return click.option("--db", metavar="PATH", expose_value=False, callback=_setter("db"),
                        help="Vault file; default $MEMVAULT_PATH or ~/.memvault/vault.db.")(f)


def scope_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for name in ("cube", "session", "agent", "user"):
        f = click.option(f"--{name}", f"{name}_id", metavar="ID", help=f"{name.title()} scope.")(f)
    return f


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="memvault")
@global_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """memvault: versioned, searchable memory for LLM agents, offline."""
    ctx.ensure_object(App)  # shared by the subcommand, closed by Group.invoke


def command(name: str | None = None) -> Callable[[Callable[..., Any]], click.Command]:
    return lambda f: cli.command(name)(global_options(f))


# -- helpers -------------------------------------------------------------------------
def _filters(kinds: Iterable[str] = (), tags: Iterable[str] = (),
             meta: Iterable[str] = ()) -> dict[str, Any] | None:
    filters = {"kind": list(kinds), "tags": list(tags), "metadata": parse_pairs(meta)}
    return {k: v for k, v in filters.items() if v} or None


def _open(path: str, mode: str) -> Any:
    try:
        return click.open_file(path, mode, encoding="utf-8-sig" if "r" in mode else "utf-8",
                               atomic="w" in mode and path != "-")
    except OSError as exc:
        raise InvalidInput(f"cannot open {path}: {exc.strerror or exc}", path=path) from None


# -- writes --------------------------------------------------------------------------
@command()
@click.argument("text")
@click.option("--kind", default="note", show_default=True, help="turn, fact, preference, note, ...")
@scope_options
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata entry (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@click.option("--event-time", metavar="ISO", help="When it happened (default: unknown).")
@pass_app
def add(app: App, text: str, kind: str, meta: tuple[str, ...], tags: tuple[str, ...],
        event_time: str | None, **scope: str | None) -> None:
    """Store TEXT ('-' reads stdin) and print its id."""
    if text == "-":
        text = sys.stdin.read()
    item = app.vault.add(text, kind=kind, metadata=parse_pairs(meta), tags=list(tags),
                         event_time=event_time, **scope)
    app.out(item.id, item.to_dict())
    if item.status == "quarantined":  # stderr: stdout stays the id (or the JSON)
        click.echo(f"note: quarantined by the injection guard (memvault quarantine show "
                   f"{item.id})", err=True)


@command("import")
@click.argument("file", metavar="FILE")
@scope_options
@click.option("--batch-size", default=256, show_default=True, help="Records per transaction.")
@pass_app
def import_(app: App, file: str, batch_size: int, **scope: str | None) -> None:
    """Import JSONL records or a chat JSON file.

    FILE ('-' is stdin) holds JSONL records, each with at least "text", or a chat: a list
    of {role, content, name?, timestamp?} messages, or an object {"messages": [...]}.
    Scope options apply to records that do not set them.
    """
    from tqdm import tqdm

    defaults = {k: v for k, v in scope.items() if v is not None}
    done, started = 0, time.perf_counter()

    def progress(n: int) -> None:
        nonlocal done
        done += n
        bar.update(n)

    with _open(file, "r") as stream, tqdm(unit=" mem", file=sys.stderr, leave=False,
                                          disable=app.as_json or not sys.stderr.isatty()) as bar:
        source, vault = read_import(stream), app.vault
        if isinstance(source, list):  # a chat: one add_messages call
            bar.total = len(source)
            progress(len(vault.add_messages(source, **scope)))
        else:
            try:
                vault.add_many(source, batch_size=batch_size, progress=progress, **defaults)
            except InvalidInput as exc:
                if not source.line:
                    raise
                raise InvalidInput(f"line {source.line}: {exc.message} ({done} records before "
                                   "it were imported)", line=source.line) from exc
    fmt = "chat" if isinstance(source, list) else "jsonl"
    seconds = time.perf_counter() - started
    rate = done / seconds if seconds > 0 else 0.0
    app.out(f"imported {done} memories ({fmt}) in {seconds:.2f} s, {rate:,.0f}/s",
            {"imported": done, "format": fmt, "seconds": round(seconds, 4),
             "per_second": round(rate, 1)})


@command()
@click.argument("id")
@click.argument("text", required=False)
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Set a metadata key (kept keys merge).")
@click.option("--tag", "tags", multiple=True, help="Replace the tags with these (repeatable).")
@click.option("--reason", help="Why; kept in the audit log.")
@pass_app
def update(app: App, id: str, text: str | None, meta: tuple[str, ...], tags: tuple[str, ...],
           reason: str | None) -> None:
    """Write a new version of memory ID.

    The old version stays in its history. --meta sets keys (others are kept); --tag
    replaces the tags.
    """
    if text is None and not meta and not tags:
        raise InvalidInput("nothing to update: give TEXT, --meta or --tag")
    current = app.vault.get(id)
    metadata = {**current.metadata, **parse_pairs(meta)} if meta else None
    item = app.vault.update(id, text, metadata=metadata, tags=list(tags) or None, reason=reason)
    verb = "updated" if item.version != current.version else "unchanged"
    app.out(f"{verb} {item.id}: version {item.version}", item.to_dict())


@command()
@click.argument("id")
@click.option("--reason", help="Why; kept in the audit log.")
@click.option("--purge", is_flag=True, help="Remove every version for good (not restorable).")
@pass_app
def delete(app: App, id: str, reason: str | None, purge: bool) -> None:
    """Delete memory ID (restorable unless --purge).

    A deleted memory is hidden from search and list but kept in its history.
    """
    if purge:
        n = app.vault.purge(id, reason=reason)
        app.out(f"purged {id} ({n} versions)", {"id": id, "purged_versions": n})
    else:
        item = app.vault.delete(id, reason=reason)
        app.out(f"deleted {id} (version {item.version}; undo with: memvault restore {id})",
                item.to_dict())


@command()
@click.argument("id")
@pass_app
def restore(app: App, id: str) -> None:
    """Bring a deleted or archived memory back."""
    item = app.vault.restore(id)
    app.out(f"restored {id}: version {item.version}", item.to_dict())


# -- reads ---------------------------------------------------------------------------
@command()
@click.argument("query")
@click.option("-k", "k", default=10, show_default=True, help="Number of hits.")
@scope_options
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only memories with any of these tags.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata must match (repeatable).")
@click.option("--as-of", metavar="ISO", help="Search what held in the world then (valid time).")
@click.option("--known-at", metavar="ISO", help="As the vault had recorded it then "
              "(transaction time).")
@pass_app
def search(app: App, query: str, k: int, kinds: tuple[str, ...], tags: tuple[str, ...],
           meta: tuple[str, ...], as_of: str | None, known_at: str | None,
           **scope: str | None) -> None:
    """Hybrid (semantic + keyword) search."""
    hits = app.vault.search(query, k=k, filters=_filters(kinds, tags, meta), as_of=as_of,
                            known_at=known_at, **scope)
    app.out(lambda: hits_table(hits) if hits else "no matches",
            {"query": query, "hits": [h.to_dict() for h in hits]})


@command()
@click.argument("id")
@click.option("--as-of", metavar="ISO", help="The version whose statement held then "
              "(valid time).")
@click.option("--known-at", metavar="ISO", help="As the vault had recorded it then "
              "(transaction time).")
@pass_app
def get(app: App, id: str, as_of: str | None, known_at: str | None) -> None:
    """Show memory ID (its current version, the one that held --as-of, or the one the
    vault had recorded --known-at)."""
    item = app.vault.get(id, as_of=as_of, known_at=known_at)
    app.out(lambda: item_detail(item), item.to_dict())


@command()
@click.argument("id")
@click.option("--known-at", metavar="ISO", help="Only the versions recorded by then.")
@pass_app
def history(app: App, id: str, known_at: str | None) -> None:
    """Every version of memory ID, oldest first."""
    versions = app.vault.history(id, known_at=known_at)
    app.out(lambda: history_table(versions),
            {"id": id, "versions": [v.to_dict() for v in versions]})


@command("list")
@scope_options
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only memories with any of these tags.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata must match (repeatable).")
@click.option("--status", default="active", show_default=True,
              type=click.Choice([*STATUSES, "any"]))
@click.option("--limit", default=20, show_default=True)
@click.option("--offset", default=0, show_default=True)
@click.option("--as-of", metavar="ISO", help="What held in the world then (valid time).")
@click.option("--known-at", metavar="ISO", help="As the vault had recorded it then.")
@pass_app
def list_(app: App, kinds: tuple[str, ...], tags: tuple[str, ...], meta: tuple[str, ...],
          status: str, limit: int, offset: int, as_of: str | None, known_at: str | None,
          **scope: str | None) -> None:
    """List memories, newest first."""
    page = app.vault.list(filters=_filters(kinds, tags, meta), status=status, limit=limit,
                          offset=offset, as_of=as_of, known_at=known_at, **scope)

    def human() -> str:
        if not page.items:
            return f"no memories ({page.total} in total)"
        shown = f"{page.offset + 1}-{page.offset + len(page.items)} of {page.total}"
        more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
        return f"{items_table(page.items)}\n({shown}{more})"
    app.out(human, page.to_dict())


@command()
@click.argument("file", required=False, default="-")
@click.option("--history", "with_history", is_flag=True, help="Every version, not just the current.")
@pass_app
def export(app: App, file: str, with_history: bool) -> None:
    """Export every memory as JSONL.

    One MemoryItem.to_dict() per line, to FILE or stdout.
    """
    n = 0
    with _open(file, "w") as out:
        for item in app.vault.export(history=with_history):
            out.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    if file != "-":
        app.out(f"exported {n} {'versions' if with_history else 'memories'} to {file}",
                {"exported": n, "file": file, "history": with_history})


@command()
@click.option("--item", "item_id", metavar="ID", help="Only events of this memory (and reads of it).")
@click.option("--action", help="add, update, delete, restore, archive, purge, link, unlink, "
                               "read, share, unshare, team_join, team_leave, ...")
@click.option("--actor", metavar="NAME", help="Only events of this principal / actor.")
@click.option("--since", metavar="ISO", help="Only events at or after this time.")
@click.option("--after", default=0, show_default=True, help="Only events after this sequence number.")
@click.option("--limit", default=50, show_default=True)
@pass_app
def audit(app: App, item_id: str | None, action: str | None, actor: str | None,
          since: str | None, after: int, limit: int) -> None:
    """The audit log, oldest first."""
    from ..governance.auditlog import query_audit

    events = query_audit(app.vault, item_id=item_id, action=action, actor=actor, since=since,
                         after=after, limit=limit)
    app.out(lambda: audit_table(events) if events else "no events",
            {"events": [e.to_dict() for e in events]})


@command()
@pass_app
def check(app: App) -> None:
    """Integrity report; exit status 1 if not ok."""
    report = app.vault.check()
    app.out(lambda: kv([(k, ", ".join(map(str, v)) if isinstance(v, list) else
                         ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict)
                         else v) for k, v in report.items() if k != "ok"])
            + ("\nok" if report["ok"] else "\nFAILED"), report)
    if not report["ok"]:
        click.get_current_context().exit(1)


# -- demo ----------------------------------------------------------------------------
DEMO_USER = "maya"
DEMO_QUESTIONS = ("Where does Maya live?", "What is Maya's dog called?", "What is Maya's job?",
                  "Does Maya eat fish?", "How did Jonas do in the Berlin Marathon?")


def _load_sample() -> dict[str, Any]:
    source = resources.files("memvault").joinpath("data/sample_conversation.json")
    return json.loads(source.read_text(encoding="utf-8"))


@command()
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


def _run_demo(vault: Vault, sample: dict[str, Any], echo: Callable[..., None],
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
    old = vault.get(fact.id, as_of=before)
    query = "Where does Maya live?"
    then = vault.search(query, k=1, user_id=DEMO_USER, filters={"kind": "profile"}, as_of=before)
    now = vault.search(query, k=1, user_id=DEMO_USER, filters={"kind": "profile"})
    echo(f"\nLooking back to {short_time(before, precise=True)} (--as-of), before the update:")
    echo(truncate(f"  get     -> v{old.version}: {old.text}", width))
    for label, hits in (("search", then), ("and now", now)):
        for h in hits:
            echo(truncate(f"  {label:<7} -> v{h.item.version}: {h.item.text}", width))
    echo('\nYour turn: memvault add "...", memvault search "...", memvault --help')
    report.update({"history": [v.to_dict() for v in versions], "as_of": before.isoformat(),
                   "get_as_of": old.to_dict(), "search_as_of": [h.to_dict() for h in then],
                   "search_now": [h.to_dict() for h in now]})
    return report


def _register_faces() -> None:
    """Command groups that live beside the modules they drive."""
    from .adapter import adapter
    from .cube import cube
    from .bench import bench
    from .server import keys, serve
    from ..server.mcp import mcp_command
    from .storage import migrate_store

    cli.add_command(bench)
    cli.add_command(adapter)
    cli.add_command(cube)
    cli.add_command(migrate_store)
    cli.add_command(serve)
    cli.add_command(keys)
    cli.add_command(mcp_command)
    from .governance import commands as governance_commands

    for command_ in governance_commands():  # share, unshare, grants, team
        cli.add_command(command_)
    from .scheduler import consolidate_command, forget_command, scheduler

    for command_ in (forget_command, consolidate_command, scheduler):
        cli.add_command(command_)
    from .quarantine import quarantine

    cli.add_command(quarantine)
    from .reader import extract as extract_command, ingest

    cli.add_command(ingest)
    cli.add_command(extract_command)
    from .chat import chat_command

    cli.add_command(chat_command)
    __import__("memvault.cli.working", fromlist=["register"]).register(cli)  # task, file


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``memvault``)."""
    cli.main(args=argv, prog_name="memvault")


if __name__ == "__main__":  # ``python -m memvault.cli``: the faces import memvault.cli,
    from memvault.cli import main as _main  # so run that module, not this __main__ copy

    _main()
else:
    _register_faces()

