"""``memvault task ...`` and ``memvault file ...``: working memory on the command line.

A thin face over :class:`memvault.working.Workspace` run as the operator on the local
vault; ``--user``/``--agent`` name the owner and ``--ws`` the workspace. Like the rest of
the CLI it reads settings at the edge, accepts ``--db``/``--embedder``/``--json`` before
the command name or after it, and a MemvaultError becomes ``error [<code>]: <message>``
with exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

import click

from ..errors import InvalidInput, MemvaultError

__all__ = ["task", "file", "register"]

_MAX_INPUT = 256 * 1024


def _root(ctx: click.Context, name: str) -> Any:
    return getattr(ctx.find_root().obj, name, None)


def _options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in (click.option("--json", "as_json", is_flag=True, help="Machine output (JSON)."),
                click.option("--embedder", metavar="NAME", help="Embedder of a new vault."),
                click.option("--db", metavar="PATH", help="Vault file; default "
                             "$MEMVAULT_PATH or ~/.memvault/vault.db."),
                click.option("--agent", "agent_id", metavar="ID", help="Owner agent id."),
                click.option("--user", "user_id", metavar="ID", help="Owner user id."),
                click.option("--ws", "workspace", default="default", show_default=True,
                             help="Workspace name.")):
        f = opt(f)
    return f


def _run(ctx: click.Context, opts: dict[str, Any], work: Callable[[Any], Any],
         human: Callable[[Any], str]) -> None:
    """Open the vault, run ``work(workspace)``, print, close; errors exit 2."""
    from ..settings import Settings
    from ..vault import Vault
    from ..working import Workspace

    try:
        settings = Settings.from_env(os.environ, path=opts["db"] or _root(ctx, "db"),
                                     embedder=opts["embedder"] or _root(ctx, "embedder"))
        with Vault(settings=settings) as vault:
            ws = Workspace(vault, opts["workspace"], user_id=opts["user_id"],
                           agent_id=opts["agent_id"])
            out = work(ws)
    except MemvaultError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        ctx.exit(2)
        return
    if opts["as_json"] or _root(ctx, "as_json"):
        click.echo(json.dumps(_doc(out), ensure_ascii=False, default=str))
    else:
        click.echo(human(out))


def _doc(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list):
        return [_doc(v) for v in value]
    return value


def _tasks(tasks: list[Any]) -> str:
    return "\n".join(f"{'  ' * t.depth}{t.line()}" for t in tasks) or "(no tasks)"


def _read_input(content: str | None) -> str:
    if content is not None:
        return content
    data = sys.stdin.read(_MAX_INPUT + 1)
    if len(data) > _MAX_INPUT:
        raise InvalidInput(f"input is over {_MAX_INPUT} characters")
    return data


# -- memvault task ----------------------------------------------------------------------
@click.group("task")
def task() -> None:
    """The task tree and instruction stack of a workspace."""


@task.command("add")
@click.argument("title")
@click.option("--parent", metavar="KEY", help="Parent task key.")
@click.option("--key", metavar="KEY", help="Task key (default: a slug of the title).")
@click.option("--dep", "deps", multiple=True, metavar="KEY", help="Must be done first.")
@click.option("--notes", default="", help="Notes.")
@_options
@click.pass_context
def task_add(ctx: click.Context, title: str, parent: str | None, key: str | None,
             deps: tuple[str, ...], notes: str, **opts: Any) -> None:
    """Add a task (the same key, title and parent again: the existing one)."""
    _run(ctx, opts, lambda ws: ws.tasks.add(title, parent=parent, key=key, deps=deps,
                                            notes=notes), lambda t: t.line())


@task.command("ls")
@_options
@click.pass_context
def task_ls(ctx: click.Context, **opts: Any) -> None:
    """Every task, depth first."""
    _run(ctx, opts, lambda ws: ws.tasks.tree(), _tasks)


@task.command("next")
@click.option("--limit", default=5, show_default=True, type=click.IntRange(1, 1000))
@_options
@click.pass_context
def task_next(ctx: click.Context, limit: int, **opts: Any) -> None:
    """The ready tasks: in progress first, then in tree order."""
    _run(ctx, opts, lambda ws: ws.tasks.next(limit),
         lambda ts: "\n".join(t.line() for t in ts) or "(nothing is ready)")


@task.command("update")
@click.argument("key")
@click.option("--status", type=click.Choice(["todo", "doing", "done", "failed"]))
@click.option("--title")
@click.option("--notes")
@click.option("--result")
@_options
@click.pass_context
def task_update(ctx: click.Context, key: str, status: str | None, title: str | None,
                notes: str | None, result: str | None, **opts: Any) -> None:
    """Change a task's fields (a new version)."""
    _run(ctx, opts, lambda ws: ws.tasks.update(key, status=status, title=title, notes=notes,
                                               result=result), lambda t: t.line())


@task.command("done")
@click.argument("key")
@click.option("--result", help="What it produced.")
@_options
@click.pass_context
def task_done(ctx: click.Context, key: str, result: str | None, **opts: Any) -> None:
    """Mark a task done."""
    _run(ctx, opts, lambda ws: ws.tasks.complete(key, result), lambda t: t.line())


