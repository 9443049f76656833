"""``memvault mcp``: the vault as Model Context Protocol tools, for one principal.

:func:`build_mcp` turns a :class:`~memvault.governance.scope.ScopedVault` into an
:class:`mcp.server.mcpserver.MCPServer` (the official ``mcp`` SDK, 2.x; FastMCP's new
name) with the tools ``memory_add``, ``memory_search``, ``memory_get``,
``memory_update``, ``memory_delete``, ``memory_restore``, ``memory_history`` and
``memory_remember``, ``memory_chat`` when an LLM is configured, and for sharing
``memory_share``, ``memory_unshare`` and ``memory_grants``. Each
tool has a typed signature (so a JSON schema), returns a JSON-serialisable dict
(``MemoryItem.to_dict()``, ``SearchHit.to_dict()``) and runs its vault call in a worker
thread, never on the event loop.

A :class:`~memvault.errors.MemvaultError` becomes a tool error result (``isError``)
whose text is ``error [<code>]: <message>`` and whose structured content is
``{"code", "message", "details"?}``; nothing else (no traceback) reaches the client.
Any other exception is reported by the SDK as ``Error executing tool <name>``.

The ``memvault mcp`` command (``cli/mcp.py``) serves it. Over stdio it resolves
``--key`` (or ``$MEMVAULT_API_KEY``) through :meth:`KeyStore.verify` to a principal and
serves that principal's view of the vault, checking the key again on every call. Over
streamable HTTP (:func:`http_app`) there is no server-wide key: like the REST server,
every HTTP request must carry ``Authorization: Bearer <key>`` (:class:`KeyGate` answers
401 otherwise) and each tool call acts as the principal of the key on the request that
carried it, so a process that merely reaches the port can do nothing, and revoking a
key takes effect at once.
:func:`run_mcp` is what ``memvault mcp`` calls.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import signal
import typing
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Mapping

import anyio
import anyio.to_thread
from pydantic import Field

from .. import __version__
from ..errors import InvalidInput, MemvaultError, Unauthorized
from ..governance.grants import GrantStore
from ..governance.principals import KeyStore
from ..governance.scope import ScopedVault
from .mcp_working import WORKING_TOOL_NAMES, add_working_tools
from .model_slot import ModelSlot
from .wire import remember_doc
from .serve import _stop_on_sigterm, _Stopped
from ..settings import Settings

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.types import CallToolResult

__all__ = ["build_mcp", "http_app", "serve_http", "run_mcp", "caller_resolver", "KeyGate",
           "TOOL_NAMES", "MODEL_TOOL_NAMES"]

TOOL_NAMES = ("memory_add", "memory_search", "memory_get", "memory_update",
              "memory_delete", "memory_restore", "memory_history", "memory_share",
              "memory_unshare", "memory_grants", "memory_remember", *WORKING_TOOL_NAMES)
#: Tools added when the server has an LLM.
MODEL_TOOL_NAMES = ("memory_chat",)

_INSTRUCTIONS = """\
Long-term memory for this user: versioned, searchable notes, facts and preferences.
Search before answering questions about the user's past; add durable facts worth
remembering; update (not re-add) a memory when a fact changes - the old version stays
in its history. Every call is confined to the user the server's API key belongs to.
Errors come back as tool errors reading 'error [<code>]: <message>' (codes:
invalid_input, not_found, conflict, permission_denied, unauthorized, ...)."""

# -- parameter types (the JSON schema the client sees) ---------------------------------
Id = Annotated[str, Field(description="Memory id, as returned by memory_add or memory_search.")]
Text = Annotated[str, Field(description="The memory's text (at most 64 KiB).")]
Kind = Annotated[str, Field(description="What the memory is: note, fact, preference, "
                                        "profile, turn, ... (lowercase, at most 32 chars).")]
AgentId = Annotated[str | None, Field(description="Agent scope (optional; a key bound to "
                                                  "an agent always uses its own).")]
SessionId = Annotated[str | None, Field(description="Session / conversation scope.")]
CubeId = Annotated[str | None, Field(description="Memory cube (collection) scope.")]
Metadata = Annotated[dict[str, Any] | None, Field(
    description="JSON object of extra attributes (at most 16 KiB).")]
Tags = Annotated[list[str] | None, Field(description="Tags (at most 64).")]
Time = Annotated[str | None, Field(description="ISO-8601 time, e.g. 2024-05-01T12:00:00Z.")]
Reason = Annotated[str | None, Field(description="Why; kept in the audit log.")]
# an agent re-stating what it already stored is the common case over MCP: the schema
# names the choices so the client's model can pick one, and refuses any other value
Dedup = Annotated[Literal["off", "noop", "version"], Field(
    description="When the text restates an active memory of this user of the same kind: "
                "off (store it anyway, the default), noop (return that memory, write "
                "nothing) or version (write the text as its next version). The returned "
                "id says which memory was kept.")]

Result = dict[str, Any]


def _error_result(exc: MemvaultError) -> CallToolResult:
    from mcp.types import CallToolResult, TextContent

    body = json.loads(json.dumps(exc.to_dict(), default=str))  # details may hold odd types
    return CallToolResult(content=[TextContent(type="text",
                                               text=f"error [{exc.code}]: {exc.message}")],
                          structured_content=body, is_error=True)


def build_mcp(scoped: ScopedVault | None = None, *,
              check_key: Callable[[], None] | None = None, name: str = "memvault",
              llm: Any = None,
              resolve: Callable[[Mapping[str, str] | None], ScopedVault] | None = None
              ) -> MCPServer:
    """An MCP server whose tools act on ``scoped`` (which it neither owns nor closes), or,
    with ``resolve``, on the principal of each call: ``resolve(headers)`` gets the HTTP
    headers of the request that carried the call (``None`` without HTTP) and returns
    that caller's ScopedVault or raises :class:`Unauthorized` (run in a worker thread).

    ``check_key``, if given, runs (in the worker thread) before every vault call; it should
    raise :class:`Unauthorized` when the caller's key is no longer valid. ``llm`` (an LLM,
    a spec, or a :class:`~memvault.server.model_slot.ModelSlot`) adds ``memory_chat`` and
    lets ``memory_remember`` read facts now (``mode="fine"``); without one, fine mode is a
    ``model_unavailable`` tool error and there is no chat tool.
    """
    if (scoped is None) == (resolve is None):
        raise ValueError("give exactly one of scoped and resolve")
    # the SDK costs ~0.7 s to import: only `memvault mcp` pays it, not every CLI command
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.types import CallToolResult, ToolAnnotations
    server = MCPServer(name, version=__version__, instructions=_INSTRUCTIONS,
                       log_level="WARNING")
    current: contextvars.ContextVar[ScopedVault] = contextvars.ContextVar("memvault_mcp_caller")

    def sv() -> ScopedVault:
        """The caller of the tool call being served."""
        return current.get()

    async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking vault call in a worker thread; memvault errors -> tool errors."""
        def work() -> Any:
            if check_key is not None:
                check_key()
            return fn(*args, **kwargs)
        try:
            return await anyio.to_thread.run_sync(work)
        except MemvaultError as exc:
            return _error_result(exc)

    def as_caller(fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` run with :func:`sv` set to the caller of this call (the SDK injects the
        request context into the extra ``ctx`` parameter; clients never see it)."""
        hints = typing.get_type_hints(fn, include_extras=True)

        async def wrapper(ctx: Any, **kwargs: Any) -> Any:
            if resolve is None:
                who = scoped
            else:
                try:
                    who = await anyio.to_thread.run_sync(resolve, ctx.headers)
                except MemvaultError as exc:
                    return _error_result(exc)
            token = current.set(who)  # type: ignore[arg-type]
            try:
                return await fn(**kwargs)
            finally:
                current.reset(token)
        sig = inspect.signature(fn)
        params = [p.replace(annotation=hints[p.name]) for p in sig.parameters.values()]
        params.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Context))
        wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=params, return_annotation=hints.get("return", Any))
        wrapper.__annotations__ = {**hints, "ctx": Context}
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper

    def tool(description: str, *, read_only: bool = False, destructive: bool = False,
             idempotent: bool = False) -> Callable[[Callable[..., Any]], Any]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            server.add_tool(as_caller(fn), name=fn.__name__, description=description,
                            annotations=ToolAnnotations(
                                read_only_hint=read_only, destructive_hint=destructive,
                                idempotent_hint=idempotent, open_world_hint=False))
            return fn
        return register

    def item_result(item: Any) -> Any:
        return item if isinstance(item, CallToolResult) else item.to_dict()

    @tool("Store a new memory (a fact, preference, note, ...) for this user and return it, "
          "with its id. Use memory_update instead when an existing memory's fact changed.")
    async def memory_add(text: Text, kind: Kind = "note", tags: Tags = None,
                         metadata: Metadata = None, event_time: Annotated[str | None, Field(
                             description="When the remembered event happened (ISO-8601); "
                                         "default: now.")] = None,
                         importance: Annotated[float, Field(
                             description="0 (trivia) .. 1 (crucial).")] = 0.5,
                         expires_at: Annotated[str | None, Field(
                             description="ISO-8601 time after which the memory is no longer "
                                         "returned.")] = None,
                         agent_id: AgentId = None, session_id: SessionId = None,
                         cube_id: CubeId = None, dedup: Dedup = "off") -> Result:
        return item_result(await call(
            sv().add, text, kind=kind, tags=tags, metadata=metadata, event_time=event_time,
            importance=importance, expires_at=expires_at, agent_id=agent_id,
            session_id=session_id, cube_id=cube_id, dedup=dedup))

    @tool("Hybrid (semantic + keyword) search of this user's memories; returns the best "
          "hits, each with a score and the memory.", read_only=True)
    async def memory_search(query: Annotated[str, Field(description="What to look for, in "
                                                                   "natural language.")],
                            k: Annotated[int, Field(description="How many hits (1-1000).")] = 10,
                            kinds: Annotated[list[str] | None, Field(
                                description="Only memories of these kinds.")] = None,
                            tags: Annotated[list[str] | None, Field(
                                description="Only memories with any of these tags.")] = None,
                            metadata: Annotated[dict[str, Any] | None, Field(
                                description="Only memories whose metadata has these "
                                            "key/value pairs (scalar values).")] = None,
                            as_of: Annotated[str | None, Field(
                                description="Search what held in the world at this ISO-8601 "
                                            "time (valid time: 'where did she live in "
                                            "March?').")] = None,
                            known_at: Annotated[str | None, Field(
                                description="Search the memory as the vault had recorded it "
                                            "at this ISO-8601 time.")] = None,
                            agent_id: AgentId = None, session_id: SessionId = None,
                            cube_id: CubeId = None) -> Result:
        filters = {k_: v for k_, v in (("kind", kinds), ("tags", tags),
                                       ("metadata", metadata)) if v}
        hits = await call(sv().search, query, k=k, filters=filters or None, as_of=as_of,
                          known_at=known_at, agent_id=agent_id, session_id=session_id,
                          cube_id=cube_id)
        if isinstance(hits, CallToolResult):
            return hits  # type: ignore[return-value]
        return {"query": query, "hits": [h.to_dict() for h in hits]}

    @tool("Fetch one memory by id: its current version, the version that held in the world "
          "at as_of, or the one the vault had recorded at known_at.",
          read_only=True, idempotent=True)
    async def memory_get(id: Id, as_of: Annotated[str | None, Field(
            description="The version whose statement held at this ISO-8601 time.")] = None,
                         known_at: Annotated[str | None, Field(
            description="The version the vault had recorded at this ISO-8601 time.")] = None
                         ) -> Result:
        return item_result(await call(sv().get, id, as_of=as_of, known_at=known_at))

    @tool("Write a new version of a memory (the old one stays in its history). Only the "
          "fields given change; metadata and tags, when given, replace the old ones.")
    async def memory_update(id: Id, text: Annotated[str | None, Field(
                                description="New text.")] = None,
                            kind: Annotated[str | None, Field(description="New kind.")] = None,
                            tags: Tags = None, metadata: Metadata = None,
                            event_time: Time = None,
                            importance: Annotated[float | None, Field(
                                description="0 .. 1.")] = None,
                            expires_at: Time = None, reason: Reason = None) -> Result:
        return item_result(await call(
            sv().update, id, text, kind=kind, tags=tags, metadata=metadata,
            event_time=event_time, importance=importance, expires_at=expires_at,
            reason=reason))

    @tool("Delete a memory: it is hidden from search and get's current view but kept in "
          "its history, and memory_restore brings it back.", destructive=True,
          idempotent=True)
    async def memory_delete(id: Id, reason: Reason = None) -> Result:
        return item_result(await call(sv().delete, id, reason=reason))

    @tool("Bring a deleted or archived memory back.", idempotent=True)
    async def memory_restore(id: Id) -> Result:
        return item_result(await call(sv().restore, id))

    @tool("Every version of a memory, oldest first (how a fact changed over time).",
          read_only=True, idempotent=True)
    async def memory_history(id: Id) -> Result:
        versions = await call(sv().history, id)
        if isinstance(versions, CallToolResult):
            return versions  # type: ignore[return-value]
        return {"id": id, "versions": [v.to_dict() for v in versions]}

    @tool("Share one of this user's memories (id), a cube (cube_id) or everything with "
          "another principal or team:<name>; returns the grant (revoke: memory_unshare).")
    async def memory_share(to: Annotated[str, Field(description="Principal name or "
                                                               "team:<name>.")],
                           id: Annotated[str | None, Field(description="Memory id.")] = None,
                           cube_id: CubeId = None, everything: bool = False,
                           write: Annotated[bool, Field(description="Also allow changes.")]
                           = False,
                           redact: Annotated[list[str] | None, Field(
                               description="Fields to hide: metadata, provenance, tags, "
                                           "session_id, agent_id, event_time, links.")] = None,
                           valid_to: Time = None) -> Result:
        return item_result(await call(sv().share, id, to=to, cube_id=cube_id,
                                      everything=everything, write=write,
                                      redact=redact or (), valid_to=valid_to))

    @tool("Revoke a grant this user gave (it stays on record, closed).", idempotent=True)
    async def memory_unshare(grant_id: Annotated[str, Field(description="Grant id.")]
                             ) -> Result:
        return item_result(await call(sv().unshare, grant_id))

    @tool("Grants this user gave and those given to it.", read_only=True, idempotent=True)
    async def memory_grants(id: Annotated[str | None, Field(description="Only grants of "
                                                                       "this memory.")] = None
                            ) -> Result:
        grants = await call(sv().grants, item_id=id)
        if isinstance(grants, CallToolResult):
            return grants  # type: ignore[return-value]
        return {"grants": [g.to_dict() for g in grants]}

    slot = llm if isinstance(llm, ModelSlot) else ModelSlot(llm)

    @tool("Store conversation turns for this user. mode 'fast' (default) stores them now "
          "and extracts facts later; 'fine' also extracts facts now and adds, updates or "
          "deletes memories accordingly (needs the server's LLM).")
    async def memory_remember(messages: Annotated[list[dict[str, Any]], Field(
                                  description="Chat messages: {role, content} objects.")],
                              mode: Annotated[str, Field(description="fast or fine.")] = "fast",
                              agent_id: AgentId = None, session_id: SessionId = None,
                              cube_id: CubeId = None) -> Result:
        caller = sv()

        def work() -> Any:
            if mode == "fine":
                slot.require("fine remember")
            model = slot.get() if mode == "fine" else None
            return caller.remember(messages, mode=mode, llm=model, agent_id=agent_id,
                                   session_id=session_id, cube_id=cube_id)
        result = await call(work)
        return result if isinstance(result, CallToolResult) else remember_doc(result)

    if slot.configured:
        @tool("Answer a question with this user's memories and the server's LLM; returns "
              "the answer and the memories it used.")
        async def memory_chat(query: Annotated[str, Field(description="The question.")],
                              k: Annotated[int, Field(description="Memories in the prompt "
                                                                 "(0-1000).")] = 5,
                              remember: Annotated[bool, Field(
                                  description="Store the question and answer as turns.")]
                              = False,
                              agent_id: AgentId = None, session_id: SessionId = None,
                              cube_id: CubeId = None) -> Result:
            caller = sv()
            result = await call(lambda: caller.chat(
                query, llm=slot.get(), k=k, remember=remember, agent_id=agent_id,
                session_id=session_id, cube_id=cube_id))
            return result if isinstance(result, CallToolResult) else result.to_dict()

    add_working_tools(server, sv, call, tool)  # task_*, file_*: working memory
    return server


# -- streamable HTTP: a key on every request -----------------------------------------
def _bearer(headers: Mapping[str, str] | None) -> str | None:
    value = (headers or {}).get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def caller_resolver(vault: Any, keys: KeyStore) -> Callable[[Mapping[str, str] | None],
                                                             ScopedVault]:
    """``resolve`` for :func:`build_mcp` over HTTP: the ScopedVault of the key in the
    request's ``Authorization: Bearer`` header (Unauthorized without a valid one)."""
    grants = GrantStore(keys)

    def resolve(headers: Mapping[str, str] | None) -> ScopedVault:
        token = _bearer(headers)
        principal = keys.verify(token) if token else None
        if principal is None:
            raise Unauthorized("missing, unknown or revoked API key: send "
                               "'Authorization: Bearer <key>'")
        return ScopedVault(vault, principal, grants=grants, audit_reads=True)
    return resolve


class KeyGate:
    """ASGI middleware: every HTTP request needs a valid key (401 JSON otherwise), before
    the MCP SDK sees it; the tools then act as the key of the request that carried them."""

    def __init__(self, app: Any, keys: KeyStore) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers", ())}
            token = _bearer(headers)
            principal = await anyio.to_thread.run_sync(self.keys.verify, token) \
                if token else None
            if principal is None:
                body = json.dumps({"code": "unauthorized", "message": "missing, unknown or "
                                   "revoked API key: send 'Authorization: Bearer <key>'"}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(vault: Any, keys: KeyStore, *, host: str = "127.0.0.1", llm: Any = None) -> Any:
    """The streamable-HTTP MCP app (endpoint ``/mcp``) behind :class:`KeyGate`."""
    server = build_mcp(resolve=caller_resolver(vault, keys), llm=llm)
    return KeyGate(server.streamable_http_app(host=host), keys)


def serve_http(vault: Any, keys: KeyStore, *, host: str, port: int, llm: Any = None) -> None:
    """Serve :func:`http_app` with uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    config = uvicorn.Config(http_app(vault, keys, host=host, llm=llm), host=host, port=port,
                            log_level="warning", lifespan="on")
    uvicorn.Server(config).run()


# -- running it -------------------------------------------------------------------------
def run_mcp(settings: Settings, token: str | None, *, transport: str = "stdio",
            host: str = "127.0.0.1", port: int = 8766, llm: str | None = None,
            llm_api_key: str | None = None,
            announce: Callable[[str], None] | None = None) -> None:
    """What ``memvault mcp`` (:mod:`memvault.cli.mcp`) runs: over stdio, the vault of
    ``settings`` as MCP tools for the principal of API key ``token`` (checked first, then
    again on every tool call) until the client disconnects; over streamable HTTP
    (:func:`serve_http`), every request carries its own key and ``token`` is not used.
    ``announce(line)`` is told what is served."""
    from ..vault import Vault

    if transport not in ("stdio", "http"):
        raise InvalidInput("transport must be stdio or http")
    vault = Vault(settings=settings)
    previous = _stop_on_sigterm()
    try:
        keys = KeyStore.for_vault(vault)  # keys and grants live in the vault's store
        try:
            vault.prepare()  # index and guard now, not in the first tool call
            slot = ModelSlot(llm or settings.llm, api_key=llm_api_key)
            where = settings.store or settings.path
            if transport == "http":
                if announce:
                    announce(f"memvault: MCP on http://{host}:{port}/mcp (each request needs "
                             f"Authorization: Bearer <key>), vault {where}")
                serve_http(vault, keys, host=host, port=port, llm=slot)
                return
            if not token:
                raise Unauthorized("an API key is required: --key TOKEN or $MEMVAULT_API_KEY "
                                   "(make one with: memvault keys create)")
            principal = keys.verify(token)
            if principal is None:
                raise Unauthorized("invalid or revoked API key")

            def check_key() -> None:
                if keys.verify(token) is None:
                    raise Unauthorized("the API key has been revoked")

            server = build_mcp(ScopedVault(vault, principal, grants=GrantStore(keys),
                                           audit_reads=True), check_key=check_key, llm=slot)
            who = f"{principal.name} (user {principal.user_id}" + \
                (f", agent {principal.agent_id})" if principal.agent_id else ")")
            if announce:
                announce(f"memvault: MCP over stdio for {who}, vault {where}")
            server.run("stdio")
        finally:
            keys.close()
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        vault.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
