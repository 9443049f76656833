"""A module imported on first attribute access, for code that must not pay for a heavy
dependency at import time (numpy costs ~0.1 s; a by-id read never needs it)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LazyModule", "numpy"]


class LazyModule:
    """Stands in for module ``name``: the first attribute read imports it; each attribute
    read is then cached on this object, so later reads cost a plain attribute lookup."""

    def __init__(self, name: str) -> None:
        self.__dict__["_name"] = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = getattr(importlib.import_module(self.__dict__["_name"]), attr)
        self.__dict__[attr] = value
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_name']!r}>"


numpy = LazyModule("numpy")