@task.command("move")
@click.argument("key")
@click.option("--parent", metavar="KEY", help="New parent (omit: make it a root).")
@_options
@click.pass_context
def task_move(ctx: click.Context, key: str, parent: str | None, **opts: Any) -> None:
    """Move a task and its subtree."""
    _run(ctx, opts, lambda ws: ws.tasks.move(key, parent), lambda t: t.line())


@task.command("path")
@click.argument("key", required=False)
@click.option("--budget", default=500, show_default=True, type=click.IntRange(8, 10**6),
              help="Token budget.")
@_options
@click.pass_context
def task_path(ctx: click.Context, key: str | None, budget: int, **opts: Any) -> None:
    """The root-to-task path (default: the current task) as compact text."""
    _run(ctx, opts, lambda ws: {"text": ws.tasks.context(key, budget_tokens=budget)},
         lambda d: d["text"])


@task.command("push")
@click.argument("instruction")
@click.option("--task", "task_key", metavar="KEY", help="The task it serves.")
@_options
@click.pass_context
def task_push(ctx: click.Context, instruction: str, task_key: str | None, **opts: Any) -> None:
    """Push an instruction on the instruction stack."""
    _run(ctx, opts, lambda ws: ws.stack.push(instruction, task=task_key),
         lambda f: f"{f.depth}: {f.instruction}")


@task.command("pop")
@click.option("--result", help="What the instruction produced.")
@_options
@click.pass_context
def task_pop(ctx: click.Context, result: str | None, **opts: Any) -> None:
    """Pop the current instruction."""
    _run(ctx, opts, lambda ws: ws.stack.pop(result), lambda f: f"popped {f.instruction}")


# -- memvault file ----------------------------------------------------------------------
@click.group("file")
def file() -> None:
    """The files of a workspace: every write a version."""


@file.command("write")
@click.argument("path")
@click.option("--content", help="The text (default: read stdin).")
@click.option("--start", type=click.IntRange(1, 10**7), help="First line to replace.")
@click.option("--end", type=click.IntRange(1, 10**7), help="Last line to replace.")
@_options
@click.pass_context
def file_write(ctx: click.Context, path: str, content: str | None, start: int | None,
               end: int | None, **opts: Any) -> None:
    """Write PATH whole, or lines --start..--end of it."""
    def work(ws: Any) -> Any:
        return ws.files.write(path, _read_input(content), start=start, end=end)
    _run(ctx, opts, work, lambda f: f"{f.path} v{f.version}: {f.lines} lines, {f.bytes} bytes")


@file.command("read")
@click.argument("path")
@click.option("--start", type=click.IntRange(1, 10**7))
@click.option("--end", type=click.IntRange(1, 10**7))
@click.option("--known-at", metavar="TIME", help="As recorded at this ISO-8601 time.")
@click.option("--version", "version_", type=click.IntRange(1, 2**31), help="One version.")
@_options
@click.pass_context
def file_read(ctx: click.Context, path: str, start: int | None, end: int | None,
              known_at: str | None, version_: int | None, **opts: Any) -> None:
    """Print PATH (or lines --start..--end of it)."""
    if version_ is not None:
        _run(ctx, opts, lambda ws: {"path": path, "version": version_,
                                    "content": ws.files.version(path, version_)},
             lambda d: d["content"].rstrip("\n"))
        return
    _run(ctx, opts, lambda ws: ws.files.read(path, start=start, end=end, known_at=known_at),
         lambda v: v.content.rstrip("\n"))


@file.command("ls")
@click.argument("prefix", default="")
@_options
@click.pass_context
def file_ls(ctx: click.Context, prefix: str, **opts: Any) -> None:
    """Files whose path starts with PREFIX."""
    _run(ctx, opts, lambda ws: ws.files.list(prefix),
         lambda fs: "\n".join(f"{f.path}\tv{f.version}\t{f.lines} lines\t{f.bytes} B"
                              for f in fs) or "(no files)")


@file.command("history")
@click.argument("path")
@_options
@click.pass_context
def file_history(ctx: click.Context, path: str, **opts: Any) -> None:
    """Every version of PATH."""
    _run(ctx, opts, lambda ws: ws.files.history(path),
         lambda vs: "\n".join(f"v{v.version}\t{v.updated_at}\t{v.lines} lines\t"
                              f"{v.sha256[:12]}" for v in vs))


@file.command("diff")
@click.argument("path")
@click.argument("a", type=click.IntRange(1, 2**31))
@click.argument("b", type=click.IntRange(1, 2**31), required=False)
@_options
@click.pass_context
def file_diff(ctx: click.Context, path: str, a: int, b: int | None, **opts: Any) -> None:
    """Unified diff of PATH from version A to B (default: current)."""
    _run(ctx, opts, lambda ws: {"path": path, "diff": ws.files.diff(path, a, b)},
         lambda d: d["diff"].rstrip("\n") or "(no changes)")


@file.command("rm")
@click.argument("path")
@_options
@click.pass_context
def file_rm(ctx: click.Context, path: str, **opts: Any) -> None:
    """Delete PATH (its history stays)."""
    _run(ctx, opts, lambda ws: {"path": path, "deleted": ws.files.delete(path)},
         lambda d: f"deleted {path}" if d["deleted"] else f"no file {path}")


def register(group: click.Group) -> None:
    """Add ``task`` and ``file`` to the root command group."""
    group.add_command(task)
    group.add_command(file)
