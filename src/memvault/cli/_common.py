"""What every command module shares: the per-invocation :class:`App`, the error-handling
:class:`Group`, the global and scope options, output and progress helpers.

One set, so every command behaves alike: ``--db``/``--embedder``/``--json`` work before
the command name or after it; a :class:`~memvault.errors.MemvaultError` becomes one line
``error [<code>]: <message>`` on stderr and exit status 2 (never a traceback); the vault
is closed (its index snapshot saved) however the command ends. This module is cheap to
import (click and the error classes): ``memvault --help`` imports nothing else, and
settings, the vault and tqdm are imported when a command first needs them.

Read commands open the vault with :meth:`App.vault` and refuse one that does not exist
(a mistyped ``--db`` must not answer "no matches" and leave an empty vault behind); write
commands use :meth:`App.vault_for_write`, which creates it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import click

from ..errors import InvalidInput, MemvaultError, NotFound

if TYPE_CHECKING:
    from ..settings import Settings
    from ..vault import Vault

__all__ = ["App", "Group", "pass_app", "global_options", "json_option", "scope_options",
           "llm_options",
           "filters", "open_file", "progress_bar", "fail", "require_existing"]

#: The help of ``--llm`` where the reader decides (ingest, extract): no LLM means rules.
LLM_HELP_RULES = ("none, local (SmolLM2), openai:<base_url>#<model>, ollama:<model>; "
                  "default $MEMVAULT_LLM, else none (rule-based reading).")


def require_existing(settings: "Settings") -> None:
    """Refuse a SQLite vault file that is not there (a PostgreSQL store is checked by
    connecting). Raised before anything is opened, so nothing is created."""
    if not settings.store and not Path(settings.path).exists():
        raise NotFound(f"no vault at {settings.path} (mistyped --db?); a write such as "
                       "`memvault add` or `memvault init` creates one", path=str(settings.path))


class App:
    """Per-invocation state: the global options, and the vault, opened on first use."""

    def __init__(self) -> None:
        self.db: str | None = None
        self.embedder: str | None = None
        self.as_json = False
        self._vault: Vault | None = None

    def settings(self) -> "Settings":
        """Settings from the flags and ``MEMVAULT_*`` (the CLI is an edge: it may read them)."""
        from ..settings import Settings

        return Settings.from_env(os.environ, path=self.db, embedder=self.embedder)

    def _open(self, settings: "Settings", actor: str | None) -> "Vault":
        from ..vault import Vault

        if self._vault is None:
            self._vault = Vault(settings=settings, actor=actor)
        elif actor is not None:
            self._vault.actor = actor
        return self._vault

    def vault(self, *, actor: str | None = None) -> "Vault":
        """The existing vault (:class:`NotFound` if there is none: nothing is created)."""
        settings = self.settings()
        if self._vault is None:
            require_existing(settings)
        return self._open(settings, actor)

    def vault_for_write(self, settings: "Settings | None" = None,
                        actor: str | None = None) -> "Vault":
        """The vault, created if it does not exist yet (writes only)."""
        return self._open(settings or self.settings(), actor)

    def close(self) -> None:
        vault, self._vault = self._vault, None
        if vault is not None:
            vault.close()

    def out(self, human: str | Callable[[], str], doc: Any) -> None:
        """Print ``doc`` as JSON with ``--json``, else the human rendering."""
        if self.as_json:
            click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        else:
            click.echo(human() if callable(human) else human)


def fail(exc: MemvaultError) -> None:
    """``error [code]: message`` on stderr and exit status 2."""
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    raise click.exceptions.Exit(2)


class Group(click.Group):
    """Turns a MemvaultError into ``error [code]: message`` and exit 2; closes the vault."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                if isinstance(ctx.obj, App):
                    ctx.obj.close()
        except MemvaultError as exc:
            fail(exc)


pass_app = click.make_pass_decorator(App, ensure=True)


def _setter(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            setattr(ctx.ensure_object(App), attr, value)
    return callback


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--json alone, for commands that open no vault (before or after the command name)."""
    return click.option("--json", "as_json", is_flag=True, expose_value=False,
                        callback=_setter("as_json"),
                        help="Machine output: one JSON document (JSONL for streams).")(f)


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--db/--embedder/--json, accepted before the command name or after it."""
    f = json_option(f)
    f = click.option("--embedder", metavar="NAME", expose_value=False,
                     callback=_setter("embedder"),
                     help="minilm, mpnet or hash[-DIM]; default $MEMVAULT_EMBEDDER, else the "
                          "vault's own (minilm for a new one).")(f)
    return click.option("--db", metavar="PATH", expose_value=False, callback=_setter("db"),
                        help="Vault file or postgresql:// DSN; default $MEMVAULT_PATH or "
                             "~/.memvault/vault.db.")(f)


def scope_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for name in ("cube", "session", "agent", "user"):
        f = click.option(f"--{name}", f"{name}_id", metavar="ID", help=f"{name.title()} scope.")(f)
    return f


def llm_options(default_help: str = LLM_HELP_RULES) -> Callable[[Any], Any]:
    """--llm/--timeout/--api-key; ``default_help`` says what happens without --llm (it
    differs: the reader falls back to rules, chat to the bundled SmolLM2)."""
    def decorate(f: Any) -> Any:
        f = click.option("--api-key", envvar="MEMVAULT_LLM_API_KEY", metavar="KEY",
                         help="Key for an HTTP LLM; default $MEMVAULT_LLM_API_KEY.")(f)
        f = click.option("--timeout", default=60.0, show_default=True,
                         help="Seconds per LLM request (HTTP endpoints).")(f)
        return click.option("--llm", "llm_spec", metavar="SPEC", help=default_help)(f)
    return decorate


def filters(kinds: Iterable[str] = (), tags: Iterable[str] = (),
            meta: Iterable[str] = ()) -> dict[str, Any] | None:
    from ._tables import parse_pairs

    found = {"kind": list(kinds), "tags": list(tags), "metadata": parse_pairs(meta)}
    return {k: v for k, v in found.items() if v} or None


def open_file(path: str, mode: str) -> Any:
    """A file (or '-' for stdin/stdout) as text; writes are atomic (a rename at the end)."""
    try:
        return click.open_file(path, mode, encoding="utf-8-sig" if "r" in mode else "utf-8",
                               atomic="w" in mode and path != "-")
    except OSError as exc:
        raise InvalidInput(f"cannot open {path}: {exc.strerror or exc}", path=path) from None


def progress_bar(app: App, *, total: int | None = None, unit: str = " mem",
                 desc: str | None = None) -> Any:
    """A tqdm bar on stderr, shown only on a terminal and never with --json."""
    from tqdm import tqdm

    # redrawn at every update: callers update once per batch, after its work is done
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, leave=False,
                mininterval=0, miniters=1, disable=app.as_json or not sys.stderr.isatty())
