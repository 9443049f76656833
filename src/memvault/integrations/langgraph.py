"""memvault for LangGraph: ``MemvaultStore`` (long-term memory, a ``BaseStore``) and
``MemvaultSaver`` (a thread's checkpoints, a ``BaseCheckpointSaver``).

    from memvault import Vault
    from memvault.integrations.langgraph import MemvaultSaver, MemvaultStore

    vault = Vault("agent.db")
    graph = builder.compile(store=MemvaultStore(vault), checkpointer=MemvaultSaver(vault))

Install with ``pip install 'memvault[langgraph]'``. The mapping of namespaces, keys and
values onto memories is described in :mod:`memvault.integrations.lg_store`; where and how
checkpoints are kept in :mod:`memvault.integrations.lg_checkpoint`.
"""

from __future__ import annotations

import langgraph  # noqa: F401  (the `langgraph` extra: without it this module cannot import)

from .lg_checkpoint import MemvaultSaver, SafeSerializer
from .lg_store import MemvaultStore

__all__ = ["MemvaultStore", "MemvaultSaver", "SafeSerializer"]
