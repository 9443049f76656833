"""memvault: a memory operating system for LLM agents.

The public surface is deliberately small: open a :class:`Vault`, then ``add``, ``search``,
``get``, ``update``, ``delete`` and ``history``. Everything else (stores, indexes, models)
is reachable from submodules for those who extend memvault.
"""

from .errors import (Conflict, ConfigurationError, IntegrityError, InvalidInput, MemvaultError,
                     ModelError, NotFound, PermissionDenied, StorageError)
from .settings import Limits, Settings
from .types import AuditEvent, Link, MemoryItem, Page, SearchHit
from .vault import Vault

__version__ = "0.1.0"

__all__ = [
    "Vault", "Settings", "Limits",
    "MemoryItem", "SearchHit", "Page", "AuditEvent", "Link",
    "MemvaultError", "InvalidInput", "NotFound", "Conflict", "PermissionDenied",
    "StorageError", "IntegrityError", "ModelError", "ConfigurationError",
    "__version__",
]
