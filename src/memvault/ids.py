"""Identifiers and content hashes: low enough that every layer (the vault, cubes, the
reader) can mint ids without importing the facade."""

from __future__ import annotations

import hashlib
import time
import uuid

__all__ = ["new_id", "content_hash"]


def new_id() -> str:
    """A UUIDv7-layout id: time-ordered, so ids sort roughly by creation."""
    ms = int(time.time() * 1000)
    rand = int.from_bytes(uuid.uuid4().bytes[6:], "big") & ((1 << 74) - 1)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
