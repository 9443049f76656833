"""The instruction stack and the scratchpad: L2MAC's control unit, kept in the vault.

The agent pushes the instruction it is carrying out, pushes a sub-instruction when it
breaks the work down, and pops each on completion (with its result). Frame ``n`` is the
``wm_frame`` item keyed ``frame-n``: a pop tombstones it, a later push at that depth
writes its next version, so the stack's whole past is the items' history. The
scratchpad is one more ``wm_frame`` item (key ``scratchpad``) the agent overwrites.

Everything the agent holds in its context (top instruction, scratchpad, task path) is
thus in the store at every acknowledged step: after a crash :meth:`Workspace.context`
rebuilds the same text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import Conflict, InvalidInput
from ..types import MemoryItem
from ._base import Space

__all__ = ["InstructionStack", "Frame", "MAX_DEPTH"]

KIND = "wm_frame"
MAX_DEPTH = 64
MAX_INSTRUCTION = 8000
SCRATCH = "scratchpad"


@dataclass(frozen=True)
class Frame:
    depth: int
    instruction: str
    task: str | None = None
    result: str | None = None
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: MemoryItem, result: str | None = None) -> "Frame":
        return cls(int(item.metadata["depth"]), item.text, item.metadata.get("task"),
                   result, item.version)


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{field} must be a non-empty string of at most {limit} "
                           "characters", field=field)
    return value


class InstructionStack:
    """The instruction stack and scratchpad of one workspace (see the module docs)."""

    def __init__(self, space: Space) -> None:
        self.space = space

    def frames(self) -> list[Frame]:
        """Bottom (the first instruction) to top (the current one)."""
        found = [Frame.from_item(i) for i in self.space.items(KIND, role="frame")]
        return sorted(found, key=lambda f: f.depth)

    def top(self) -> Frame | None:
        frames = self.frames()
        return frames[-1] if frames else None

    def push(self, instruction: str, *, task: str | None = None) -> Frame:
        """Make ``instruction`` the current one. Pushing the instruction already on top
        (same text and task) is a no-op, so a step replayed after a crash pushes once."""
        instruction = _text(instruction, "instruction", MAX_INSTRUCTION)
        if task is not None:
            _text(task, "task", 64)
        frames = self.frames()
        if frames and frames[-1].instruction == instruction and frames[-1].task == task:
            return frames[-1]
        depth = len(frames)
        if depth >= MAX_DEPTH:
            raise Conflict(f"the instruction stack is {MAX_DEPTH} deep; pop first",
                           depth=depth)
        item = self.space.write(KIND, f"frame-{depth}", instruction,
                                {"role": "frame", "depth": depth, "task": task})
        return Frame.from_item(item)

    def pop(self, result: str | None = None, *, expect: str | None = None) -> Frame:
        """Finish the current instruction; ``result`` is kept in the audit log's reason.
        With ``expect``, pop only if that is the top instruction: a replayed pop whose
        frame is already gone is then a no-op (returns the frame it would have popped)."""
        if result is not None and (not isinstance(result, str) or len(result) > 4000):
            raise InvalidInput("result must be a string of at most 4000 characters",
                               field="result")
        top = self.top()
        if top is None or (expect is not None and top.instruction != expect):
            if expect is not None:
                return Frame(-1, expect, None, result)
            raise Conflict("the instruction stack is empty")
        self.space.remove(KIND, f"frame-{top.depth}", reason=result)
        return Frame(top.depth, top.instruction, top.task, result, top.version)

    def scratch(self) -> str:
        """The scratchpad's text ('' if never written)."""
        item = self.space.find(KIND, SCRATCH)
        if item is None or item.status == "deleted" or "\n" not in item.text:
            return ""
        return item.text.split("\n", 1)[1]

    def write_scratch(self, text: str) -> str:
        """Overwrite the scratchpad (a new version; '' clears it)."""
        if not isinstance(text, str) or len(text) > 16000:
            raise InvalidInput("the scratchpad holds a string of at most 16000 characters",
                               field="text")
        self.space.write(KIND, SCRATCH, f"{SCRATCH}\n{text}", {"role": "scratch"})
        return text
