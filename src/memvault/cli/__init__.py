"""The ``memvault`` command line: a thin face over :class:`~memvault.Vault`.

This module is the root group, :func:`main` and the registry of commands, nothing else.
The registry names each command's module and one-line help, so ``memvault --help``
lists every command without importing any of them, and running a command imports only
its own module (``memvault get ID`` never loads the server, MCP or the reader). The
shared machinery (options, errors, output) is :mod:`memvault.cli._common`; command
modules import that, never this package.

Each command parses its options, makes one or two Vault calls and renders the result,
as an aligned table for people or, with ``--json``, as one JSON document (JSONL for
``export``). A :class:`MemvaultError` becomes ``error [<code>]: <message>`` on stderr
and exit status 2. The CLI is an edge: it reads ``MEMVAULT_*`` through
:meth:`Settings.from_env` and passes settings down.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .. import __version__
from ._common import App, Group, global_options

__all__ = ["cli", "main", "COMMANDS"]

#: name -> (module under memvault.cli, attribute, the one line ``--help`` shows).
#: ``tests/test_cli_lazy.py`` checks each line against the command's own docstring.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("writes", "init", "Create an empty vault (a write command also creates one)."),
    "add": ("writes", "add", "Store TEXT ('-' reads stdin) and print its id."),
    "import": ("writes", "import_", "Import JSONL records, a chat JSON file or an export."),
    "update": ("writes", "update", "Write a new version of memory ID."),
    "delete": ("writes", "delete", "Delete memory ID (restorable unless --purge)."),
    "restore": ("writes", "restore", "Bring a deleted or archived memory back."),
    "search": ("reads", "search", "Hybrid (semantic + keyword) search."),
    "get": ("reads", "get", "Show memory ID (current, or as it held --as-of / was recorded --known-at)."),
    "history": ("reads", "history", "Every version of memory ID, oldest first."),
    "list": ("reads", "list_", "List memories, newest first."),
    "export": ("reads", "export", "Export every memory as JSONL."),
    "audit": ("reads", "audit", "The audit log, oldest first."),
    "check": ("reads", "check", "Integrity report; exit status 1 if not ok."),
    "demo": ("demo", "demo", "Run a guided demo on a sample conversation."),
    "ingest": ("reader", "ingest", "Read a chat export into the vault."),
    "extract": ("reader", "extract",
                "Read the turns that fast-mode ingest deferred (resumable: progress is kept)."),
    "chat": ("chat", "chat_command",
             "Answer QUESTION with the scope's memories (retrieved, KV-cached, adapter)."),
    "forget": ("scheduler", "forget_command",
               "Archive expired and cold memories; purge what forget archived GRACE-DAYS ago."),
    "consolidate": ("scheduler", "consolidate_command",
                    "Summarise sessions that changed into summary memories (and topics "
                    "above them)."),
    "scheduler": ("scheduler", "scheduler",
                  "The lifecycle scheduler (heat, forgetting, links, consolidation, tiers)."),
    "quarantine": ("quarantine", "quarantine",
                   "Memories the injection guard held back: list, show, release; check a text."),
    "share": ("governance", "share",
              "Share memory ITEM, a cube (--cube C --user U) or everything (--everything "
              "--user U) with a principal or team."),
    "unshare": ("governance", "unshare", "Revoke grant GRANT_ID (it stays on record, closed)."),
    "grants": ("governance", "grants", "List grants, oldest first."),
    "team": ("governance", "team", "Teams: a grant to team:<name> applies to every current member."),
    "keys": ("server", "keys",
             "API keys: each is bound to one principal and one user (and maybe agent) scope."),
    "serve": ("server", "serve", "Serve the vault over HTTP (REST, OpenAPI at /openapi.json)."),
    "mcp": ("mcp", "mcp_command", "Serve the vault as MCP tools for one API key's principal."),
    "cube": ("cube", "cube",
             "MemCubes: dump, load, inspect, compose and migrate portable memory directories."),
    "adapter": ("adapter", "adapter",
                "Parametric memory: LoRA adapters distilled from memories (bundled local model)."),
    "migrate-store": ("storage", "migrate_store",
                      "Copy every row of SRC into the empty store DST and verify counts and "
                      "checksums."),
    "postgres": ("postgres", "postgres",
                 "A local PostgreSQL with pgvector, for --db postgresql:// (start, stop, status)."),
    "bench": ("bench", "bench", "Evaluations and benchmarks (results: JSON + markdown + PNG)."),
    "task": ("working", "task", "The task tree and instruction stack of a workspace."),
    "file": ("working", "file", "The files of a workspace: every write a version."),
}


class LazyGroup(Group):
    """A group that imports a command's module only when that command runs (or when its
    own ``--help`` is asked for); the listing comes from :data:`COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in COMMANDS:
            module, attr, _ = COMMANDS[cmd_name]
            found = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
            self.commands[cmd_name] = found
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            loaded = self.commands.get(name)
            if loaded is not None and loaded.hidden:
                continue
            text = loaded.get_short_help_str(200) if loaded is not None else COMMANDS[name][2]
            rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="memvault")
@global_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """memvault: versioned, searchable memory for LLM agents, offline."""
    ctx.ensure_object(App)  # shared by the subcommand, closed by Group.invoke


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point (``memvault``)."""
    return cli.main(args=argv, prog_name="memvault")
