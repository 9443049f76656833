"""The seam between the vault and the features built on it.

:class:`~memvault.Vault` offers ``remember`` and ``chat`` as methods, and links new
memories on write when ``auto_link`` is set, but the code for those lives in packages
that *use* the vault (the reader, chat, the scheduler). Importing them from the facade
would point the import graph upward, so each feature registers its entry point here
when its module is imported (``memvault/__init__`` imports them), and the vault looks it
up by name at call time. A plugin can replace one the same way.

The contract is one function per name, called with the vault first:

* ``remember(vault, messages, **options) -> RememberResult``
* ``chat(vault, query, **options) -> ChatResult``
* ``after_write(vault, items) -> None`` (runs after a committed add when auto_link is on)
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from .errors import ConfigurationError

__all__ = ["provide", "get"]

F = TypeVar("F", bound=Callable[..., Any])
_HOOKS: dict[str, Callable[..., Any]] = {}


def provide(name: str) -> Callable[[F], F]:
    """Decorator: make ``fn`` the vault's ``name`` hook (the last registration wins)."""
    def register(fn: F) -> F:
        _HOOKS[name] = fn
        return fn
    return register


def get(name: str) -> Callable[..., Any]:
    try:
        return _HOOKS[name]
    except KeyError:
        raise ConfigurationError(f"no {name!r} feature is installed (import memvault first)"
                                 ) from None
