"""``memvault serve`` and ``memvault keys create|list|revoke``.

Plain click commands; register them with ``cli.add_command(serve)`` and
``cli.add_command(keys)``. Like the rest of the CLI they read settings at the edge with
:meth:`Settings.from_env`, take ``--db``/``--embedder``/``--json`` after the command name
or (through the root group's options) before it, and turn a MemvaultError into
``error [<code>]: <message>`` with exit status 2.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable

import click

from ._tables import kv, short_time, table
from .._extras import requires
from ..errors import MemvaultError
from ..governance.principals import KeyStore, operator
from ..settings import Settings

__all__ = ["serve", "keys"]


def _root_option(ctx: click.Context, name: str) -> Any:
    """A global option given before the command name (kept by the root group's App)."""
    return getattr(ctx.find_root().obj, name, None)


def _settings(ctx: click.Context, db: str | None, embedder: str | None) -> Settings:
    return Settings.from_env(os.environ, path=db or _root_option(ctx, "db"),
                             embedder=embedder or _root_option(ctx, "embedder"))


def _options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--json", "as_json", is_flag=True,
                     help="Machine output: one JSON document.")(f)
    f = click.option("--embedder", metavar="NAME",
                     help="minilm, mpnet or hash[-DIM]; default $MEMVAULT_EMBEDDER, else the "
                          "vault's own (minilm for a new one).")(f)
    return click.option("--db", metavar="PATH",
                        help="Vault file; default $MEMVAULT_PATH or ~/.memvault/vault.db.")(f)


def _errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """``error [code]: message`` and exit 2, also when not run under the root group."""
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except MemvaultError as exc:
            click.echo(f"error [{exc.code}]: {exc.message}", err=True)
            click.get_current_context().exit(2)
    return wrapper


def _out(ctx: click.Context, as_json: bool, human: str | Callable[[], str], doc: Any) -> None:
    if as_json or _root_option(ctx, "as_json"):
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
    else:
        click.echo(human() if callable(human) else human)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="MEMVAULT_HOST",
              help="Interface to listen on ($MEMVAULT_HOST).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              envvar="MEMVAULT_PORT", help="TCP port ($MEMVAULT_PORT).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Vault calls running at once; more wait in a queue.")
@click.option("--max-body-bytes", default=1_048_576, show_default=True,
              type=click.IntRange(1), help="Larger request bodies get 413.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option("--llm", "llm_spec", metavar="SPEC",
              help="The model of /v1/chat and fine /v1/remember: local (SmolLM2), "
                   "openai:<base_url>#<model>, ollama:<model>; default $MEMVAULT_LLM, "
                   "else none (those routes answer model_unavailable).")
@click.option("--llm-api-key", envvar="MEMVAULT_LLM_API_KEY", metavar="KEY",
              help="Key for an HTTP LLM; default $MEMVAULT_LLM_API_KEY.")
@click.option("--llm-timeout", default=60.0, show_default=True,
              help="Seconds per LLM request (HTTP endpoints).")
@click.option("--proxy-to", metavar="URL",
              help="Serve POST /v1/chat/completions as a memory proxy in front of this "
                   "OpenAI-compatible base URL (authenticated with --llm-api-key). Without "
                   "it, that route answers with --llm.")
@click.option("--scheduler-interval", type=click.FloatRange(1.0), metavar="SECONDS",
              help="Run the scheduler in the server process every SECONDS (forget, links, "
                   "consolidation, heat; activation blocks and adapters with --llm local). "
                   "Default: off.")
@_options
@click.pass_context
@_errors
def serve(ctx: click.Context, host: str, port: int, threads: int, max_body_bytes: int,
          log_level: str, access_log: bool, llm_spec: str | None, llm_api_key: str | None,
          llm_timeout: float, proxy_to: str | None, scheduler_interval: float | None,
          db: str | None, embedder: str | None, as_json: bool) -> None:
    """Serve the vault over HTTP (REST, OpenAPI at /openapi.json).

    Every request needs an API key (memvault keys create). Stops on Ctrl-C or SIGTERM
    after in-flight requests finish.
    """
    with requires("server", "memvault serve"):
        from ..server.serve import serve as run

    settings = _settings(ctx, db, embedder)
    if llm_spec is not None:
        settings = settings.replace(llm=llm_spec)
    click.echo(f"memvault: serving {settings.path} on http://{host}:{port} "
               f"(API docs: http://{host}:{port}/docs; LLM: {settings.llm or 'none'}"
               f"{'; proxy to ' + proxy_to if proxy_to else ''})",
               err=True)
    run(settings, host, port, threads=threads, max_body_bytes=max_body_bytes,
        log_level=log_level, access_log=access_log, llm_api_key=llm_api_key,
        llm_timeout=llm_timeout, scheduler_interval=scheduler_interval, proxy_to=proxy_to)


@click.group()
def keys() -> None:
    """API keys: each is bound to one principal and one user (and maybe agent) scope."""


@keys.command("create")
@click.argument("principal")
@click.option("--user", "user_id", required=True, metavar="ID",
              help="The user scope every call with this key is confined to.")
@click.option("--agent", "agent_id", metavar="ID", help="Also confine the key to this agent.")
@click.option("--name", metavar="TEXT", help="A label for the key (e.g. where it is used).")
@click.option("--admin", is_flag=True, help="The principal may also read server-wide "
                                            "metrics (no access to others' memories).")
@_options
@click.pass_context
@_errors
def create(ctx: click.Context, principal: str, user_id: str, agent_id: str | None,
           name: str | None, admin: bool, db: str | None, embedder: str | None,
           as_json: bool) -> None:
    """Make a key for PRINCIPAL and print it (shown only this once). A principal keeps
    the user (and agent) of its first key."""
    with KeyStore.for_vault(_settings(ctx, db, embedder)) as store:
        token = store.create(principal, user_id, agent_id, name=name, admin=admin,
                             actor=operator())
    key_id = token.split("_", 2)[1]
    doc = {"key_id": key_id, "token": token, "principal": principal, "user_id": user_id,
           "agent_id": agent_id, "name": name}
    _out(ctx, as_json, lambda: f"{token}\n(key {key_id} for {principal}, user {user_id}"
         f"{', agent ' + agent_id if agent_id else ''}; store it now: it is not shown again)",
         doc)


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@_options
@click.pass_context
@_errors
def list_(ctx: click.Context, include_revoked: bool, db: str | None, embedder: str | None,
          as_json: bool) -> None:
    """List keys (never their secrets)."""
    with KeyStore.for_vault(_settings(ctx, db, embedder)) as store:
        infos = store.list(include_revoked=include_revoked)

    def human() -> str:
        if not infos:
            return "no keys"
        return table(["key", "principal", "user", "agent", "name", "created", "revoked"],
                     [(k.key_id, k.principal, k.user_id, k.agent_id or "", k.name or "",
                       short_time(k.created_at), short_time(k.revoked_at) if k.revoked_at
                       else "") for k in infos], flex=4)
    _out(ctx, as_json, human, {"keys": [k.to_dict() for k in infos]})


@keys.command("revoke")
@click.argument("key_id")
@_options
@click.pass_context
@_errors
def revoke(ctx: click.Context, key_id: str, db: str | None, embedder: str | None,
           as_json: bool) -> None:
    """Revoke key KEY_ID; requests with it fail from now on."""
    with KeyStore.for_vault(_settings(ctx, db, embedder)) as store:
        info = store.revoke(key_id, actor=operator())
    _out(ctx, as_json, lambda: kv([("revoked", info.key_id), ("principal", info.principal),
                                   ("user", info.user_id)]), info.to_dict())
