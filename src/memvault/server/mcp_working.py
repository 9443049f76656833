"""The working-memory MCP tools (``task_*``, ``file_*``), added by :func:`build_mcp`.

Each tool acts on a workspace of the server's principal (its ids are derived from the
principal's scope, so two keys never share one) and returns a JSON object. Errors are
tool errors like the memory tools' (``error [<code>]: <message>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Callable

from pydantic import Field

from ..governance.scope import ScopedVault
from ..working import Workspace

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = ["add_working_tools", "WORKING_TOOL_NAMES"]

WORKING_TOOL_NAMES = (
    "task_add", "task_update", "task_done", "task_move", "task_next", "task_tree",
    "task_get", "task_context", "task_push", "task_pop", "task_scratch",
    "file_write", "file_read", "file_list", "file_history", "file_diff", "file_delete")

Ws = Annotated[str, Field(description="Workspace name (one per piece of work).",
                          max_length=64)]
TaskKey = Annotated[str, Field(description="Task key (a short slug).", max_length=64)]
Path = Annotated[str, Field(description="Relative file path, e.g. pkg/models.py.",
                            max_length=256)]
Line = Annotated[int | None, Field(description="Line number, from 1 (ranges inclusive).",
                                   ge=1, le=10**7)]
Result = dict[str, Any]


def add_working_tools(server: MCPServer, caller: Callable[[], ScopedVault],
                      call: Callable[..., Any], tool: Callable[..., Any]) -> None:
    """Register the working-memory tools on ``server``; ``call`` runs a blocking function
    in a worker thread and turns memvault errors into tool errors, ``tool`` declares one
    (both are :func:`build_mcp`'s)."""
    from mcp.types import CallToolResult

    def workspace_of(sv: ScopedVault, name: str) -> Workspace:
        p = sv.principal
        return Workspace(sv, name, user_id=p.user_id, agent_id=p.agent_id)

    async def run(fn: Callable[[Callable[[str], Workspace]], Any]) -> Any:
        """``fn(ws_)`` in a worker thread, ``ws_(name)`` the workspace of the principal
        of this tool call (resolved here, on the call's own context)."""
        sv = caller()
        return await call(lambda: fn(lambda name: workspace_of(sv, name)))

    def done(out: Any, shape: Callable[[Any], Result]) -> Any:
        return out if isinstance(out, CallToolResult) else shape(out)

    @tool("Add a task (a goal, or a subtask under parent) to the workspace's task tree. "
          "Adding the same key, title and parent again returns the existing task.")
    async def task_add(title: Annotated[str, Field(max_length=500)], workspace: Ws = "default",
                       parent: Annotated[str | None, Field(max_length=64)] = None,
                       key: Annotated[str | None, Field(max_length=64)] = None,
                       deps: Annotated[list[str] | None, Field(
                           description="Keys of tasks that must be done first.",
                           max_length=64)] = None,
                       notes: Annotated[str, Field(max_length=4000)] = "") -> Result:
        out = await run(lambda ws_: ws_(workspace).tasks.add(title, parent=parent, key=key,
                                                         deps=deps or (), notes=notes))
        return done(out, lambda t: t.to_dict())

    @tool("Change a task: status (todo, doing, done, failed), notes, result, title, deps.")
    async def task_update(key: TaskKey, workspace: Ws = "default",
                          status: Annotated[str | None, Field(max_length=16)] = None,
                          notes: Annotated[str | None, Field(max_length=4000)] = None,
                          result: Annotated[str | None, Field(max_length=4000)] = None,
                          title: Annotated[str | None, Field(max_length=500)] = None,
                          deps: Annotated[list[str] | None, Field(max_length=64)] = None
                          ) -> Result:
        out = await run(lambda ws_: ws_(workspace).tasks.update(
            key, status=status, notes=notes, result=result, title=title, deps=deps))
        return done(out, lambda t: t.to_dict())

    @tool("Mark a task done with what it produced (refused while a subtask is open).",
          idempotent=True)
    async def task_done(key: TaskKey, workspace: Ws = "default",
                        result: Annotated[str | None, Field(max_length=4000)] = None) -> Result:
        out = await run(lambda ws_: ws_(workspace).tasks.complete(key, result))
        return done(out, lambda t: t.to_dict())

    @tool("Move a task and its subtree under another parent (none: make it a root).")
    async def task_move(key: TaskKey, workspace: Ws = "default",
                        parent: Annotated[str | None, Field(max_length=64)] = None) -> Result:
        out = await run(lambda ws_: ws_(workspace).tasks.move(key, parent))
        return done(out, lambda t: t.to_dict())

    @tool("What to do next: the ready tasks (dependencies done, no open subtasks), "
          "in progress first, then in tree order.", read_only=True)
    async def task_next(workspace: Ws = "default",
                        limit: Annotated[int, Field(ge=1, le=1000)] = 5) -> Result:
        out = await run(lambda ws_: ws_(workspace).tasks.next(limit))
        return done(out, lambda ts: {"tasks": [t.to_dict() for t in ts]})

    @tool("The whole task tree, depth first.", read_only=True)
    async def task_tree(workspace: Ws = "default") -> Result:
        out = await run(lambda ws_: ws_(workspace).tasks.tree())
        return done(out, lambda ts: {"tasks": [t.to_dict() for t in ts]})

    @tool("One task.", read_only=True)
    async def task_get(key: TaskKey, workspace: Ws = "default") -> Result:
        out = await run(lambda ws_: ws_(workspace).tasks.get(key))
        return done(out, lambda t: t.to_dict())

    @tool("The context for the next step, in a token budget: the current instruction, "
          "the scratchpad, the path from the root to the task (default: the current one) "
          "and the file reads asked for (paths, or [path, start, end]).", read_only=True)
    async def task_context(workspace: Ws = "default",
                           task: Annotated[str | None, Field(max_length=64)] = None,
                           reads: Annotated[list[str | list[Any]] | None, Field(
                               max_length=32)] = None,
                           budget_tokens: Annotated[int, Field(ge=64, le=10**6)] = 2000
                           ) -> Result:
        out = await run(lambda ws_: ws_(workspace).context(task=task, reads=reads or (),
                                                       budget_tokens=budget_tokens))
        return done(out, lambda c: c.to_dict())

    @tool("Push the instruction being carried out on the instruction stack (pushing the "
          "one already on top again is a no-op).")
    async def task_push(instruction: Annotated[str, Field(max_length=8000)],
                        workspace: Ws = "default",
                        task: Annotated[str | None, Field(max_length=64)] = None) -> Result:
        out = await run(lambda ws_: ws_(workspace).stack.push(instruction, task=task))
        return done(out, lambda f: f.to_dict())

    @tool("Pop the current instruction on completion (with expect: only if it is on top).")
    async def task_pop(workspace: Ws = "default",
                       result: Annotated[str | None, Field(max_length=4000)] = None,
                       expect: Annotated[str | None, Field(max_length=8000)] = None) -> Result:
        out = await run(lambda ws_: ws_(workspace).stack.pop(result, expect=expect))
        return done(out, lambda f: f.to_dict())

    @tool("Read the scratchpad, or overwrite it when text is given.")
    async def task_scratch(workspace: Ws = "default",
                           text: Annotated[str | None, Field(max_length=16000)] = None
                           ) -> Result:
        def work(ws_: Callable[[str], Workspace]) -> str:
            w = ws_(workspace)
            return w.stack.scratch() if text is None else w.stack.write_scratch(text)
        out = await run(work)
        return done(out, lambda t: {"text": t})

    @tool("Write a file whole, or replace lines start..end (end omitted: insert before "
          "start; start = lines + 1 appends). Every write is a new version.",
          idempotent=True)
    async def file_write(path: Path, content: Annotated[str, Field(max_length=256 * 1024)],
                         workspace: Ws = "default", start: Line = None,
                         end: Line = None) -> Result:
        out = await run(lambda ws_: ws_(workspace).files.write(path, content, start=start,
                                                           end=end))
        return done(out, lambda f: f.to_dict())

    @tool("Read a file, or lines start..end of it; known_at: as recorded at that "
          "ISO-8601 time.", read_only=True)
    async def file_read(path: Path, workspace: Ws = "default", start: Line = None,
                        end: Line = None,
                        known_at: Annotated[str | None, Field(max_length=64)] = None
                        ) -> Result:
        out = await run(lambda ws_: ws_(workspace).files.read(path, start=start, end=end,
                                                          known_at=known_at))
        return done(out, lambda v: v.to_dict())

    @tool("The workspace's files whose path starts with prefix.", read_only=True)
    async def file_list(workspace: Ws = "default",
                        prefix: Annotated[str, Field(max_length=256)] = "") -> Result:
        out = await run(lambda ws_: ws_(workspace).files.list(prefix))
        return done(out, lambda fs: {"files": [f.to_dict() for f in fs]})

    @tool("Every version of a file, oldest first.", read_only=True)
    async def file_history(path: Path, workspace: Ws = "default") -> Result:
        out = await run(lambda ws_: ws_(workspace).files.history(path))
        return done(out, lambda vs: {"path": path, "versions": [v.to_dict() for v in vs]})

    @tool("Unified diff of a file from version a to version b (default: current).",
          read_only=True)
    async def file_diff(path: Path, a: Annotated[int, Field(ge=1)], workspace: Ws = "default",
                        b: Annotated[int | None, Field(ge=1)] = None) -> Result:
        out = await run(lambda ws_: ws_(workspace).files.diff(path, a, b))
        return done(out, lambda d: {"path": path, "diff": d})

    @tool("Delete a file (its history stays).", destructive=True, idempotent=True)
    async def file_delete(path: Path, workspace: Ws = "default") -> Result:
        out = await run(lambda ws_: ws_(workspace).files.delete(path))
        return done(out, lambda gone: {"path": path, "deleted": gone})
