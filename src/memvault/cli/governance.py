"""``memvault share``, ``unshare``, ``grants`` and ``team``: sharing, as the operator.

These run with the operator's authority (whoever can open the vault file), so they can
share any user's memories; principals share their own through the REST API, MCP or a
:class:`~memvault.governance.ScopedVault`. Changes are audited with the actor
``cli:<login name>``. They work on an existing vault only.
"""

from __future__ import annotations

from typing import Any, Iterator

import click

from ..errors import InvalidInput
from ..governance.acl import Grant
from ..governance.grants import GrantStore
from ..governance.principals import KeyStore, operator
from ._common import App, global_options, pass_app, require_existing
from ._tables import short_time, table

__all__ = ["share", "unshare", "grants", "team"]


_actor = operator


class _Opened:
    """The vault (from the App, closed with it) and its grant store."""

    def __init__(self, app: App, *, vault: bool = True) -> None:
        settings = app.settings()
        require_existing(settings)
        self.vault = app.vault() if vault else None
        try:  # the vault's own store holds keys and grants
            self.keys = KeyStore.for_vault(self.vault or settings)
        except BaseException:
            if self.vault is not None:
                self.vault.close()
            raise
        self.grants = GrantStore(self.keys)

    def __enter__(self) -> "_Opened":
        return self

    def __exit__(self, *exc: object) -> None:
        self.keys.close()


def _grant_table(found: list[Grant]) -> str:
    if not found:
        return "no grants"
    return table(["grant", "to", "owner", "what", "perm", "redact", "from", "until"],
                 [(g.grant_id, g.grantee, g.owner_user_id,
                   g.item_id or (f"cube {g.cube_id}" if g.cube_id else "everything"),
                   g.permission, ",".join(g.redact), short_time(g.valid_from),
                   short_time(g.valid_to) if g.valid_to else "") for g in found], flex=3)


def _split(value: str | None) -> list[str]:
    return [f.strip() for f in value.split(",") if f.strip()] if value else []


@click.command()
@click.argument("item_id", required=False, metavar="[ITEM]")
@click.option("--with", "grantee", required=True, metavar="PRINCIPAL",
              help="Who gets access: a principal name or team:<name>.")
@click.option("--cube", "cube_id", metavar="CUBE", help="Share a whole cube (needs --user).")
@click.option("--everything", is_flag=True, help="Share all of --user's memory.")
@click.option("--user", "user_id", metavar="ID", help="Owner of the cube / memory shared.")
@click.option("--write", is_flag=True, help="Also allow update, delete, archive, restore.")
@click.option("--redact", metavar="F1,F2", help="Fields to hide (metadata, provenance, tags, "
                                                 "session_id, agent_id, event_time, links).")
@click.option("--until", "valid_to", metavar="ISO", help="The grant ends by itself then.")
@global_options
@pass_app
def share(app: App, item_id: str | None, grantee: str, cube_id: str | None,
          everything: bool, user_id: str | None, write: bool, redact: str | None,
          valid_to: str | None) -> None:
    """Share memory ITEM, a cube (--cube C --user U) or everything (--everything --user U)
    with a principal or team."""
    if sum((item_id is not None, cube_id is not None, everything)) != 1:
        raise InvalidInput("give exactly one of: ITEM, --cube, --everything")
    with _Opened(app) as o:
        assert o.vault is not None
        if item_id is not None:
            owner = o.vault.get(item_id).user_id
            if owner is None:
                raise InvalidInput("this memory has no user_id: nobody owns it to share")
        elif user_id is None:
            raise InvalidInput("--cube and --everything need --user (whose memory)")
        else:
            owner = user_id
        grant = o.grants.share(o.vault, grantee=grantee, owner_user_id=owner, item_id=item_id,
                               cube_id=cube_id, permission="write" if write else "read",
                               redact=_split(redact), valid_to=valid_to, actor=_actor())
    app.out(lambda: f"shared ({grant.grant_id}): {_grant_table([grant])}", grant.to_dict())


@click.command()
@click.argument("grant_id")
@global_options
@pass_app
def unshare(app: App, grant_id: str) -> None:
    """Revoke grant GRANT_ID (it stays on record, closed)."""
    with _Opened(app) as o:
        assert o.vault is not None
        grant = o.grants.unshare(o.vault, grant_id, actor=_actor())
    app.out(lambda: f"revoked {grant.grant_id} (valid until "
            f"{short_time(grant.valid_to)})", grant.to_dict())


@click.command()
@click.option("--with", "grantee", metavar="PRINCIPAL", help="Only grants to this grantee.")
@click.option("--user", "user_id", metavar="ID", help="Only grants of this owner's memory.")
@click.option("--item", "item_id", metavar="ID", help="Only grants of this memory.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked/expired grants.")
@global_options
@pass_app
def grants(app: App, grantee: str | None, user_id: str | None, item_id: str | None,
           include_revoked: bool) -> None:
    """List grants, oldest first."""
    with _Opened(app, vault=False) as o:
        found = o.grants.list(owner_user_id=user_id, item_id=item_id,
                              grantees=[grantee] if grantee else None,
                              include_revoked=include_revoked)
    app.out(lambda: _grant_table(found), {"grants": [g.to_dict() for g in found]})


@click.group()
def team() -> None:
    """Teams: a grant to team:<name> applies to every current member."""


def _membership(app: App, join: bool, name: str, member: str) -> None:
    with _Opened(app) as o:
        assert o.vault is not None
        change = o.grants.join if join else o.grants.leave
        changed = change(o.vault, name, member, actor=_actor())
    verb = ("added to" if join else "removed from") if changed else \
        ("already in" if join else "not in")
    app.out(f"{member} {verb} {name}",
            {"team": name, "member": member, "changed": changed})


@team.command("add")
@click.argument("name")
@click.argument("member")
@global_options
@pass_app
def team_add(app: App, name: str, member: str) -> None:
    """Put principal MEMBER into team NAME."""
    _membership(app, True, name, member)


@team.command("remove")
@click.argument("name")
@click.argument("member")
@global_options
@pass_app
def team_remove(app: App, name: str, member: str) -> None:
    """Take principal MEMBER out of team NAME."""
    _membership(app, False, name, member)


@team.command("members")
@click.argument("name")
@global_options
@pass_app
def team_members(app: App, name: str) -> None:
    """Current members of team NAME."""
    with _Opened(app, vault=False) as o:
        members = o.grants.members(name if name.startswith("team:") else "team:" + name)
    app.out(lambda: "\n".join(members) or "no members",
            {"team": name, "members": members})


def commands() -> Iterator[Any]:
    """Every command of this module, for registration."""
    yield from (share, unshare, grants, team)
