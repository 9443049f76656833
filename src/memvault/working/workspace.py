"""A workspace: the task tree, files and instruction stack of one owner, together, and
the context an agent's step sees assembled from them in a token budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..api import VaultAPI
from ..errors import InvalidInput
from ._base import Space, count_tokens
from .files import DEFAULT_BUDGET_BYTES, FileStore
from .stack import InstructionStack
from .tasks import TaskTree

__all__ = ["Workspace", "Context"]

MAX_READS = 32


@dataclass(frozen=True)
class Context:
    """What one step of the agent sees, and what it cost."""

    text: str
    tokens: int
    task: str | None
    files: list[str] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "tokens": self.tokens, "task": self.task,
                "files": list(self.files), "truncated": self.truncated}


class Workspace:
    """Working memory for a long-horizon agent, over any :class:`VaultAPI` (a Vault, a
    ScopedVault or a RemoteVault alike).

    ``user_id``/``agent_id`` name the owner (required to keep two users' workspaces apart
    on a shared Vault; a ScopedVault pins them to its principal). ``name`` tells one
    piece of work from another. ``budget_bytes`` bounds the files together.
    """

    def __init__(self, vault: VaultAPI, name: str = "default", *, user_id: str | None = None,
                 agent_id: str | None = None,
                 budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.space = Space(vault, name, user_id, agent_id)
        self.tasks = TaskTree(self.space)
        self.files = FileStore(self.space, budget_bytes=budget_bytes)
        self.stack = InstructionStack(self.space)

    @property
    def name(self) -> str:
        return self.space.name

    def context(self, *, task: str | None = None, reads: Sequence[Any] = (),
                budget_tokens: int = 2000) -> Context:
        """The step's context in at most ``budget_tokens`` (see :func:`count_tokens`):
        the current instruction, the scratchpad, the path to ``task`` (default: the
        current one) and then each of ``reads`` (a path, or ``(path, start, end)``) in
        order while they fit; a read that does not fit is cut and ``truncated`` set.
        Everything comes from the store, so after a crash the same call gives the same
        text."""
        if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or \
                not 64 <= budget_tokens <= 10**6:
            raise InvalidInput("budget_tokens must be an integer in 64..1000000",
                               field="budget_tokens")
        if isinstance(reads, (str, bytes)) or len(reads) > MAX_READS:
            raise InvalidInput(f"reads must be a list of at most {MAX_READS} paths",
                               field="reads")
        parts: list[str] = []
        top = self.stack.top()
        if top is not None:
            parts.append(f"# Instruction\n{top.instruction}")
        scratch = self.stack.scratch()
        if scratch:
            parts.append(f"# Scratchpad\n{scratch}")
        current = task if task is not None else getattr(self.tasks.current(), "key", None)
        head = "\n\n".join(parts)
        room = budget_tokens - count_tokens(head) - 8
        if current is not None:
            path = self.tasks.context(current, budget_tokens=max(8, min(room, budget_tokens // 2)))
            parts.append(f"# Task\n{path}")
        truncated = False
        files: list[str] = []
        for read in reads:
            path, start, end = (read, None, None) if isinstance(read, str) else \
                (tuple(read) + (None, None))[:3]
            view = self.files.read(path, start=start, end=end)
            label = f"# File {view.path} (lines {view.start}-{view.end} of {view.lines})"
            block = f"{label}\n{view.content}"
            used = count_tokens("\n\n".join(parts))
            room = budget_tokens - used - 1
            if count_tokens(block) > room:
                truncated = True
                if room > count_tokens(label) + 8:
                    parts.append(block[:room * 4 - 4] + "\n...")
                    files.append(view.path)
                break
            parts.append(block)
            files.append(view.path)
        text = "\n\n".join(parts)
        return Context(text, count_tokens(text), current, files, truncated)

    def to_dict(self) -> dict[str, Any]:
        """The whole working state: tasks in tree order, files, the stack, the scratchpad."""
        return {"workspace": self.name,
                "tasks": [t.to_dict() for t in self.tasks.tree()],
                "files": [f.to_dict() for f in self.files.list()],
                "stack": [f.to_dict() for f in self.stack.frames()],
                "scratchpad": self.stack.scratch()}
