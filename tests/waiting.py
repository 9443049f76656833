"""Waiting for work a server finishes after its answer (the proxy's write), in tests."""

from __future__ import annotations

import time
from typing import Callable


def eventually(check: Callable[[], object], seconds: float = 15.0) -> None:
    """Return once ``check()`` is true; fail the test if it is not within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.02)
