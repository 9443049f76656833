"""``memvault init|add|import|update|delete|restore``: the commands that write.

These are the only commands that create a vault that is not there yet (reads refuse a
missing one, see :mod:`memvault.cli._common`). ``import`` reads and checks its whole
input before it opens the vault, and a failed import into a vault it created removes
that vault again: nothing is left behind, not even lock files.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import click

from ..errors import InvalidInput, MemvaultError
from ._common import App, global_options, pass_app, progress_bar, scope_options

__all__ = ["init", "add", "import_", "update", "delete", "restore"]

#: What opening a SQLite vault can create beside ``<db>`` (removed if an import fails).
_SIDECARS = ("", "-wal", "-shm", "-journal", "-writelock", ".index", ".index.lock")
_POLICIES = ("fail", "ours", "theirs", "keep-both")
#: Chat turns per batch: their sentence vectors make a turn ~50 ms of MiniLM on 2 cores,
#: so larger batches would leave the bar still for seconds.
_CHAT_BATCH = 32


@contextlib.contextmanager
def _undone_if_new(app: App, settings: Any) -> Iterator[None]:
    """If the vault file does not exist yet and the block fails, close the vault and
    remove what opening it created (the file, its journals, locks and index)."""
    if settings.store or Path(settings.path).exists():
        yield
        return
    path = Path(settings.path)
    made_dir = not path.parent.exists()
    try:
        yield
    except BaseException:
        with contextlib.suppress(MemvaultError):
            app.close()
        for suffix in _SIDECARS:
            leftover = path.with_name(path.name + suffix)
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        if made_dir:
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        raise


@click.command()
@global_options
@pass_app
def init(app: App) -> None:
    """Create an empty vault (a write command also creates one).

    With --embedder it is embedded with that model from the start (default: minilm).
    An existing vault is left as it is.
    """
    settings = app.settings()
    existed = bool(settings.store) or Path(settings.path).exists()
    vault = app.vault_for_write(settings)
    where = settings.store or str(settings.path)
    verb = "exists" if existed else "created"
    app.out(f"{verb}: {where} (embedder {vault.embedder.id}, {vault.count()} memories)",
            {"path": where, "created": not existed, "embedder": vault.embedder.id,
             "dim": vault.embedder.dim, "memories": vault.count()})


@click.command()
@click.argument("text")
@click.option("--kind", default="note", show_default=True, help="turn, fact, preference, note, ...")
@scope_options
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata entry (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@click.option("--event-time", metavar="ISO", help="When it happened (default: unknown).")
@click.option("--dedup", type=click.Choice(["off", "noop", "version"]), default="off",
              show_default=True, help="If TEXT restates a memory of the same kind and "
              "owner: store it anyway, keep that memory (noop), or make TEXT its next "
              "version. The id printed is the memory kept.")
@global_options
@pass_app
def add(app: App, text: str, kind: str, meta: tuple[str, ...], tags: tuple[str, ...],
        event_time: str | None, dedup: str, **scope: str | None) -> None:
    """Store TEXT ('-' reads stdin) and print its id."""
    from ._tables import parse_pairs

    if text == "-":
        text = sys.stdin.read()
    metadata = parse_pairs(meta)
    item = app.vault_for_write().add(text, kind=kind, metadata=metadata, tags=list(tags),
                                     event_time=event_time, dedup=dedup, **scope)
    app.out(item.id, item.to_dict())
    if item.status == "quarantined":  # stderr: stdout stays the id (or the JSON)
        click.echo(f"note: quarantined by the injection guard (memvault quarantine show "
                   f"{item.id})", err=True)


def read_bytes(file: str) -> bytes:
    """The file's bytes ('-': stdin's), decoded by the parser that knows the format."""
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}", path=file) from None


def _records(app: App, parsed: Any, batch_size: int, scope: dict[str, str | None],
             bar: Any, new_vault: bool) -> int:
    """JSONL records or chat messages through ``add_many``, batch by batch; each batch is
    indexed (its sentence vectors embedded) before the bar counts it."""
    from ..vault import message_records

    vault = app.vault_for_write()
    done, line = 0, 0

    def progress(n: int) -> None:
        nonlocal done
        vault.searcher.sync()  # the index work of this batch, inside the bar and timing
        done += n
        bar.update(n)

    if parsed.format == "chat":
        records = message_records([m for _, m in parsed.records], **scope)
        vault.add_many(records, batch_size=min(batch_size, _CHAT_BATCH), progress=progress)
        return done

    def numbered() -> Iterator[Any]:
        nonlocal line
        for line, record in parsed.records:  # noqa: B007 - the line of the record read last
            yield record

    try:
        vault.add_many(numbered(), batch_size=batch_size, progress=progress,
                       **{k: v for k, v in scope.items() if v is not None})
    except InvalidInput as exc:
        kept = "nothing was imported" if new_vault else \
            f"{done} records before it were imported"
        raise InvalidInput(f"line {line}: {exc.message} ({kept})", line=line) from exc
    return done


def _export(app: App, parsed: Any, on_conflict: str, source: str, bar: Any
            ) -> tuple[int, dict[str, Any]]:
    from ..plaintext.jsonl import import_export

    vault = app.vault_for_write()
    bar.set_description("embedding")
    bar.reset(total=len(parsed.records))
    report = import_export(vault, parsed.records, on_conflict=on_conflict, source=source,
                           progress=bar.update)
    bar.set_description("indexing")
    bar.reset(total=report["items"])
    vault.searcher.sync(progress=bar.update)
    return report["items"], report


@click.command("import")
@click.argument("file", metavar="FILE")
@scope_options
@click.option("--batch-size", default=256, show_default=True,
              help="Records per transaction and progress step (chat messages: at most "
                   f"{_CHAT_BATCH}, each a turn whose sentences are embedded).")
@click.option("--on-conflict", type=click.Choice(_POLICIES), default="fail",
              show_default=True,
              help="An export whose memory id is in the vault with another history: refuse "
                   "(nothing is imported), keep the vault's, put the file's on top, or keep "
                   "both (the file's under a derived id). An identical history is skipped.")
@global_options
@pass_app
def import_(app: App, file: str, batch_size: int, on_conflict: str,
            **scope: str | None) -> None:
    """Import JSONL records, a chat JSON file or an export.

    FILE ('-' is stdin) holds JSONL records, each with at least "text"; or a chat: a list
    of {role, content, name?, timestamp?} messages, or {"messages": [...]}; or what
    `memvault export [--history]` wrote, read back with every version, its validity and
    status, and links. Scope options apply to records and messages that do not set them.

    The whole file is read and checked before anything is written; an import that fails
    into a vault it created leaves no file behind.
    """
    from ..plaintext.jsonl import parse_import

    if not 1 <= batch_size <= 10_000:
        raise InvalidInput("--batch-size must be in 1..10000")
    parsed = parse_import(read_bytes(file))
    if parsed.format == "export" and any(scope.values()):
        raise InvalidInput("an export keeps each memory's own scope: drop --user/--agent/"
                           "--session/--cube")
    settings = app.settings()
    new_vault = not settings.store and not Path(settings.path).exists()
    started = time.perf_counter()
    with _undone_if_new(app, settings), \
            progress_bar(app, total=len(parsed), unit=" mem") as bar:
        app.vault_for_write(settings)
        if parsed.format == "export":
            done, report = _export(app, parsed, on_conflict, Path(file).name, bar)
        else:
            done, report = _records(app, parsed, batch_size, scope, bar, new_vault), {}
        searcher = app.vault_for_write().searcher
        indexed, parts = searcher.indexed, searcher.sentence_vectors["embedded"]
    seconds = time.perf_counter() - started  # the index work included: it is done now
    rate = done / seconds if seconds > 0 else 0.0
    doc = {"imported": done, "format": parsed.format, "seconds": round(seconds, 4),
           "per_second": round(rate, 1), "indexed": indexed, "sentence_vectors": parts}
    human = (f"imported {done} memories ({parsed.format}) in {seconds:.2f} s, {rate:,.0f}/s"
             f"; index: {indexed} memories, {parts} sentence vectors embedded")
    if report:
        doc.update({k: v for k, v in report.items() if k != "items"})
        outcome = ", ".join(f"{k} {v}" for k, v in report.items()
                            if k not in ("items", "versions") and v)
        human = (f"imported {report['versions']} versions of {done} memories (export; "
                 f"{outcome or 'nothing new'}) in {seconds:.2f} s, {rate:,.0f} memories/s; "
                 f"index: {indexed} memories, {parts} sentence vectors embedded")
    app.out(human, doc)


@click.command()
@click.argument("id")
@click.argument("text", required=False)
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Set a metadata key (kept keys merge).")
@click.option("--tag", "tags", multiple=True, help="Replace the tags with these (repeatable).")
@click.option("--reason", help="Why; kept in the audit log.")
@global_options
@pass_app
def update(app: App, id: str, text: str | None, meta: tuple[str, ...], tags: tuple[str, ...],
           reason: str | None) -> None:
    """Write a new version of memory ID.

    The old version stays in its history. --meta sets keys (others are kept); --tag
    replaces the tags.
    """
    from ._tables import parse_pairs

    if text is None and not meta and not tags:
        raise InvalidInput("nothing to update: give TEXT, --meta or --tag")
    vault = app.vault()
    current = vault.get(id)
    metadata = {**current.metadata, **parse_pairs(meta)} if meta else None
    item = vault.update(id, text, metadata=metadata, tags=list(tags) or None, reason=reason)
    verb = "updated" if item.version != current.version else "unchanged"
    app.out(f"{verb} {item.id}: version {item.version}", item.to_dict())


@click.command()
@click.argument("id")
@click.option("--reason", help="Why; kept in the audit log.")
@click.option("--purge", is_flag=True, help="Remove every version for good (not restorable).")
@global_options
@pass_app
def delete(app: App, id: str, reason: str | None, purge: bool) -> None:
    """Delete memory ID (restorable unless --purge).

    A deleted memory is hidden from search and list but kept in its history.
    """
    vault = app.vault()
    if purge:
        n = vault.purge(id, reason=reason)
        app.out(f"purged {id} ({n} versions)", {"id": id, "purged_versions": n})
    else:
        item = vault.delete(id, reason=reason)
        app.out(f"deleted {id} (version {item.version}; undo with: memvault restore {id})",
                item.to_dict())


@click.command()
@click.argument("id")
@global_options
@pass_app
def restore(app: App, id: str) -> None:
    """Bring a deleted or archived memory back."""
    item = app.vault().restore(id)
    app.out(f"restored {id}: version {item.version}", item.to_dict())
