"""The seam between the vault and the features built on it.

:class:`~memvault.Vault` offers ``remember`` and ``chat`` as methods, and links new
memories on write when ``auto_link`` is set, but the code for those lives in packages
that *use* the vault (the reader, chat, the scheduler). Importing them from the facade
would point the import graph upward, so each feature registers its entry point here
when its module is imported, and the vault looks it up by name at call time. A plugin
can replace one the same way.

The built-in features are imported on the first call that needs them, not by
``import memvault``: the vault names them here as strings (:data:`DEFAULTS`), never as
imports, so the import graph still points down, and a command that only reads a memory
by id pays for none of them.

The contract is one function per name, called with the vault first:

* ``remember(vault, messages, **options) -> RememberResult``
* ``chat(vault, query, **options) -> ChatResult``
* ``after_write(vault, items) -> None`` (runs after a committed add when auto_link is on)
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

from .errors import ConfigurationError

__all__ = ["provide", "get", "DEFAULTS"]

F = TypeVar("F", bound=Callable[..., Any])
_HOOKS: dict[str, Callable[..., Any]] = {}
#: The module whose import registers the built-in provider of each hook.
DEFAULTS: dict[str, str] = {"remember": "memvault.reader.pipeline", "chat": "memvault.chat",
                            "after_write": "memvault.scheduler.links"}


def provide(name: str) -> Callable[[F], F]:
    """Decorator: make ``fn`` the vault's ``name`` hook (the last registration wins).

    Except over a plugin: the built-in provider is imported lazily, maybe after a plugin
    registered, and must not then replace it."""
    def register(fn: F) -> F:
        current = _HOOKS.get(name)
        if current is not None and fn.__module__ == DEFAULTS.get(name) \
                and current.__module__ != fn.__module__:
            return fn
        _HOOKS[name] = fn
        return fn
    return register


def get(name: str) -> Callable[..., Any]:
    """The registered ``name`` hook; the built-in one is imported if none is yet."""
    if name not in _HOOKS and name in DEFAULTS:
        importlib.import_module(DEFAULTS[name])  # registers it (or a plugin already did)
    try:
        return _HOOKS[name]
    except KeyError:
        raise ConfigurationError(f"no {name!r} feature is installed") from None
