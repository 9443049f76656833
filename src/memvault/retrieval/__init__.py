"""Query planning, fusion and ranking over the store and its indexes.

:class:`Searcher` (numpy, faiss) is imported on first use, so that
:mod:`memvault.retrieval.config` and the text helpers stay cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import SearchConfig

if TYPE_CHECKING:
    from .searcher import Candidate, Searcher

__all__ = ["Candidate", "SearchConfig", "Searcher"]


def __getattr__(name: str) -> Any:
    if name in ("Candidate", "Searcher"):
        return getattr(importlib.import_module(".searcher", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
