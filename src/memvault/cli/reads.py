"""``memvault search|get|history|list|export|audit|check``: the commands that read.

They open the vault with :meth:`App.vault`, which refuses one that does not exist: a
mistyped ``--db`` is an error (exit 2), never an empty answer and a new empty vault.
``get``, ``history`` and ``list`` read the store only; the searcher (and with it numpy
and faiss) is opened by ``search`` and ``check``.
"""

from __future__ import annotations

import json

import click

from ._common import App, filters, global_options, open_file, pass_app, scope_options
from ..types import STATUSES
from ._tables import audit_table, hits_table, history_table, item_detail, items_table, kv

__all__ = ["search", "get", "history", "list_", "export", "audit", "check"]

_STATUSES = (*STATUSES, "any")


@click.command()
@click.argument("query")
@click.option("-k", "k", default=10, show_default=True, help="Number of hits.")
@scope_options
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only memories with any of these tags.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata must match (repeatable).")
@click.option("--as-of", metavar="ISO", help="Search what held in the world then (valid time).")
@click.option("--known-at", metavar="ISO", help="As the vault had recorded it then "
              "(transaction time).")
@global_options
@pass_app
def search(app: App, query: str, k: int, kinds: tuple[str, ...], tags: tuple[str, ...],
           meta: tuple[str, ...], as_of: str | None, known_at: str | None,
           **scope: str | None) -> None:
    """Hybrid (semantic + keyword) search."""
    hits = app.vault().search(query, k=k, filters=filters(kinds, tags, meta), as_of=as_of,
                              known_at=known_at, **scope)
    app.out(lambda: hits_table(hits) if hits else "no matches",
            {"query": query, "hits": [h.to_dict() for h in hits]})


@click.command()
@click.argument("id")
@click.option("--as-of", metavar="ISO", help="The version whose statement held then "
              "(valid time).")
@click.option("--known-at", metavar="ISO", help="As the vault had recorded it then "
              "(transaction time).")
@global_options
@pass_app
def get(app: App, id: str, as_of: str | None, known_at: str | None) -> None:
    """Show memory ID (current, or as it held --as-of / was recorded --known-at).

    --as-of reads valid time (what held in the world then); --known-at transaction time
    (what the vault had recorded then)."""
    item = app.vault().get(id, as_of=as_of, known_at=known_at)
    app.out(lambda: item_detail(item), item.to_dict())


@click.command()
@click.argument("id")
@click.option("--known-at", metavar="ISO", help="Only the versions recorded by then.")
@global_options
@pass_app
def history(app: App, id: str, known_at: str | None) -> None:
    """Every version of memory ID, oldest first.

    A version that a later one replaced shows as "superseded" (its VALID TO is when);
    --json keeps each version's stored status and validity.
    """
    versions = app.vault().history(id, known_at=known_at)
    app.out(lambda: history_table(versions),
            {"id": id, "versions": [v.to_dict() for v in versions]})


@click.command("list")
@scope_options
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only memories with any of these tags.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata must match (repeatable).")
@click.option("--status", default="active", show_default=True, type=click.Choice(_STATUSES))
@click.option("--limit", default=20, show_default=True)
@click.option("--offset", default=0, show_default=True)
@click.option("--as-of", metavar="ISO", help="What held in the world then (valid time).")
@click.option("--known-at", metavar="ISO", help="As the vault had recorded it then.")
@global_options
@pass_app
def list_(app: App, kinds: tuple[str, ...], tags: tuple[str, ...], meta: tuple[str, ...],
          status: str, limit: int, offset: int, as_of: str | None, known_at: str | None,
          **scope: str | None) -> None:
    """List memories, newest first."""
    page = app.vault().list(filters=filters(kinds, tags, meta), status=status, limit=limit,
                            offset=offset, as_of=as_of, known_at=known_at, **scope)

    def human() -> str:
        if not page.items:
            return f"no memories ({page.total} in total)"
        shown = f"{page.offset + 1}-{page.offset + len(page.items)} of {page.total}"
        more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
        return f"{items_table(page.items)}\n({shown}{more})"
    app.out(human, page.to_dict())


@click.command()
@click.argument("file", required=False, default="-")
@click.option("--history", "with_history", is_flag=True, help="Every version, not just the current.")
@global_options
@pass_app
def export(app: App, file: str, with_history: bool) -> None:
    """Export every memory as JSONL.

    One MemoryItem.to_dict() per line, to FILE or stdout; `memvault import` reads it
    back (with --history: every version, its validity and status).
    """
    n = 0
    vault = app.vault()
    with open_file(file, "w") as out:
        for item in vault.export(history=with_history):
            out.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    if file != "-":
        app.out(f"exported {n} {'versions' if with_history else 'memories'} to {file}",
                {"exported": n, "file": file, "history": with_history})


@click.command()
@click.option("--item", "item_id", metavar="ID", help="Only events of this memory (and reads of it).")
@click.option("--action", help="add, update, delete, restore, archive, purge, link, unlink, "
                               "read, share, unshare, team_join, team_leave, ...")
@click.option("--actor", metavar="NAME", help="Only events of this principal / actor.")
@click.option("--since", metavar="ISO", help="Only events at or after this time.")
@click.option("--after", default=0, show_default=True, help="Only events after this sequence number.")
@click.option("--limit", default=50, show_default=True)
@global_options
@pass_app
def audit(app: App, item_id: str | None, action: str | None, actor: str | None,
          since: str | None, after: int, limit: int) -> None:
    """The audit log, oldest first."""
    from ..governance.auditlog import query_audit

    events = query_audit(app.vault(), item_id=item_id, action=action, actor=actor,
                         since=since, after=after, limit=limit)
    app.out(lambda: audit_table(events) if events else "no events",
            {"events": [e.to_dict() for e in events]})


@click.command()
@global_options
@pass_app
def check(app: App) -> None:
    """Integrity report; exit status 1 if not ok."""
    report = app.vault().check()
    app.out(lambda: kv([(k, ", ".join(map(str, v)) if isinstance(v, list) else
                         ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict)
                         else v) for k, v in report.items() if k != "ok"])
            + ("\nok" if report["ok"] else "\nFAILED"), report)
    if not report["ok"]:
        click.get_current_context().exit(1)
