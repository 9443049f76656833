"""``memvault quarantine list|show|release|check``: review what the injection guard held.

Quarantined memories are stored but never served by search; an operator looks at why
(``show`` prints the guard's reasons) and either releases them (a new, active version,
audited with the actor) or deletes them. ``check`` runs the guard on a text without
storing anything, to see what it would say.
"""

from __future__ import annotations

from typing import Any

import click

from ..guard.quarantine import verdict_of
from ..guard.screen import InjectionGuard, Verdict
from ._common import App, global_options, json_option, pass_app
from ._tables import item_detail, kv, short_time, table, truncate

__all__ = ["quarantine"]


def _reasons(verdict: dict[str, Any] | Verdict | None) -> str:
    doc = verdict.to_dict() if isinstance(verdict, Verdict) else (verdict or {})
    rows = [(r["family"], r["rule"], f"{r['weight']:.2f}", r.get("via", "text"),
             r["evidence"]) for r in doc.get("reasons", [])]
    head = f"score {doc.get('score', 0):.2f}, flagged: {'yes' if doc.get('flagged') else 'no'}"
    return head + ("\n" + table(["family", "rule", "weight", "via", "evidence"], rows, flex=4)
                   if rows else "")


@click.group()
def quarantine() -> None:
    """Memories the injection guard held back: list, show, release; check a text."""


@quarantine.command("list")
@click.option("--user", "user_id", metavar="ID", help="Only this user's memories.")
@click.option("--session", "session_id", metavar="ID", help="Only this session.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@global_options
@pass_app
def list_(app: App, user_id: str | None, session_id: str | None, limit: int,
          offset: int) -> None:
    """Quarantined memories, newest first, with the families that flagged them."""
    page = app.vault().quarantined(user_id=user_id, session_id=session_id, limit=limit,
                                   offset=offset)

    def human() -> str:
        if not page.items:
            return "nothing in quarantine"
        rows = []
        for item in page.items:
            verdict = verdict_of(item) or {}
            rows.append((item.id, short_time(item.created_at), item.user_id or "",
                         f"{verdict.get('score', 0):.2f}",
                         ",".join(verdict.get("families", [])), truncate(item.text, 200)))
        more = f"\n({page.total} in all; next: --offset {page.next_offset})" \
            if page.next_offset is not None else ""
        return table(["id", "created", "user", "score", "families", "text"], rows,
                     flex=5) + more
    app.out(human, page.to_dict())


@quarantine.command("show")
@click.argument("id")
@global_options
@pass_app
def show(app: App, id: str) -> None:
    """Memory ID and why the guard flagged it."""
    item = app.vault().get(id)
    verdict = verdict_of(item)
    extra = []
    if verdict and verdict.get("released_at"):
        extra = [("released", f"{verdict['released_at']} by {verdict.get('released_by')}"
                  + (f" ({verdict['release_reason']})" if verdict.get("release_reason") else ""))]
    app.out(lambda: item_detail(item) + ("\n" + kv(extra) if extra else "")
            + "\n\n" + (_reasons(verdict) if verdict else "the guard did not flag this memory"),
            {"item": item.to_dict(), "guard": verdict})


@quarantine.command("release")
@click.argument("id")
@click.option("--reason", metavar="TEXT", help="Why it is safe (kept with the verdict).")
@click.option("--actor", metavar="NAME", help="Who releases it (recorded in the audit log).")
@global_options
@pass_app
def release(app: App, id: str, reason: str | None, actor: str | None) -> None:
    """Serve memory ID: a new active version; the release is audited."""
    item = app.vault(actor=actor).release(id, reason=reason)
    app.out(lambda: kv([("released", item.id), ("version", item.version),
                        ("status", item.status)]), item.to_dict())


@quarantine.command("check")
@click.argument("text")
@json_option
@pass_app
def check(app: App, text: str) -> None:
    """Run the guard on TEXT (nothing is stored); exit status 1 if it would be flagged."""
    verdict = InjectionGuard().check(text)
    app.out(lambda: _reasons(verdict), verdict.to_dict())
    if verdict.flagged:
        click.get_current_context().exit(1)
