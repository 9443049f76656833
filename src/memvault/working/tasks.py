"""The task tree: goals and subtasks, so an agent does not lose its place over many steps.

Each task is one ``wm_task`` memory item keyed by a short ``key`` (default: a slug of
its title); the item's text is the title and its metadata holds the rest (status,
parent, dependencies, order, notes, result). Every change is a new version, so the tree
as it stood at any time is ``known_at`` away.

Statuses: ``todo`` -> ``doing`` -> ``done`` | ``failed`` (and back to ``todo`` to retry).
A task is *ready* when it is todo or doing, every dependency is done, none of its
subtasks is unfinished and no ancestor is finished; :meth:`TaskTree.next` lists the
ready tasks in tree order (depth first, siblings by ``order``), the ones in progress
first. :meth:`TaskTree.context` renders the path from the root to a task in a token
budget: what a von-Neumann-style agent keeps in its context instead of the whole plan.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from ..errors import Conflict, InvalidInput, NotFound
from ..types import MemoryItem
from ._base import Space, check_name, count_tokens

__all__ = ["TaskTree", "Task", "STATUSES"]

KIND = "wm_task"
STATUSES = ("todo", "doing", "done", "failed")
FINISHED = ("done", "failed")
MAX_TASKS = 5000
MAX_DEPS = 64
MAX_NOTE = 4000
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    status: str = "todo"
    parent: str | None = None
    deps: tuple[str, ...] = ()
    order: float = 0.0
    notes: str = ""
    result: str = ""
    id: str = ""
    version: int = 0
    updated_at: str | None = None
    depth: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["deps"] = list(self.deps)
        return d

    @classmethod
    def from_item(cls, item: MemoryItem) -> "Task":
        m = item.metadata
        return cls(key=m["key"], title=item.text, status=m.get("status", "todo"),
                   parent=m.get("parent"), deps=tuple(m.get("deps") or ()),
                   order=float(m.get("order", 0.0)), notes=m.get("notes", ""),
                   result=m.get("result", ""), id=item.id, version=item.version,
                   updated_at=item.valid_from.isoformat() if item.valid_from else None)

    def line(self) -> str:
        return f"[{self.status}] {self.key}: {self.title}"


def slug(title: str) -> str:
    return _SLUG.sub("-", title.lower()).strip("-")[:64].strip("-") or "task"


def _text(value: Any, field_: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field_} must be a string of at most {limit} characters",
                           field=field_)
    return value


def _title(value: Any) -> str:
    value = _text(value, "title", 500)
    if not value.strip() or "\n" in value:
        raise InvalidInput("title must be one non-empty line", field="title")
    return value.strip()


class TaskTree:
    """The tasks of one workspace (see the module docs)."""

    def __init__(self, space: Space) -> None:
        self.space = space

    # -- reads -------------------------------------------------------------------------
    def all(self) -> dict[str, Task]:
        """Every current task by key."""
        return {t.key: t for t in (Task.from_item(i) for i in self.space.items(KIND))}

    def get(self, key: str, *, as_of: Any = None, known_at: Any = None) -> Task:
        item = self.space.find(KIND, check_name(key, field="key"), as_of=as_of,
                               known_at=known_at)
        if item is None or item.status == "deleted":
            raise NotFound(f"no task {key}", key=key)
        return Task.from_item(item)

    def history(self, key: str) -> list[Task]:
        """Every version of the task, oldest first."""
        return [Task.from_item(v) for v in
                self.space.vault.history(self.space.item_id(KIND, self.get(key).key))]

    def tree(self, tasks: dict[str, Task] | None = None) -> list[Task]:
        """Every task depth first (siblings by order, then key), with its ``depth``."""
        tasks = self.all() if tasks is None else tasks
        children: dict[str | None, list[Task]] = {}
        for t in tasks.values():
            parent = t.parent if t.parent in tasks else None
            children.setdefault(parent, []).append(t)
        out: list[Task] = []

        def walk(parent: str | None, depth: int) -> None:
            for t in sorted(children.get(parent, []), key=lambda t: (t.order, t.key)):
                out.append(Task(**{**t.__dict__, "depth": depth}))
                walk(t.key, depth + 1)
        walk(None, 0)
        return out

    def next(self, limit: int = 5) -> list[Task]:
        """What to do next: the ready tasks in tree order, those in progress first."""
        tasks = self.all()
        kids: dict[str, list[Task]] = {}
        for t in tasks.values():
            if t.parent:
                kids.setdefault(t.parent, []).append(t)
        ready = [t for t in self.tree(tasks) if t.status in ("todo", "doing")
                 and all(tasks.get(d) is not None and tasks[d].status == "done"
                         for d in t.deps)
                 and not any(c.status not in FINISHED for c in kids.get(t.key, []))
                 and not any(a.status in FINISHED for a in self._ancestors(t, tasks))]
        ready.sort(key=lambda t: t.status != "doing")  # stable: tree order within each
        return ready[:max(1, min(int(limit), 1000))]

    def path(self, key: str) -> list[Task]:
        """The tasks from the root down to ``key``."""
        tasks = self.all()
        if key not in tasks:
            raise NotFound(f"no task {key}", key=key)
        return [*reversed(self._ancestors(tasks[key], tasks)), tasks[key]]

    def current(self) -> Task | None:
        """The task to work on: the first ready one (in progress first), if any."""
        found = self.next(1)
        return found[0] if found else None

    def context(self, key: str | None = None, *, budget_tokens: int = 500) -> str:
        """The path from the root to ``key`` (default: :meth:`current`) as a compact
        text of at most ``budget_tokens`` (see :func:`count_tokens`): the task with its
        notes and its dependencies' results first to be kept, then its parent, then the
        higher ancestors (the ones dropped first are replaced by ``...``)."""
        if key is None:
            task = self.current()
            if task is None:
                return "(no task is ready)"
            key = task.key
        tasks = self.all()
        if check_name(key, field="key") not in tasks:
            raise NotFound(f"no task {key}", key=key)
        path = [*reversed(self._ancestors(tasks[key], tasks)), tasks[key]]
        target = path[-1]
        tail = [f"{'  ' * (len(path) - 1)}> {target.line()}"]
        if target.notes:
            tail.append(f"  notes: {target.notes}")
        for d in target.deps:
            if d in tasks and tasks[d].result:
                tail.append(f"  {d} gave: {tasks[d].result}")
        lines = [f"{'  ' * i}{t.line()}" for i, t in enumerate(path[:-1])]
        budget = budget_tokens
        if isinstance(budget, bool) or not isinstance(budget, int) or not 8 <= budget <= 10**6:
            raise InvalidInput("budget_tokens must be an integer in 8..1000000",
                               field="budget_tokens")

        def render(dropped: int) -> str:
            return "\n".join((["..."] if dropped else []) + lines[dropped:] + tail)
        dropped = 0
        while dropped < len(lines) and count_tokens(render(dropped)) > budget:
            dropped += 1  # the ancestors nearest the root go first
        text = render(dropped)
        limit = budget * 4
        return text if len(text) <= limit else text[:limit - 3] + "..."

    # -- writes ------------------------------------------------------------------------
    def add(self, title: str, *, parent: str | None = None, key: str | None = None,
            deps: Sequence[str] = (), notes: str = "", order: float | None = None) -> Task:
        """Create a task (under ``parent``). Adding the same key with the same title and
        parent again returns the existing task, so a replayed step creates no duplicate."""
        title = _title(title)
        key = check_name(key if key is not None else slug(title), field="key")
        tasks = self.all()
        if key in tasks:
            old = tasks[key]
            if old.title == title and old.parent == parent:
                return old
            raise Conflict(f"task key {key!r} is taken by {old.title!r}; pass another key",
                           key=key)
        if len(tasks) >= MAX_TASKS:
            raise InvalidInput(f"a workspace holds at most {MAX_TASKS} tasks", field="key")
        if parent is not None and parent not in tasks:
            raise NotFound(f"no parent task {parent}", key=parent)
        deps = self._deps(deps, tasks, key)
        if order is None:
            order = float(sum(1 for t in tasks.values() if t.parent == parent))
        task = Task(key=key, title=title, parent=parent, deps=deps,
                    order=self._order(order), notes=_text(notes, "notes", MAX_NOTE))
        return self._save(task)

    def update(self, key: str, *, title: str | None = None, status: str | None = None,
               notes: str | None = None, result: str | None = None,
               deps: Sequence[str] | None = None, order: float | None = None) -> Task:
        """Change the given fields (a new version; the same values write nothing)."""
        tasks = self.all()
        task = self._task(key, tasks)
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = _title(title)
        if status is not None:
            if status not in STATUSES:
                raise InvalidInput(f"status must be one of {STATUSES}", field="status")
            if status == "done":
                open_ = [t.key for t in tasks.values()
                         if t.parent == key and t.status not in FINISHED]
                if open_:
                    raise Conflict(f"task {key} has unfinished subtasks: {open_[:5]}",
                                   key=key)
            changes["status"] = status
        if notes is not None:
            changes["notes"] = _text(notes, "notes", MAX_NOTE)
        if result is not None:
            changes["result"] = _text(result, "result", MAX_NOTE)
        if deps is not None:
            changes["deps"] = self._deps(deps, tasks, key)
        if order is not None:
            changes["order"] = self._order(order)
        return self._save(Task(**{**task.__dict__, **changes}))

    def start(self, key: str) -> Task:
        return self.update(key, status="doing")

    def complete(self, key: str, result: str | None = None) -> Task:
        """Mark done (refused while a subtask is unfinished), with what it produced."""
        return self.update(key, status="done", result=result)

    def fail(self, key: str, reason: str | None = None) -> Task:
        return self.update(key, status="failed", result=reason)

    def note(self, key: str, text: str) -> Task:
        """Append a line to the task's notes."""
        task = self.get(key)
        return self.update(key, notes=(task.notes + "\n" if task.notes else "") + text)

    def move(self, key: str, parent: str | None, *, order: float | None = None) -> Task:
        """Put the task (with its subtree) under ``parent`` (None: a root)."""
        tasks = self.all()
        task = self._task(key, tasks)
        if parent is not None:
            target = self._task(parent, tasks)
            if target.key == key or key in [a.key for a in self._ancestors(target, tasks)]:
                raise Conflict(f"cannot move {key} under its own subtree", key=key)
        if order is None:
            order = float(sum(1 for t in tasks.values() if t.parent == parent
                              and t.key != key))
        return self._save(Task(**{**task.__dict__, "parent": parent,
                                  "order": self._order(order)}))

    def remove(self, key: str) -> Task:
        """Delete a task without subtasks (a tombstone: its history stays)."""
        tasks = self.all()
        task = self._task(key, tasks)
        if any(t.parent == key for t in tasks.values()):
            raise Conflict(f"task {key} has subtasks; remove or move them first", key=key)
        self.space.remove(KIND, key)
        return task

    # -- internals ---------------------------------------------------------------------
    def _save(self, task: Task) -> Task:
        meta = {"key": task.key, "status": task.status, "parent": task.parent,
                "deps": list(task.deps), "order": task.order, "notes": task.notes,
                "result": task.result}
        return Task.from_item(self.space.write(KIND, task.key, task.title, meta))

    @staticmethod
    def _task(key: str, tasks: dict[str, Task]) -> Task:
        if check_name(key, field="key") not in tasks:
            raise NotFound(f"no task {key}", key=key)
        return tasks[key]

    @staticmethod
    def _order(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not -1e9 <= value <= 1e9:
            raise InvalidInput("order must be a number in -1e9..1e9", field="order")
        return float(value)

    def _deps(self, deps: Iterable[str], tasks: dict[str, Task], key: str) -> tuple[str, ...]:
        if isinstance(deps, str):
            raise InvalidInput("deps must be a list of task keys", field="deps")
        out = tuple(dict.fromkeys(check_name(d, field="deps") for d in deps))
        if len(out) > MAX_DEPS:
            raise InvalidInput(f"at most {MAX_DEPS} dependencies", field="deps")
        for d in out:
            if d not in tasks:
                raise NotFound(f"no task {d} to depend on", key=d)
        # a cycle: some dependency (transitively) depends on this task
        seen, todo = set(), list(out)
        while todo:
            d = todo.pop()
            if d == key:
                raise Conflict(f"dependencies of {key} would form a cycle", key=key)
            if d not in seen and d in tasks:
                seen.add(d)
                todo += list(tasks[d].deps)
        return out

    @staticmethod
    def _ancestors(task: Task, tasks: dict[str, Task]) -> list[Task]:
        """Parent first, root last (a broken or cyclic parent chain just stops)."""
        out: list[Task] = []
        seen = {task.key}
        parent = task.parent
        while parent is not None and parent in tasks and parent not in seen:
            seen.add(parent)
            out.append(tasks[parent])
            parent = tasks[parent].parent
        return out
