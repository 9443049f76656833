"""``memvault serve`` and ``memvault keys create|list|revoke``.

``serve`` binds its port before it says it is serving: a busy port is one line,
``error [configuration_error]: cannot listen on ...``, and exit status 2. ``keys
create`` prints the token alone on stdout (the note goes to stderr), so
``KEY=$(memvault keys create ...)`` captures exactly the key.
"""

from __future__ import annotations

import click

from ._common import App, global_options, pass_app
from ._tables import kv, short_time, table
from .._extras import requires

__all__ = ["serve", "keys"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="MEMVAULT_HOST",
              help="Interface to listen on ($MEMVAULT_HOST).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              envvar="MEMVAULT_PORT", help="TCP port ($MEMVAULT_PORT; 0 picks a free one).")
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
@global_options
@pass_app
def serve(app: App, host: str, port: int, threads: int, max_body_bytes: int,
          log_level: str, access_log: bool, llm_spec: str | None, llm_api_key: str | None,
          llm_timeout: float, proxy_to: str | None, scheduler_interval: float | None) -> None:
    """Serve the vault over HTTP (REST, OpenAPI at /openapi.json).

    Every request needs an API key (memvault keys create). Stops on Ctrl-C or SIGTERM
    after in-flight requests finish.
    """
    with requires("server", "memvault serve"):
        from ..server.serve import bind, serve as run

    settings = app.settings()
    if llm_spec is not None:
        settings = settings.replace(llm=llm_spec)
    sock = bind(host, port)  # before anything is announced or opened
    bound = sock.getsockname()[1]

    def announce() -> None:
        click.echo(f"memvault: serving {settings.store or settings.path} on "
                   f"http://{host}:{bound} (API docs: http://{host}:{bound}/docs; "
                   f"LLM: {settings.llm or 'none'}"
                   f"{'; proxy to ' + proxy_to if proxy_to else ''})", err=True)
    run(settings, host, bound, threads=threads, max_body_bytes=max_body_bytes,
        log_level=log_level, access_log=access_log, llm_api_key=llm_api_key,
        llm_timeout=llm_timeout, scheduler_interval=scheduler_interval, sock=sock,
        ready=announce, proxy_to=proxy_to)


@click.group()
def keys() -> None:
    """API keys: each is bound to one principal and one user (and maybe agent) scope."""


def _keystore(app: App):  # type: ignore[no-untyped-def]
    from ..governance.principals import KeyStore

    return KeyStore.for_vault(app.settings())  # keys and grants live in the vault's store


@keys.command("create")
@click.argument("principal")
@click.option("--user", "user_id", required=True, metavar="ID",
              help="The user scope every call with this key is confined to.")
@click.option("--agent", "agent_id", metavar="ID", help="Also confine the key to this agent.")
@click.option("--name", metavar="TEXT", help="A label for the key (e.g. where it is used).")
@click.option("--admin", is_flag=True, help="The principal may also read server-wide "
                                            "metrics (no access to others' memories).")
@global_options
@pass_app
def create(app: App, principal: str, user_id: str, agent_id: str | None,
           name: str | None, admin: bool) -> None:
    """Make a key for PRINCIPAL and print it (shown only this once). A principal keeps
    the user (and agent) of its first key.

    The key alone goes to stdout, so KEY=$(memvault keys create ...) captures it; what
    it is for goes to stderr.
    """
    from ..governance.principals import operator

    with _keystore(app) as store:
        token = store.create(principal, user_id, agent_id, name=name, admin=admin,
                             actor=operator())
    key_id = token.split("_", 2)[1]
    doc = {"key_id": key_id, "token": token, "principal": principal, "user_id": user_id,
           "agent_id": agent_id, "name": name}
    app.out(token, doc)
    if not app.as_json:
        click.echo(f"(key {key_id} for {principal}, user {user_id}"
                   f"{', agent ' + agent_id if agent_id else ''}; store it now: it is not "
                   "shown again)", err=True)


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@global_options
@pass_app
def list_(app: App, include_revoked: bool) -> None:
    """List keys (never their secrets)."""
    with _keystore(app) as store:
        infos = store.list(include_revoked=include_revoked)

    def human() -> str:
        if not infos:
            return "no keys"
        return table(["key", "principal", "user", "agent", "name", "created", "revoked"],
                     [(k.key_id, k.principal, k.user_id, k.agent_id or "", k.name or "",
                       short_time(k.created_at), short_time(k.revoked_at) if k.revoked_at
                       else "") for k in infos], flex=4)
    app.out(human, {"keys": [k.to_dict() for k in infos]})


@keys.command("revoke")
@click.argument("key_id")
@global_options
@pass_app
def revoke(app: App, key_id: str) -> None:
    """Revoke key KEY_ID; requests with it fail from now on."""
    from ..governance.principals import operator

    with _keystore(app) as store:
        info = store.revoke(key_id, actor=operator())
    app.out(lambda: kv([("revoked", info.key_id), ("principal", info.principal),
                        ("user", info.user_id)]), info.to_dict())
