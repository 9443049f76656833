"""What every REST router shares: the runtime (vault, keys, pools, metrics), the
authenticated :class:`~memvault.governance.ScopedVault` dependency, the error table of
the OpenAPI schema and the JSON response that never fails after a call took effect.

Its own module so that the routers (``app``, ``assist``, ``sharing``) import it, not
each other.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Annotated, Any, Callable, Literal, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InvalidInput, MemvaultError
from ..governance import GrantStore, KeyStore, ScopedVault, Unauthorized
from ..types import MemoryItem
from ..vault import Vault
from . import models as m
from .edge import Metrics
from .model_slot import ModelSlot
from .pool import WorkerPool

__all__ = ["RT", "SV", "Runtime", "IdPath", "IdQ", "ScopeQ", "TimeQ", "LimitQ", "OffsetQ",
           "StatusQ"]

log = logging.getLogger("memvault.server")
T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": m.ErrorOut, "description": text} for status, text in (
        (401, "Missing, unknown or revoked API key (code unauthorized)"),
        (403, "Outside the key's scope (code permission_denied)"),
        (404, "No such memory visible to this key, or no such route (code not_found)"),
        (409, "Conflicts with the current state (code conflict), or needs an LLM the "
              "server does not have (code model_unavailable)"),
        (413, "Request body too large (code payload_too_large)"),
        (422, "Invalid input; nothing was changed (code invalid_input)"))}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class Runtime:
    """What the routes share: the vault, the keys, the worker pools and the metrics.

    Vault calls run on ``pool`` (``threads`` long-lived workers, see
    :class:`~memvault.server.pool.WorkerPool`). Model calls (chat, fine remember) run on
    their own small ``model_pool``, so that slow generations queue behind each other
    instead of taking every worker from quick reads and writes. ``llm`` is the server's
    model slot (see :class:`~memvault.server.assist.ModelSlot`): empty unless the server
    was started with an LLM.
    """

    def __init__(self, vault: Vault, keys: KeyStore, threads: int,
                 audit_reads: bool = True, llm: Any = None, model_threads: int = 1) -> None:
        self.vault, self.keys, self.threads = vault, keys, threads
        self.grants, self.audit_reads = GrantStore(keys), audit_reads  # sharing, read audit
        self.metrics = Metrics()
        self.pool = WorkerPool(threads, "memvault")
        self.model_pool = WorkerPool(model_threads, "memvault-model")
        self.llm = ModelSlot(llm if llm is not None else vault.settings.llm)

    @property
    def waiting(self) -> int:
        return self.pool.waiting

    @property
    def running(self) -> int:
        return self.pool.running

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on a vault worker (see :meth:`WorkerPool.run`)."""
        return await self.pool.run(fn, *args, **kwargs)

    def close(self) -> None:
        """Wait for running calls and stop the workers (a later call starts new ones)."""
        self.model_pool.close()
        self.pool.close()


def _runtime(request: Request) -> Runtime:
    return request.app.state.memvault


_bearer = HTTPBearer(auto_error=False, bearerFormat="mv_<key id>_<secret>",
                     description="An API key made with `memvault keys create`.")


async def _scoped(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None,
                                                     Depends(_bearer)]) -> ScopedVault:
    rt = _runtime(request)
    if creds is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    principal = await rt.run(rt.keys.verify, creds.credentials)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return ScopedVault(rt.vault, principal, grants=rt.grants, audit_reads=rt.audit_reads)


RT = Annotated[Runtime, Depends(_runtime)]
SV = Annotated[ScopedVault, Depends(_scoped)]

# Path and query parameters, with the constraints the vault applies (see models.py).
IdPath = Annotated[str, Path(pattern=m.ID_PATTERN, description="A memory id.")]
IdQ = Annotated[str, Query(pattern=m.ID_PATTERN, description="A memory id.")]
ScopeQ = Annotated[str | None, Query(min_length=1, max_length=256, pattern=r"^[^\x00]+$")]
TimeQ = Annotated[str | None, Query(pattern=m.TIME_PATTERN, description="ISO-8601 date or "
                                    "date-time (years 1901-2198).")]
LimitQ = Annotated[int, Query(ge=1, le=1000)]
OffsetQ = Annotated[int, Query(ge=0, le=2 ** 62)]
StatusQ = Annotated[list[Literal["active", "archived", "deleted", "quarantined", "any"]] | None,
                    Query(description="Repeatable; 'any' for every status")]


