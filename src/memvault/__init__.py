"""memvault: a memory operating system for LLM agents.

The public surface is deliberately small: open a :class:`Vault`, then ``add``, ``search``,
``get``, ``update``, ``delete`` and ``history``. Everything else (stores, indexes, models)
is reachable from submodules for those who extend memvault.

The names below are imported on first use (PEP 562), not by ``import memvault``: the
command line imports this package for ``memvault --help`` and for a by-id read, and
neither needs the retrieval stack (numpy, faiss), the reader or the scheduler. The
features built on the vault register their hooks when the vault first calls one (see
:mod:`memvault.hooks`), so nothing depends on this module having imported them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (Conflict, ConfigurationError, IntegrityError, InvalidInput, MemvaultError,
                     ModelError, NotFound, PayloadTooLarge, PermissionDenied, StorageError,
                     Unauthorized)

if TYPE_CHECKING:
    from .client import RemoteVault
    from .settings import Limits, Settings
    from .types import AuditEvent, Link, MemoryItem, Page, SearchHit
    from .vault import Vault

__version__ = "0.1.0"

#: public name -> the module that defines it (imported when the name is first used)
_LAZY = {"Vault": "vault", "Settings": "settings", "Limits": "settings",
         "MemoryItem": "types", "SearchHit": "types", "Page": "types", "AuditEvent": "types",
         "Link": "types"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:  # ``memvault.storage`` and friends after a bare ``import memvault``
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def connect(url: str, api_key: str, **kwargs: object) -> "RemoteVault":
    """A remote vault over REST with the same interface as :class:`Vault` (needs the
    ``client`` extra: httpx)."""
    from ._extras import requires

    with requires("client", "memvault.connect"):
        from .client import connect as _connect

    return _connect(url, api_key, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "Vault", "Settings", "Limits",
    "MemoryItem", "SearchHit", "Page", "AuditEvent", "Link",
    "MemvaultError", "InvalidInput", "NotFound", "Conflict", "PermissionDenied",
    "StorageError", "IntegrityError", "ModelError", "ConfigurationError", "Unauthorized",
    "PayloadTooLarge", "connect",
    "__version__",
]
