"""memvault: a memory operating system for LLM agents.

The public surface is deliberately small: open a :class:`Vault`, then ``add``, ``search``,
``get``, ``update``, ``delete`` and ``history``. Everything else (stores, indexes, models)
is reachable from submodules for those who extend memvault.
"""

from typing import TYPE_CHECKING

from .errors import (Conflict, ConfigurationError, IntegrityError, InvalidInput, MemvaultError,
                     ModelError, NotFound, PayloadTooLarge, PermissionDenied, StorageError,
                     Unauthorized)
from .settings import Limits, Settings
from .types import AuditEvent, Link, MemoryItem, Page, SearchHit
from .vault import Vault
# The features built on the vault register the hooks its methods call (see memvault.hooks).
from . import chat as _chat, reader as _reader  # noqa: E402,F401
from .scheduler import links as _links  # noqa: E402,F401

if TYPE_CHECKING:
    from .client import RemoteVault


def connect(url: str, api_key: str, **kwargs: object) -> "RemoteVault":
    """A remote vault over REST with the same interface as :class:`Vault` (needs the
    ``client`` extra: httpx)."""
    from ._extras import requires

    with requires("client", "memvault.connect"):
        from .client import connect as _connect

    return _connect(url, api_key, **kwargs)  # type: ignore[arg-type]

__version__ = "0.1.0"

__all__ = [
    "Vault", "Settings", "Limits",
    "MemoryItem", "SearchHit", "Page", "AuditEvent", "Link",
    "MemvaultError", "InvalidInput", "NotFound", "Conflict", "PermissionDenied",
    "StorageError", "IntegrityError", "ModelError", "ConfigurationError", "Unauthorized",
    "PayloadTooLarge", "connect",
    "__version__",
]
