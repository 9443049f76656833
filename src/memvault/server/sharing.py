"""REST routes for sharing: grants on one memory, a cube, or all of the caller's memory.

``POST /v1/memories/{id}/shares`` shares one memory, ``POST /v1/shares`` anything
(``item_id``, ``cube_id`` or ``everything``), ``GET`` on either lists the grants the
caller gave or received, ``DELETE /v1/shares/{grant_id}`` revokes one (the grant stays on
record, closed). Like every route, each is one call on the caller's
:class:`~memvault.governance.ScopedVault`, which checks ownership and audits the change.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from . import models as m
from .runtime import _ERRORS, RT, SV, IdPath, ScopeQ, _ok

__all__ = ["sharing_router"]


def sharing_router() -> APIRouter:
    r = APIRouter(prefix="/v1", responses=_ERRORS, tags=["sharing"])

    async def _share(body: m.ItemShareIn, sv: SV, rt: RT, item_id: str | None) -> Response:
        grant = await rt.run(sv.share, item_id, to=body.to,
                             cube_id=getattr(body, "cube_id", None),
                             everything=getattr(body, "everything", False), write=body.write,
                             redact=body.redact, valid_from=body.valid_from,
                             valid_to=body.valid_to)
        return _ok(grant.to_dict(), 201)

    @r.post("/memories/{id}/shares", status_code=201, response_model=m.GrantOut,
            summary="Share one of your memories with a principal or team:<name>")
    async def share_item(id: IdPath, body: m.ItemShareIn, sv: SV, rt: RT) -> Response:
        return await _share(body, sv, rt, id)

    @r.get("/memories/{id}/shares", response_model=m.GrantsOut,
           summary="Grants of one memory (given or received)")
    async def item_grants(id: IdPath, sv: SV, rt: RT, include_revoked: bool = False) -> Response:
        grants = await rt.run(sv.grants, item_id=id, include_revoked=include_revoked)
        return _ok({"grants": [g.to_dict() for g in grants]})

    @r.post("/shares", status_code=201, response_model=m.GrantOut,
            summary="Share a memory (item_id), a cube (cube_id) or everything")
    async def share(body: m.ShareIn, sv: SV, rt: RT) -> Response:
        return await _share(body, sv, rt, getattr(body, "item_id", None))

    @r.get("/shares", response_model=m.GrantsOut,
           summary="Grants you gave and grants given to you (or your teams)")
    async def grants(sv: SV, rt: RT,
                     item_id: Annotated[str | None, Query(pattern=m.ID_PATTERN)] = None,
                     cube_id: ScopeQ = None,
                     include_revoked: bool = False) -> Response:
        found = await rt.run(sv.grants, item_id=item_id, cube_id=cube_id,
                             include_revoked=include_revoked)
        return _ok({"grants": [g.to_dict() for g in found]})

    @r.delete("/shares/{grant_id}", response_model=m.GrantOut,
              summary="Revoke a grant you gave (kept on record, closed)")
    async def unshare(grant_id: Annotated[str, Path(pattern=m.GRANT_ID_PATTERN)], sv: SV, rt: RT) -> Response:
        return _ok((await rt.run(sv.unshare, grant_id)).to_dict())

    return r
