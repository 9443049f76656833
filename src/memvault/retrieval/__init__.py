"""Query planning, fusion and ranking over the store and its indexes."""

from .searcher import Candidate, SearchConfig, Searcher

__all__ = ["Candidate", "SearchConfig", "Searcher"]
