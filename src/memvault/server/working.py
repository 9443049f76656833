"""REST routes for working memory (:mod:`memvault.working`), under ``/v1/work/{ws}``.

Tasks: ``GET|POST /tasks``, ``GET|PATCH|DELETE /tasks/{key}``, ``POST
/tasks/{key}/move``, ``POST /tasks/{key}/complete``, ``GET /tasks/{key}/history``,
``GET /next``, ``GET /path/{key}``. Files: ``GET /files?prefix=``, ``PUT|GET|DELETE
/files/{path}``, ``GET /history/{path}``, ``GET /diff/{path}?a=&b=``. The stack: ``GET|POST
/stack``, ``POST /stack/pop``, ``GET|PUT /scratchpad``. ``POST /context`` assembles a
step's context; ``GET /v1/work/{ws}`` returns the whole working state.

Like every route, each is a call on the caller's
:class:`~memvault.governance.ScopedVault`: the workspace belongs to the key's principal
(its ids are derived from the principal's scope), so two keys never see each other's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from ..governance import ScopedVault
from ..working import Workspace
from .runtime import _ERRORS, RT, SV, _ok, _time

__all__ = ["working_router"]



class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskIn(_In):
    title: str = Field(min_length=1, max_length=500)
    parent: str | None = Field(default=None, max_length=64)
    key: str | None = Field(default=None, max_length=64)
    deps: list[str] = Field(default_factory=list, max_length=64)
    notes: str = Field(default="", max_length=4000)
    order: float | None = None


class TaskPatch(_In):
    title: str | None = Field(default=None, max_length=500)
    status: str | None = Field(default=None, max_length=16)
    notes: str | None = Field(default=None, max_length=4000)
    result: str | None = Field(default=None, max_length=4000)
    deps: list[str] | None = Field(default=None, max_length=64)
    order: float | None = None


class MoveIn(_In):
    parent: str | None = Field(default=None, max_length=64)
    order: float | None = None


class CompleteIn(_In):
    result: str | None = Field(default=None, max_length=4000)


class FileIn(_In):
    content: str = Field(max_length=256 * 1024)
    start: int | None = Field(default=None, ge=1, le=10**7)
    end: int | None = Field(default=None, ge=1, le=10**7)


class PushIn(_In):
    instruction: str = Field(min_length=1, max_length=8000)
    task: str | None = Field(default=None, max_length=64)


class PopIn(_In):
    result: str | None = Field(default=None, max_length=4000)
    expect: str | None = Field(default=None, max_length=8000)


class ScratchIn(_In):
    text: str = Field(max_length=16000)


class ContextIn(_In):
    task: str | None = Field(default=None, max_length=64)
    reads: list[str | tuple[str, int | None, int | None]] = Field(default_factory=list,
                                                                  max_length=32)
    budget_tokens: int = Field(default=2000, ge=64, le=10**6)


def workspace(sv: ScopedVault, ws: str) -> Workspace:
    """The caller's workspace ``ws``: owned by the key's principal."""
    p = sv.principal
    return Workspace(sv, ws, user_id=p.user_id, agent_id=p.agent_id)


def working_router() -> APIRouter:
    r = APIRouter(prefix="/v1/work/{ws}", responses=_ERRORS, tags=["working memory"])

    async def run(rt: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await rt.run(fn, *args, **kwargs)

    @r.get("", summary="The whole working state: tasks, files, stack, scratchpad")
    async def state(ws: str, sv: SV, rt: RT) -> Response:
        return _ok(await run(rt, lambda: workspace(sv, ws).to_dict()))

    # -- tasks -------------------------------------------------------------------------
    @r.get("/tasks", summary="Every task, depth first")
    async def tree(ws: str, sv: SV, rt: RT) -> Response:
        tasks = await run(rt, lambda: workspace(sv, ws).tasks.tree())
        return _ok({"tasks": [t.to_dict() for t in tasks]})

    @r.post("/tasks", status_code=201, summary="Add a task (idempotent per key)")
    async def add_task(ws: str, body: TaskIn, sv: SV, rt: RT) -> Response:
        task = await run(rt, lambda: workspace(sv, ws).tasks.add(**body.model_dump()))
        return _ok(task.to_dict(), 201)

    @r.get("/tasks/{key}", summary="One task (as_of / known_at: as it was then)")
    async def get_task(ws: str, key: str, sv: SV, rt: RT, as_of: str | None = None,
                       known_at: str | None = None) -> Response:
        task = await run(rt, lambda: workspace(sv, ws).tasks.get(
            key, as_of=_time(as_of), known_at=_time(known_at)))
        return _ok(task.to_dict())

    @r.patch("/tasks/{key}", summary="Change a task's fields (a new version)")
    async def update_task(ws: str, key: str, body: TaskPatch, sv: SV, rt: RT) -> Response:
        task = await run(rt, lambda: workspace(sv, ws).tasks.update(
            key, **body.model_dump(exclude_none=True)))
        return _ok(task.to_dict())

    @r.delete("/tasks/{key}", summary="Delete a task without subtasks")
    async def remove_task(ws: str, key: str, sv: SV, rt: RT) -> Response:
        return _ok((await run(rt, lambda: workspace(sv, ws).tasks.remove(key))).to_dict())

    @r.post("/tasks/{key}/move", summary="Move a task (and its subtree) under a parent")
    async def move_task(ws: str, key: str, body: MoveIn, sv: SV, rt: RT) -> Response:
        task = await run(rt, lambda: workspace(sv, ws).tasks.move(key, body.parent,
                                                                  order=body.order))
        return _ok(task.to_dict())

    @r.post("/tasks/{key}/complete", summary="Mark a task done, with its result")
    async def complete_task(ws: str, key: str, body: CompleteIn, sv: SV, rt: RT) -> Response:
        task = await run(rt, lambda: workspace(sv, ws).tasks.complete(key, body.result))
        return _ok(task.to_dict())

    @r.get("/tasks/{key}/history", summary="Every version of a task")
    async def task_history(ws: str, key: str, sv: SV, rt: RT) -> Response:
        versions = await run(rt, lambda: workspace(sv, ws).tasks.history(key))
        return _ok({"key": key, "versions": [t.to_dict() for t in versions]})

    @r.get("/next", summary="The ready tasks, in progress first, then in tree order")
    async def next_tasks(ws: str, sv: SV, rt: RT, limit: int = 5) -> Response:
        tasks = await run(rt, lambda: workspace(sv, ws).tasks.next(limit))
        return _ok({"tasks": [t.to_dict() for t in tasks]})

    @r.get("/path/{key}", summary="The root-to-task path as text in a token budget")
    async def task_path(ws: str, key: str, sv: SV, rt: RT, budget_tokens: int = 500
                        ) -> Response:
        text = await run(rt, lambda: workspace(sv, ws).tasks.context(
            key, budget_tokens=budget_tokens))
        return _ok({"key": key, "text": text})

    @r.post("/context", summary="A step's context: instruction, scratchpad, task path, "
                                "file reads, in a token budget")
    async def context(ws: str, body: ContextIn, sv: SV, rt: RT) -> Response:
        ctx = await run(rt, lambda: workspace(sv, ws).context(
            task=body.task, reads=body.reads, budget_tokens=body.budget_tokens))
        return _ok(ctx.to_dict())

    # -- files -------------------------------------------------------------------------
    @r.get("/files", summary="Current files whose path starts with prefix")
    async def list_files(ws: str, sv: SV, rt: RT, prefix: str = "") -> Response:
        files = await run(rt, lambda: workspace(sv, ws).files.list(prefix))
        return _ok({"files": [f.to_dict() for f in files]})

    @r.put("/files/{path:path}", summary="Write a file whole, or a line range of it")
    async def write_file(ws: str, path: str, body: FileIn, sv: SV, rt: RT) -> Response:
        info = await run(rt, lambda: workspace(sv, ws).files.write(
            path, body.content, start=body.start, end=body.end))
        return _ok(info.to_dict())

    @r.get("/files/{path:path}", summary="Read a file, or lines start..end of it")
    async def read_file(ws: str, path: str, sv: SV, rt: RT, start: int | None = None,
                        end: int | None = None, as_of: str | None = None,
                        known_at: str | None = None) -> Response:
        view = await run(rt, lambda: workspace(sv, ws).files.read(
            path, start=start, end=end, as_of=_time(as_of), known_at=_time(known_at)))
        return _ok(view.to_dict())

    @r.delete("/files/{path:path}", summary="Delete a file (its history stays)")
    async def delete_file(ws: str, path: str, sv: SV, rt: RT) -> Response:
        gone = await run(rt, lambda: workspace(sv, ws).files.delete(path))
        return _ok({"path": path, "deleted": gone})

    @r.get("/history/{path:path}", summary="Every version of a file")
    async def file_history(ws: str, path: str, sv: SV, rt: RT) -> Response:
        versions = await run(rt, lambda: workspace(sv, ws).files.history(path))
        return _ok({"path": path, "versions": [v.to_dict() for v in versions]})

    @r.get("/diff/{path:path}", summary="Unified diff between two versions of a file")
    async def file_diff(ws: str, path: str, a: int, sv: SV, rt: RT,
                        b: int | None = None) -> Response:
        text = await run(rt, lambda: workspace(sv, ws).files.diff(path, a, b))
        return _ok({"path": path, "a": a, "b": b, "diff": text})

    # -- instruction stack -------------------------------------------------------------
    @r.get("/stack", summary="The instruction stack, bottom to top")
    async def stack(ws: str, sv: SV, rt: RT) -> Response:
        frames = await run(rt, lambda: workspace(sv, ws).stack.frames())
        return _ok({"frames": [f.to_dict() for f in frames]})

    @r.post("/stack", status_code=201, summary="Push the current instruction")
    async def push(ws: str, body: PushIn, sv: SV, rt: RT) -> Response:
        frame = await run(rt, lambda: workspace(sv, ws).stack.push(body.instruction,
                                                                   task=body.task))
        return _ok(frame.to_dict(), 201)

    @r.post("/stack/pop", summary="Pop the current instruction on completion")
    async def pop(ws: str, body: PopIn, sv: SV, rt: RT) -> Response:
        frame = await run(rt, lambda: workspace(sv, ws).stack.pop(body.result,
                                                                  expect=body.expect))
        return _ok(frame.to_dict())

    @r.get("/scratchpad", summary="The scratchpad's text")
    async def scratch(ws: str, sv: SV, rt: RT) -> Response:
        return _ok({"text": await run(rt, lambda: workspace(sv, ws).stack.scratch())})

    @r.put("/scratchpad", summary="Overwrite the scratchpad")
    async def write_scratch(ws: str, body: ScratchIn, sv: SV, rt: RT) -> Response:
        text = await run(rt, lambda: workspace(sv, ws).stack.write_scratch(body.text))
        return _ok({"text": text})

    return r
