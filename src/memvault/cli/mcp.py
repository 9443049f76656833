"""``memvault mcp``: the vault as MCP tools (see :mod:`memvault.server.mcp`), over stdio
for the principal of one key, or over streamable HTTP with a key on every request."""

from __future__ import annotations

import signal

import click

from .._extras import requires
from ..errors import Unauthorized
from ..governance.grants import GrantStore
from ..governance.principals import KeyStore
from ..governance.scope import ScopedVault
from .server import _errors, _settings

__all__ = ["mcp_command"]


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
    """Serve the vault as MCP tools, confined to the caller's API key.

    Tools: memory_add, memory_search, memory_get, memory_update, memory_delete,
    memory_restore, memory_history, memory_share, memory_unshare, memory_grants,
    memory_remember, and memory_chat when an LLM is configured (--llm). With
    --transport stdio (the default) an MCP client spawns this command for the principal
    of --key; with --transport http it listens on http://HOST:PORT/mcp and, like the
    REST server, every request must carry its own key (Authorization: Bearer KEY) and
    acts as that key's principal (--key is not used).
    """
    with requires("mcp", "memvault mcp"):
        from ..server.mcp import build_mcp, serve_http
        from ..server.model_slot import ModelSlot
        from ..server.serve import _stop_on_sigterm, _Stopped
    from ..vault import Vault

    settings = _settings(ctx, db, embedder)
    vault = Vault(settings=settings)
    previous = _stop_on_sigterm()
    try:
        keys = KeyStore.for_vault(vault)  # keys and grants live in the vault's store
        try:
            slot = ModelSlot(llm_spec or settings.llm, api_key=llm_api_key)
            if transport == "http":
                click.echo(f"memvault: MCP on http://{host}:{port}/mcp (each request needs "
                           f"Authorization: Bearer <key>), vault {settings.path}", err=True)
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
            click.echo(f"memvault: MCP over stdio for {who}, vault {settings.path}", err=True)
            server.run("stdio")
        finally:
            keys.close()
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        vault.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # python -m memvault.cli.mcp
    mcp_command(prog_name="memvault mcp")
