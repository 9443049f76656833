"""Which optional extra brings which import, and the error when one is missing.

Why: the core install (``pip install memvault``: library, CLI, search) carries no web
server, database driver or torch. A feature that needs one must say which extra to
install, as a :class:`~memvault.errors.ConfigurationError`, not fail with a
``ModuleNotFoundError`` traceback. ``pyproject.toml`` declares the same sets;
``tests/test_install.py`` checks the two agree and that a core-only environment imports
every module not listed under an extra.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from .errors import ConfigurationError

__all__ = ["EXTRA_MODULES", "requires", "install_hint"]

#: Top-level import names each extra provides (a subset of what it installs).
EXTRA_MODULES: dict[str, frozenset[str]] = {
    "server": frozenset({"fastapi", "starlette", "pydantic", "uvicorn", "httpx"}),
    "client": frozenset({"httpx"}),
    "mcp": frozenset({"mcp", "anyio", "fastapi", "starlette", "pydantic", "uvicorn",
                      "httpx"}),
    "local": frozenset({"torch", "transformers", "gguf", "peft"}),
    "postgres": frozenset({"psycopg", "psycopg_pool", "pgvector"}),
    "langgraph": frozenset({"langgraph", "langchain_core"}),
    "fast": frozenset({"onnxruntime", "onnx"}),
}

_TORCH_HINT = ("; install the CPU build of torch first (scripts/install-torch.sh, or pip "
               "install torch==2.13.0+cpu --extra-index-url "
               "https://download.pytorch.org/whl/cpu), or pip fetches the CUDA build")


def install_hint(extra: str) -> str:
    """The command that installs ``extra``, with the torch caveat where it applies."""
    return f"pip install 'memvault[{extra}]'" + (_TORCH_HINT if extra == "local" else "")


@contextlib.contextmanager
def requires(extra: str, feature: str) -> Iterator[None]:
    """Turn a missing import of ``extra``'s packages into a ConfigurationError naming it.

    Any other ``ImportError`` propagates unchanged: a missing core dependency is a broken
    install, and blaming an extra for it would send the user the wrong way.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in EXTRA_MODULES[extra]:
            raise
        raise ConfigurationError(
            f"{feature} needs the '{extra}' extra (no module named {missing!r}): "
            f"{install_hint(extra)}", extra=extra, module=missing) from exc
