"""Indexes derived from the record store (rebuildable at any time)."""

from .vector import VectorIndex

__all__ = ["VectorIndex"]
