"""The REST face: the Vault over HTTP, under ``/v1``.

A thin layer. Each route authenticates the caller (``Authorization: Bearer <key>``),
builds the :class:`~memvault.governance.ScopedVault` of the key's principal and makes one
call on it in a worker thread (Vault calls block; the event loop never does). There is no
storage or search logic here.

Every failure is a JSON body ``{"code", "message"[, "details"]}`` with a stable code:
a :class:`~memvault.errors.MemvaultError` keeps its own code and status; request
validation failures are 422 ``invalid_input``; a missing or bad key is 401
``unauthorized``; a body over the limit is 413 ``payload_too_large``; an unknown route is
404 ``not_found`` and a wrong method 405 ``method_not_allowed``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, AsyncIterator, Callable, Iterator, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import InvalidInput, MemvaultError
from ..governance import KeyStore
from ..governance.namespace import id_prefix
from ..types import STATUSES, MemoryItem
from ..vault import Vault
from . import models as m
from .edge import Edge
from .runtime import (_ERRORS, RT, SV, IdPath, IdQ, LimitQ, OffsetQ, Runtime, ScopeQ, StatusQ,
                      TimeQ, _dumps, _filters, _items, _ok, _on_crash, _on_http, _on_memvault,
                      _on_validation, _status, _time)

__all__ = ["create_app"]

# -- the app -----------------------------------------------------------------------------
def create_app(vault: Vault, keys: KeyStore, *, max_body_bytes: int = 1_048_576,
               threads: int = 8, audit_reads: bool = True, llm: Any = None,
               model_threads: int = 1, proxy: Any = None) -> FastAPI:
    """The REST app over ``vault``; callers authenticate with keys from ``keys``
    (whose governance database also holds the sharing grants). With ``audit_reads``
    every read leaves a ``read`` event in the audit log.

    ``threads`` bounds how many Vault calls run at once; the rest queue (see
    ``/v1/metrics``, ``queue_depth``). ``llm`` (an LLM or a spec; default
    ``vault.settings.llm``) enables ``/v1/chat`` and fine ``/v1/remember``; it is loaded
    on first use and runs on ``model_threads`` workers of its own. The caller owns
    ``vault`` and ``keys`` (and an ``llm`` object it passes).

    ``proxy`` (a :class:`~memvault.server.proxy.ProxyConfig`) is where the
    OpenAI-compatible ``/v1/chat/completions`` forwards; without one it answers with
    ``llm`` (or 409 ``model_unavailable`` when there is none).
    """
    if threads < 1 or max_body_bytes < 1 or model_threads < 1:
        raise InvalidInput("threads, model_threads and max_body_bytes must be positive")
    rt = Runtime(vault, keys, threads, audit_reads, llm, model_threads)
    from .proxy import ProxyConfig, proxy_router

    proxy = proxy if proxy is not None else ProxyConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await proxy.aclose()  # waits for the exchanges still being remembered
            await asyncio.get_running_loop().run_in_executor(None, rt.close)

    app = FastAPI(title="memvault", version=__version__, lifespan=lifespan,
                  description="Versioned, searchable memory for LLM agents. Every call is "
                              "confined to the scope of the caller's API key.",
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    app.state.memvault = rt
    app.add_middleware(Edge, max_body_bytes=max_body_bytes, metrics=rt.metrics)
    app.add_exception_handler(MemvaultError, _on_memvault)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_crash)
    app.include_router(_memories())
    app.include_router(_service())
    from .sharing import sharing_router

    app.include_router(sharing_router())
    from .assist import assist_router

    app.include_router(assist_router())
    from .working import working_router

    app.include_router(working_router())  # /v1/work/{ws}: tasks, files, stack
    app.include_router(proxy_router(proxy))  # OpenAI-compatible /v1/chat/completions
    from .browser import mount_browser

    mount_browser(app)  # the web memory browser at /ui/
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with the ``filters`` query parameter described as what it is: a
    JSON object of the ``Filters`` schema (so clients and fuzzers send one)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        for param in doc["paths"]["/v1/memories"]["get"]["parameters"]:
            if param["name"] == "filters":
                param.pop("schema", None)
                param["content"] = {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Filters"}}}
        app.openapi_schema = doc
    return app.openapi_schema


def _memories() -> APIRouter:
    r = APIRouter(prefix="/v1", responses=_ERRORS, tags=["memories"])

    @r.post("/memories", status_code=201, response_model=m.MemoryItemOut,
            summary="Store one memory (durable when answered)")
    async def add(body: m.AddOneIn, sv: SV, rt: RT) -> Response:
        fields = body.model_dump(exclude_none=True)
        item = await rt.run(sv.add, fields.pop("text"), **fields)
        return _ok(item.to_dict(), 201)

    @r.post("/memories/batch", status_code=201, response_model=m.ItemsOut,
            summary=f"Store up to {m.MAX_RECORDS} memories; each batch_size records are "
                    "one transaction")
    async def add_many(body: m.AddManyIn, sv: SV, rt: RT, request: Request) -> Response:
        records = [rec if isinstance(rec, str) else rec.model_dump(exclude_none=True)
                   for rec in body.records]
        defaults = body.defaults.model_dump(exclude_none=True) if body.defaults else {}
        with _while_connected(request) as check:
            try:
                items = await rt.run(sv.add_many, records, batch_size=body.batch_size,
                                     progress=lambda _: check(), **defaults)
            except ClientGone:  # the batches written stay; nobody is there to answer
                return Response(status_code=499)
        return _ok({"items": _items(items)}, 201)

    @r.post("/messages", status_code=201, response_model=m.ItemsOut,
            summary="Store chat messages as turns")
    async def add_messages(body: m.MessagesIn, sv: SV, rt: RT) -> Response:
        fields = body.model_dump(exclude_none=True)
        messages = [msg.model_dump(exclude_none=True) for msg in body.messages]
        fields.pop("messages")
        items = await rt.run(sv.add_messages, messages, **fields)
        return _ok({"items": _items(items)}, 201)

    @r.get("/memories", response_model=m.PageOut, summary="List memories, newest first")
    async def list_(sv: SV, rt: RT, user_id: ScopeQ = None, agent_id: ScopeQ = None,
                    session_id: ScopeQ = None, cube_id: ScopeQ = None,
                    filters: Annotated[str | None, Query(
                        description="Filters as a JSON object (kind, tags, metadata, ids, "
                                    "event_after, ...)")] = None,
                    status: StatusQ = None, as_of: TimeQ = None, limit: LimitQ = 50,
                    offset: OffsetQ = 0,
                    order: Literal["created_desc", "created_asc"] = "created_desc",
                    known_at: TimeQ = None) -> Response:
        page = await rt.run(sv.list, user_id=user_id, agent_id=agent_id, session_id=session_id,
                            cube_id=cube_id, filters=_filters(filters), status=_status(status),
                            as_of=_time(as_of), limit=limit, offset=offset, order=order,
                            known_at=_time(known_at))
        return _ok(page.to_dict())

    @r.get("/memories/{id}", response_model=m.MemoryItemOut,
           summary="The current version (any status); as_of: the one that held in the world "
                   "then (valid time); known_at: the one the vault had recorded then")
    async def get(id: IdPath, sv: SV, rt: RT, as_of: TimeQ = None,
                  known_at: TimeQ = None) -> Response:
        item = await rt.run(sv.get, id, as_of=_time(as_of), known_at=_time(known_at))
        return _ok(item.to_dict())

    @r.patch("/memories/{id}", response_model=m.MemoryItemOut,
             summary="Write a new version (fields left out keep their value)")
    async def update(id: IdPath, body: m.UpdateIn, sv: SV, rt: RT) -> Response:
        item = await rt.run(sv.update, id, **body.model_dump(exclude_none=True))
        return _ok(item.to_dict())

    @r.delete("/memories/{id}", response_model=m.MemoryItemOut,
              summary="Tombstone (restorable until purged)")
    async def delete(id: IdPath, sv: SV, rt: RT, reason: str | None = None) -> Response:
        return _ok((await rt.run(sv.delete, id, reason=reason)).to_dict())

    @r.post("/memories/{id}/restore", response_model=m.MemoryItemOut,
            summary="Bring a deleted or archived memory back")
    async def restore(id: IdPath, sv: SV, rt: RT) -> Response:
        return _ok((await rt.run(sv.restore, id)).to_dict())

    @r.post("/memories/{id}/archive", response_model=m.MemoryItemOut,
            summary="Archive an active memory")
    async def archive(id: IdPath, sv: SV, rt: RT, body: m.ReasonIn | None = None) -> Response:
        reason = body.reason if body else None
        return _ok((await rt.run(sv.archive, id, reason=reason)).to_dict())

    @r.post("/memories/{id}/release", response_model=m.MemoryItemOut,
            summary="Serve a memory the injection guard quarantined (its owner only)")
    async def release(id: IdPath, sv: SV, rt: RT, body: m.ReasonIn | None = None) -> Response:
        reason = body.reason if body else None
        return _ok((await rt.run(sv.release, id, reason=reason)).to_dict())

    @r.get("/quarantine", response_model=m.PageOut,
           summary="The caller's quarantined memories (never served by search), newest first")
    async def quarantine(sv: SV, rt: RT, user_id: ScopeQ = None, agent_id: ScopeQ = None,
                         session_id: ScopeQ = None, cube_id: ScopeQ = None,
                         limit: LimitQ = 50, offset: OffsetQ = 0) -> Response:
        page = await rt.run(sv.quarantined, user_id=user_id, agent_id=agent_id,
                            session_id=session_id, cube_id=cube_id, limit=limit,
                            offset=offset)
        return _ok(page.to_dict())

    @r.post("/memories/{id}/purge", response_model=m.PurgeOut,
            summary="Remove every version for good")
    async def purge(id: IdPath, sv: SV, rt: RT, body: m.ReasonIn | None = None) -> Response:
        n = await rt.run(sv.purge, id, reason=body.reason if body else None)
        return _ok({"id": id, "purged_versions": n})

    @r.get("/memories/{id}/history", response_model=m.HistoryOut,
           summary="Every version, oldest first")
    async def history(id: IdPath, sv: SV, rt: RT, known_at: TimeQ = None) -> Response:
        versions = await rt.run(sv.history, id, known_at=_time(known_at))
        return _ok({"id": id, "versions": _items(versions)})

    @r.post("/search", response_model=m.HitsOut, summary="Hybrid (dense + lexical) search")
    async def search(body: m.SearchIn, sv: SV, rt: RT) -> Response:
        fields = body.model_dump(exclude_unset=True)
        if body.filters is not None:
            fields["filters"] = body.filters.model_dump(exclude_none=True)
        hits = await rt.run(sv.search, fields.pop("query"), **fields)
        return _ok({"hits": [h.to_dict() for h in hits]})

    @r.get("/count", response_model=m.CountOut, summary="How many memories (per status)")
    async def count(sv: SV, rt: RT, user_id: ScopeQ = None, status: StatusQ = None
                    ) -> Response:
        return _ok({"count": await rt.run(sv.count, user_id=user_id, status=_status(status))})

    @r.post("/links", status_code=204, response_class=Response, summary="Link two memories")
    async def link(body: m.LinkIn, sv: SV, rt: RT) -> Response:
        await rt.run(sv.link, body.src, body.dst, kind=body.kind, weight=body.weight)
        return Response(status_code=204)

    @r.delete("/links", status_code=204, response_class=Response, summary="Remove a link")
    async def unlink(src: IdQ, dst: IdQ, sv: SV, rt: RT,
                     kind: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] = "related"
                     ) -> Response:
        await rt.run(sv.unlink, src, dst, kind=kind)
        return Response(status_code=204)

    @r.get("/audit", response_model=m.AuditOut, summary="Audit events, oldest first")
    async def audit(sv: SV, rt: RT, item_id: Annotated[str | None, Query(
                        pattern=m.ID_PATTERN)] = None,
                    action: Annotated[str | None, Query(max_length=64)] = None,
                    after: OffsetQ = 0, limit: LimitQ = 100) -> Response:
        events = await rt.run(sv.audit, item_id=item_id, action=action, after=after,
                              limit=limit)
        return _ok({"events": [e.to_dict() for e in events]})

    @r.get("/export", summary="Every memory in scope as JSONL (one MemoryItem per line)",
           response_class=StreamingResponse,
           responses={200: {"content": {"application/x-ndjson": {}}}})
    async def export(sv: SV, rt: RT, history: bool = False) -> Response:
        items = sv.export(history=history)
        first = await rt.run(_take, items, 256)  # errors here still get a status code

        async def lines() -> AsyncIterator[str]:
            chunk = first
            while chunk:
                yield "".join(_dumps(i.to_dict()) + "\n" for i in chunk)
                chunk = await rt.run(_take, items, 256)
        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return r


class ClientGone(Exception):
    """Raised between two batches of a request whose client has disconnected."""


@contextmanager
def _while_connected(request: Request) -> Iterator[Callable[[], None]]:
    """A check to call between units of work: it raises :class:`ClientGone` once the
    client has disconnected (watched from the event loop while the block runs), so a
    long request stops where the store allows (between transactions)."""
    gone = threading.Event()

    async def watch() -> None:
        while not gone.is_set():
            if await request.is_disconnected():
                gone.set()
                return
            await asyncio.sleep(0.05)

    def check() -> None:
        if gone.is_set():
            raise ClientGone()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        yield check
    finally:
        gone.set()
        watcher.cancel()


def _take(items: Iterator[MemoryItem], n: int) -> list[MemoryItem]:
    out = []
    for item in items:
        out.append(item)
        if len(out) == n:
            break
    return out


def _service() -> APIRouter:
    r = APIRouter(prefix="/v1", responses=_ERRORS, tags=["service"])

    @r.get("/health", response_model=m.HealthOut,
           summary="Liveness and load (no key needed; never waits for a worker)")
    async def health(rt: RT) -> Response:
        return _ok({"status": "ok", "version": __version__,
                    "uptime_s": round(time.time() - rt.metrics.started, 3),
                    "in_flight": rt.running, "queue_depth": rt.waiting,
                    "model": {"configured": rt.llm.configured, **rt.model_pool.stats()}})

    @r.get("/metrics", summary="The caller's memory counts, the server's load and (admin "
                               "keys only) request counts and latencies per route")
    async def metrics(sv: SV, rt: RT) -> Response:
        snap = rt.metrics.snapshot()
        if not sv.principal.admin:  # every principal's traffic is the operator's business
            snap = {"uptime_s": snap["uptime_s"]}
        snap.update({"threads": rt.threads, "in_flight": rt.running,
                     "queue_depth": rt.waiting, "principal": sv.principal.name,
                     "model": {"configured": rt.llm.configured, "id": rt.llm.id,
                               **rt.model_pool.stats()}})
        snap["memories"] = await rt.run(lambda: {s: sv.count(status=s) for s in STATUSES})
        return _ok(snap)

    @r.get("/whoami", response_model=m.PrincipalOut, summary="The caller's principal and scope")
    async def whoami(sv: SV) -> Response:
        p = sv.principal
        return _ok({"name": p.name, "user_id": p.user_id, "agent_id": p.agent_id,
                    "key_id": p.key_id, "id_prefix": id_prefix(p.user_id, p.agent_id)})

    @r.post("/flush", status_code=204, response_class=Response,
            summary="Write buffered access statistics")
    async def flush(sv: SV, rt: RT) -> Response:
        await rt.run(sv.flush)
        return Response(status_code=204)

    @r.get("/check", summary="Integrity report (operators only: scoped keys get 403)")
    async def check(sv: SV, rt: RT) -> Response:
        return _ok(await rt.run(sv.check))

    return r