def _dumps(doc: Any) -> str:
    """``doc`` as standard JSON text that always encodes as UTF-8. Requests cannot put a
    lone surrogate or a NaN into the vault (models refuse them), but other faces or older
    data might: such a surrogate is sent \\u-escaped and a non-finite number as null,
    rather than failing the response after the call has had its effect."""
    try:
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode("utf-8")
        return text
    except ValueError:  # includes UnicodeEncodeError
        log.warning("a response held a lone surrogate or a non-finite number")
        return json.dumps(_finite(doc), ensure_ascii=True, allow_nan=False,
                          separators=(",", ":"))


def _finite(doc: Any) -> Any:
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [_finite(v) for v in doc]
    return doc


class _JSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _dumps(content).encode("utf-8")


def _ok(doc: Any, status: int = 200) -> JSONResponse:
    return _JSONResponse(doc, status_code=status)


def _time(value: str | None) -> str | float | None:
    """A time from a query string: epoch seconds if it is a number, else ISO-8601."""
    if value is not None and _NUMBER.match(value.strip()):
        return float(value)
    return value


def _status(values: list[str] | None) -> Any:
    if not values:
        return "active"
    if "any" in values:
        return "any"
    return values[0] if len(values) == 1 else values


def _filters(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput("filters must be a JSON object", field="filters") from None
    problem = m.json_problem(doc, "filters", int64=True)
    if problem:
        raise InvalidInput(problem, field="filters")
    try:  # the same model (and schema) as the search body's filters
        return m.Filters.model_validate(doc).model_dump(exclude_none=True)
    except ValueError as exc:
        first = getattr(exc, "errors", lambda: [{}])()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(f"filters{'.' + where if where else ''}: "
                           f"{_said(first)}", field="filters") from None


def _items(items: list[MemoryItem]) -> list[dict[str, Any]]:
    return [i.to_dict() for i in items]


# -- error bodies ------------------------------------------------------------------------
def _error(status: int, code: str, message: str, details: Any = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = jsonable_encoder(details)
    return _JSONResponse(body, status_code=status, headers=headers)


async def _on_memvault(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MemvaultError)
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc,
                  exc_info=exc.__cause__ or exc)
    return _error(exc.http_status, exc.code, exc.message, exc.details,
                  {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None)


def _said(error: Any) -> str:
    """A validation error's message; a pattern mismatch without the (long) pattern."""
    if error.get("type") == "string_pattern_mismatch":
        return "does not have the accepted form (see the OpenAPI schema)"
    return str(error.get("msg", "")).removeprefix("Value error, ")


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) for p in e.get("loc", ())
                       if not str(p).startswith(("constrained-", "function-"))],
               "msg": _said(e), "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
    if errors and errors[0]["type"] == "json_invalid":
        message = f"the body is not valid JSON (at character {errors[0]['loc'][-1]})"
    elif errors:
        where = ".".join(p for p in errors[0]["loc"] if p != "body") or "body"
        message = f"{where}: {errors[0]['msg']}"
        if len(exc.errors()) > 1:
            message += f" (and {len(exc.errors()) - 1} more)"
    else:
        message = "invalid request"
    return _error(422, "invalid_input", message, {"errors": errors})


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status, detail = exc.status_code, str(exc.detail)
    if status == 404:
        return _error(404, "not_found", f"no route {request.method} {request.url.path}"
                      if detail == "Not Found" else detail)
    if status == 405:  # Allow: every method the schema documents for this path
        methods = _allowed(request)
        return _error(405, "method_not_allowed",
                      f"{request.method} is not allowed on {request.url.path}",
                      headers={**(exc.headers or {}), "Allow": ", ".join(methods)}
                      if methods else exc.headers)
    if status == 400:  # an unparseable body: as invalid as a malformed one
        return _error(422, "invalid_input", f"the request body could not be parsed ({detail})")
    code = {401: "unauthorized", 413: "payload_too_large"}.get(status, "http_error")
    return _error(status, code, detail, headers=exc.headers)


def _allowed(request: Request) -> list[str]:
    """The methods the OpenAPI schema declares for the request's path (its ``Allow``): a
    literal path wins over templates that also match it, as in OpenAPI."""
    app = request.app
    paths = app.openapi()["paths"]
    table = getattr(app.state, "allow_table", None)
    if table is None:
        table = app.state.allow_table = [
            (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"),
             [method.upper() for method in ops])
            for path, ops in paths.items() if "{" in path]
    path = request.url.path
    if path in paths:
        return sorted(method.upper() for method in paths[path])
    return sorted({m for regex, methods in table if regex.match(path) for m in methods})


async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s crashed", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal_error", "internal server error")


