"""``memvault mcp``: the vault as MCP tools for one API key's principal.

The command parses options and reads ``$MEMVAULT_API_KEY`` / ``$MEMVAULT_LLM_API_KEY``
(this is the edge); :func:`memvault.server.mcp.run_mcp` does the serving.
"""

from __future__ import annotations

import click

from ._common import App, global_options, pass_app

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
@click.option("--llm", "llm_spec", metavar="SPEC",
              help="Model for memory_chat and fine memory_remember: local, "
                   "openai:<base_url>#<model>, ollama:<model>; default $MEMVAULT_LLM, else "
                   "none (no chat tool).")
@click.option("--llm-api-key", envvar="MEMVAULT_LLM_API_KEY", metavar="KEY",
              help="Key for an HTTP LLM; default $MEMVAULT_LLM_API_KEY.")
@global_options
@pass_app
def mcp_command(app: App, transport: str, host: str, port: int, token: str | None,
                llm_spec: str | None, llm_api_key: str | None) -> None:
    """Serve the vault as MCP tools for one API key's principal.

    Tools: memory_add, memory_search, memory_get, memory_update, memory_delete,
    memory_restore, memory_history, memory_share, memory_unshare, memory_grants,
    memory_remember, and memory_chat when an LLM is configured (--llm). With
    --transport stdio (the default) an MCP client spawns this command for the principal
    of --key; with --transport http it listens on http://HOST:PORT/mcp and, like the
    REST server, every request must carry its own key (Authorization: Bearer KEY) and
    acts as that key's principal (--key is not used).
    """
    from .._extras import requires
    from ._common import require_existing

    with requires("mcp", "memvault mcp"):
        from ..server.mcp import run_mcp

    settings = app.settings()
    require_existing(settings)
    run_mcp(settings, token, transport=transport, host=host, port=port, llm=llm_spec,
            llm_api_key=llm_api_key, announce=lambda line: click.echo(line, err=True))
