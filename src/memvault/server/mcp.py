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

:data:`mcp_command` is the click command (``memvault mcp``): it resolves ``--key``
(or ``$MEMVAULT_API_KEY``) through :meth:`KeyStore.verify` to a principal and serves
that principal's view of the vault over stdio (default) or streamable HTTP. The key is
checked again on every call, so revoking it takes effect at once.
"""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING, Annotated, Any, Callable

import anyio
import anyio.to_thread
import click
from pydantic import Field

from .. import __version__
from ..errors import MemvaultError, Unauthorized
from ..governance.grants import GrantStore
from ..governance.principals import KeyStore
from ..governance.scope import ScopedVault
from ..cli.server import _errors, _settings
from .mcp_working import WORKING_TOOL_NAMES, add_working_tools
from .model_slot import ModelSlot
from .wire import remember_doc
from .serve import _stop_on_sigterm, _Stopped

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.types import CallToolResult

__all__ = ["build_mcp", "mcp_command", "TOOL_NAMES", "MODEL_TOOL_NAMES"]

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

Result = dict[str, Any]


def _error_result(exc: MemvaultError) -> CallToolResult:
    from mcp.types import CallToolResult, TextContent

    body = json.loads(json.dumps(exc.to_dict(), default=str))  # details may hold odd types
    return CallToolResult(content=[TextContent(type="text",
                                               text=f"error [{exc.code}]: {exc.message}")],
                          structured_content=body, is_error=True)


def build_mcp(scoped: ScopedVault, *, check_key: Callable[[], None] | None = None,
              name: str = "memvault", llm: Any = None) -> MCPServer:
    """An MCP server whose tools act on ``scoped`` (which it neither owns nor closes).

    ``check_key``, if given, runs (in the worker thread) before every tool call; it should
    raise :class:`Unauthorized` when the caller's key is no longer valid. ``llm`` (an LLM,
    a spec, or a :class:`~memvault.server.model_slot.ModelSlot`) adds ``memory_chat`` and
    lets ``memory_remember`` read facts now (``mode="fine"``); without one, fine mode is a
    ``model_unavailable`` tool error and there is no chat tool.
    """
    # the SDK costs ~0.7 s to import: only `memvault mcp` pays it, not every CLI command
    from mcp.server.mcpserver import MCPServer
    from mcp.types import CallToolResult, ToolAnnotations
    server = MCPServer(name, version=__version__, instructions=_INSTRUCTIONS,
                       log_level="WARNING")

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

    def tool(description: str, *, read_only: bool = False, destructive: bool = False,
             idempotent: bool = False) -> Callable[[Callable[..., Any]], Any]:
        return server.tool(description=description, annotations=ToolAnnotations(
            read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent,
            open_world_hint=False))

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
                         cube_id: CubeId = None) -> Result:
        return item_result(await call(
            scoped.add, text, kind=kind, tags=tags, metadata=metadata, event_time=event_time,
            importance=importance, expires_at=expires_at, agent_id=agent_id,
            session_id=session_id, cube_id=cube_id))

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
        hits = await call(scoped.search, query, k=k, filters=filters or None, as_of=as_of,
                          known_at=known_at, agent_id=agent_id, session_id=session_id, cube_id=cube_id)
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
        return item_result(await call(scoped.get, id, as_of=as_of, known_at=known_at))

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
            scoped.update, id, text, kind=kind, tags=tags, metadata=metadata,
            event_time=event_time, importance=importance, expires_at=expires_at,
            reason=reason))

    @tool("Delete a memory: it is hidden from search and get's current view but kept in "
          "its history, and memory_restore brings it back.", destructive=True,
          idempotent=True)
    async def memory_delete(id: Id, reason: Reason = None) -> Result:
        return item_result(await call(scoped.delete, id, reason=reason))

    @tool("Bring a deleted or archived memory back.", idempotent=True)
    async def memory_restore(id: Id) -> Result:
        return item_result(await call(scoped.restore, id))

    @tool("Every version of a memory, oldest first (how a fact changed over time).",
          read_only=True, idempotent=True)
    async def memory_history(id: Id) -> Result:
        versions = await call(scoped.history, id)
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
        return item_result(await call(scoped.share, id, to=to, cube_id=cube_id,
                                      everything=everything, write=write,
                                      redact=redact or (), valid_to=valid_to))

    @tool("Revoke a grant this user gave (it stays on record, closed).", idempotent=True)
    async def memory_unshare(grant_id: Annotated[str, Field(description="Grant id.")]
                             ) -> Result:
        return item_result(await call(scoped.unshare, grant_id))

    @tool("Grants this user gave and those given to it.", read_only=True, idempotent=True)
    async def memory_grants(id: Annotated[str | None, Field(description="Only grants of "
                                                                       "this memory.")] = None
                            ) -> Result:
        grants = await call(scoped.grants, item_id=id)
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
        def work() -> Any:
            if mode == "fine":
                slot.require("fine remember")
            model = slot.get() if mode == "fine" else None
            return scoped.remember(messages, mode=mode, llm=model, agent_id=agent_id,
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
            result = await call(lambda: scoped.chat(
                query, llm=slot.get(), k=k, remember=remember, agent_id=agent_id,
                session_id=session_id, cube_id=cube_id))
            return result if isinstance(result, CallToolResult) else result.to_dict()

    add_working_tools(server, scoped, call, tool)  # task_*, file_*: working memory
    return server


# -- the command -----------------------------------------------------------------------
@click.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio",
              show_default=True, help="stdio (spawned by the client) or streamable HTTP.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface for --transport http.")
@click.option("--port", default=8766, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port for --transport http (endpoint: /mcp).")
@click.option("--key", "token", metavar="TOKEN", envvar="MEMVAULT_API_KEY",
              help="API key (memvault keys create); default $MEMVAULT_API_KEY. Every tool "
                   "call is confined to its principal's scope.")
@click.option("--db", metavar="PATH",
              help="Vault file; default $MEMVAULT_PATH or ~/.memvault/vault.db.")
@click.option("--embedder", metavar="NAME",
              help="minilm, mpnet or hash[-DIM]; default $MEMVAULT_EMBEDDER, else the "
                   "vault's own (minilm for a new one).")
@click.option("--llm", "llm_spec", metavar="SPEC",
              help="Model for memory_chat and fine memory_remember: local, "
                   "openai:<base_url>#<model>, ollama:<model>; default $MEMVAULT_LLM, else "
                   "none (no chat tool).")
@click.option("--llm-api-key", envvar="MEMVAULT_LLM_API_KEY", metavar="KEY",
              help="Key for an HTTP LLM; default $MEMVAULT_LLM_API_KEY.")
@click.pass_context
@_errors
def mcp_command(ctx: click.Context, transport: str, host: str, port: int, token: str | None,
                db: str | None, embedder: str | None, llm_spec: str | None,
                llm_api_key: str | None) -> None:
    """Serve the vault as MCP tools for one API key's principal.

    Tools: memory_add, memory_search, memory_get, memory_update, memory_delete,
    memory_restore, memory_history, memory_share, memory_unshare, memory_grants,
    memory_remember, the working-memory task_* and file_* tools, and memory_chat when
    an LLM is configured (--llm). With
    --transport stdio (the default) an MCP client
    spawns this command; with --transport http it listens on http://HOST:PORT/mcp.
    """
    from ..vault import Vault

    settings = _settings(ctx, db, embedder)
    keys = KeyStore.for_vault(settings.path)
    try:
        if not token:
            raise Unauthorized("an API key is required: --key TOKEN or $MEMVAULT_API_KEY "
                               "(make one with: memvault keys create)")
        principal = keys.verify(token)
        if principal is None:
            raise Unauthorized("invalid or revoked API key")

        def check_key() -> None:
            if keys.verify(token) is None:
                raise Unauthorized("the API key has been revoked")

        vault = Vault(settings=settings)
        previous = _stop_on_sigterm()
        try:
            slot = ModelSlot(llm_spec or settings.llm, api_key=llm_api_key)
            server = build_mcp(ScopedVault(vault, principal, grants=GrantStore(keys),
                                           audit_reads=True), check_key=check_key, llm=slot)
            who = f"{principal.name} (user {principal.user_id}" + \
                (f", agent {principal.agent_id})" if principal.agent_id else ")")
            if transport == "stdio":
                click.echo(f"memvault: MCP over stdio for {who}, vault {settings.path}",
                           err=True)
                server.run("stdio")
            else:
                click.echo(f"memvault: MCP on http://{host}:{port}/mcp for {who}, "
                           f"vault {settings.path}", err=True)
                server.run("streamable-http", host=host, port=port)
        except (KeyboardInterrupt, _Stopped):
            pass
        finally:
            vault.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    finally:
        keys.close()


if __name__ == "__main__":  # python -m memvault.server.mcp (before cli registration)
    mcp_command(prog_name="memvault mcp")
