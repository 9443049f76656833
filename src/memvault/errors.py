"""One exception tree for the whole library.

Every error carries a stable ``code`` so that the faces (CLI exit messages, HTTP error
bodies, MCP tool errors) can translate it without string matching. Errors raised by
sqlite3, faiss, HTTP clients or model libraries are wrapped at the boundary with
``raise ... from exc`` so callers only ever need to catch :class:`MemvaultError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MemvaultError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "PermissionDenied",
    "Unauthorized",
    "PayloadTooLarge",
    "StorageError",
    "IntegrityError",
    "ModelError",
    "ConfigurationError",
    "ModelUnavailable",
]


class MemvaultError(Exception):
    """Root of every error memvault raises on purpose."""

    code: str = "memvault_error"
    http_status: int = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(MemvaultError, ValueError):
    """The caller sent something we refuse to store or answer; nothing was changed."""

    code = "invalid_input"
    http_status = 422


class NotFound(MemvaultError, KeyError):
    """No memory (or version, or object) with that identity is visible to the caller."""

    code = "not_found"
    http_status = 404

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return self.message


class Conflict(MemvaultError):
    """The request contradicts the current state (e.g. updating a deleted memory)."""

    code = "conflict"
    http_status = 409


class PermissionDenied(MemvaultError):
    code = "permission_denied"
    http_status = 403


class Unauthorized(PermissionDenied):
    """No API key, or one that is malformed, unknown or revoked."""

    code = "unauthorized"
    http_status = 401


class PayloadTooLarge(InvalidInput):
    """A request body larger than the server accepts; nothing was read into the vault."""

    code = "payload_too_large"
    http_status = 413


class StorageError(MemvaultError):
    """The record store failed (disk full, locked too long, I/O error)."""

    code = "storage_error"
    http_status = 503


class IntegrityError(StorageError):
    """Stored data failed a consistency or checksum check."""

    code = "integrity_error"
    http_status = 500


class ModelError(MemvaultError):
    """An embedder or LLM could not be loaded or failed to answer."""

    code = "model_error"
    http_status = 502


class ConfigurationError(MemvaultError):
    code = "configuration_error"
    http_status = 500


class ModelUnavailable(ConfigurationError):
    """The call needs an LLM and none is configured here (e.g. a server started without
    ``--llm``): the caller's request is fine, this deployment cannot serve it."""

    code = "model_unavailable"
    http_status = 409
