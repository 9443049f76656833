"""The LLM a server face (REST, MCP) uses for chat and fine remember: one per server,
chosen by its operator (``--llm SPEC``), never by a caller."""

from __future__ import annotations

import threading
from typing import Any

from ..errors import ModelUnavailable
from ..models import get_llm
from ..models.llm import LLM

__all__ = ["ModelSlot"]

_NO_MODEL = ("", "none", "rules")  # the specs get_llm resolves to "no LLM"


class ModelSlot:
    """The server's LLM: a spec (or LLM object) resolved on first use, in a worker thread
    (loading the bundled model takes seconds), then kept for the life of the server."""

    def __init__(self, spec: "str | LLM | None", **options: Any) -> None:
        self.spec, self.options = spec, options  # options: get_llm's api_key, timeout
        self._model: LLM | None = None
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return self.spec is not None and not (
            isinstance(self.spec, str) and self.spec.strip().lower() in _NO_MODEL)

    @property
    def id(self) -> str | None:
        if self._model is not None:
            return self._model.id
        return self.spec if isinstance(self.spec, str) else getattr(self.spec, "id", None)

    def require(self, what: str) -> None:
        """Refuse at once (before queueing) when there is no model."""
        if not self.configured:
            raise ModelUnavailable(f"{what} needs an LLM and this server has none: start it "
                                   "with 'memvault serve --llm SPEC' (or set MEMVAULT_LLM)",
                                   reason="no_llm")

    def get(self) -> LLM:
        with self._lock:
            if self._model is None:
                model = get_llm(self.spec, **self.options)
                if model is None:
                    raise ModelUnavailable("this server has no LLM", reason="no_llm")
                self._model = model
            return self._model
