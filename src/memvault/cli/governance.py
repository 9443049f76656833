"""``memvault share``, ``unshare``, ``grants`` and ``team``: sharing, as the operator.

These run with the operator's authority (whoever can open the vault file), so they can
share any user's memories; principals share their own through the REST API, MCP or a
:class:`~memvault.governance.ScopedVault`. Changes are audited with the actor
``cli:<login name>``. Register with ``cli.add_command(...)`` (see ``memvault.cli``).
"""

from __future__ import annotations

from typing import Any, Iterator

import click

from ._tables import short_time, table
from ..errors import InvalidInput
from .server import _errors, _options, _out, _settings
from ..vault import Vault
from ..governance.acl import Grant
from ..governance.grants import GrantStore
from ..governance.principals import KeyStore, operator

__all__ = ["share", "unshare", "grants", "team"]


_actor = operator


class _Opened:
    """The vault and its grant store, closed together."""

    def __init__(self, ctx: click.Context, db: str | None, embedder: str | None,
                 *, vault: bool = True) -> None:
        settings = _settings(ctx, db, embedder)
        self.vault = Vault(settings=settings) if vault else None
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
        if self.vault is not None:
            self.vault.close()


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
@_options
@click.pass_context
@_errors
def share(ctx: click.Context, item_id: str | None, grantee: str, cube_id: str | None,
          everything: bool, user_id: str | None, write: bool, redact: str | None,
          valid_to: str | None, db: str | None, embedder: str | None, as_json: bool) -> None:
    """Share memory ITEM, a cube (--cube C --user U) or everything (--everything --user U)
    with a principal or team."""
    if sum((item_id is not None, cube_id is not None, everything)) != 1:
        raise InvalidInput("give exactly one of: ITEM, --cube, --everything")
    with _Opened(ctx, db, embedder) as o:
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
    _out(ctx, as_json, lambda: f"shared ({grant.grant_id}): {_grant_table([grant])}",
         grant.to_dict())


@click.command()
@click.argument("grant_id")
@_options
@click.pass_context
@_errors
def unshare(ctx: click.Context, grant_id: str, db: str | None, embedder: str | None,
            as_json: bool) -> None:
    """Revoke grant GRANT_ID (it stays on record, closed)."""
    with _Opened(ctx, db, embedder) as o:
        assert o.vault is not None
        grant = o.grants.unshare(o.vault, grant_id, actor=_actor())
    _out(ctx, as_json, lambda: f"revoked {grant.grant_id} (valid until "
         f"{short_time(grant.valid_to)})", grant.to_dict())


@click.command()
@click.option("--with", "grantee", metavar="PRINCIPAL", help="Only grants to this grantee.")
@click.option("--user", "user_id", metavar="ID", help="Only grants of this owner's memory.")
@click.option("--item", "item_id", metavar="ID", help="Only grants of this memory.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked/expired grants.")
@_options
@click.pass_context
@_errors
def grants(ctx: click.Context, grantee: str | None, user_id: str | None, item_id: str | None,
           include_revoked: bool, db: str | None, embedder: str | None,
           as_json: bool) -> None:
    """List grants, oldest first."""
    with _Opened(ctx, db, embedder, vault=False) as o:
        found = o.grants.list(owner_user_id=user_id, item_id=item_id,
                              grantees=[grantee] if grantee else None,
                              include_revoked=include_revoked)
    _out(ctx, as_json, lambda: _grant_table(found), {"grants": [g.to_dict() for g in found]})


@click.group()
def team() -> None:
    """Teams: a grant to team:<name> applies to every current member."""


def _membership(ctx: click.Context, join: bool, name: str, member: str, db: str | None,
                embedder: str | None, as_json: bool) -> None:
    with _Opened(ctx, db, embedder) as o:
        assert o.vault is not None
        change = o.grants.join if join else o.grants.leave
        changed = change(o.vault, name, member, actor=_actor())
    verb = ("added to" if join else "removed from") if changed else \
        ("already in" if join else "not in")
    _out(ctx, as_json, f"{member} {verb} {name}",
         {"team": name, "member": member, "changed": changed})


@team.command("add")
@click.argument("name")
@click.argument("member")
@_options
@click.pass_context
@_errors
def team_add(ctx: click.Context, name: str, member: str, db: str | None,
             embedder: str | None, as_json: bool) -> None:
    """Put principal MEMBER into team NAME."""
    _membership(ctx, True, name, member, db, embedder, as_json)


@team.command("remove")
@click.argument("name")
@click.argument("member")
@_options
@click.pass_context
@_errors
def team_remove(ctx: click.Context, name: str, member: str, db: str | None,
                embedder: str | None, as_json: bool) -> None:
    """Take principal MEMBER out of team NAME."""
    _membership(ctx, False, name, member, db, embedder, as_json)


@team.command("members")
@click.argument("name")
@_options
@click.pass_context
@_errors
def team_members(ctx: click.Context, name: str, db: str | None, embedder: str | None,
                 as_json: bool) -> None:
    """Current members of team NAME."""
    with _Opened(ctx, db, embedder, vault=False) as o:
        members = o.grants.members(name if name.startswith("team:") else "team:" + name)
    _out(ctx, as_json, lambda: "\n".join(members) or "no members",
         {"team": name, "members": members})


def commands() -> Iterator[Any]:
    """Every command of this module, for registration."""
    yield from (share, unshare, grants, team)
