"""Working memory for long-horizon agents: what the agent is doing, not what was said.

An L2MAC-style agent keeps only the current instruction in its LLM context and pages the
rest in and out of an external memory by precise reads and writes; a task graph keeps
its place over many steps. A :class:`Workspace` gives it three parts, all stored as
versioned vault items of the :data:`~memvault.types.WORKING_KINDS`:

* :class:`TaskTree` (``wm_task``): goals and subtasks, status, dependencies, notes and
  results, "what next", and the root-to-task path in a token budget;
* :class:`FileStore` (``wm_file``): files written whole or by line range, listed by
  prefix, each write a version (history, diff, ``known_at``), under a size budget;
* :class:`InstructionStack` (``wm_frame``): push/pop of instructions and a scratchpad.

It works over any :class:`~memvault.api.VaultAPI`, so isolation between principals,
audit, history and cubes are the vault's own; ``Vault.search`` leaves these kinds out
unless ``filters.kind`` asks for them.
"""

from ..types import WORKING_KINDS
from ._base import count_tokens
from .files import BudgetExceeded, FileInfo, FileStore, FileView
from .stack import Frame, InstructionStack
from .tasks import STATUSES, Task, TaskTree
from .workspace import Context, Workspace

__all__ = ["Workspace", "Context", "TaskTree", "Task", "STATUSES", "FileStore", "FileInfo",
           "FileView", "BudgetExceeded", "InstructionStack", "Frame", "WORKING_KINDS",
           "count_tokens"]
