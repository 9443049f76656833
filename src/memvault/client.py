"""The remote vault: the :class:`~memvault.Vault` interface over the REST API.

``connect(url, api_key)`` returns a :class:`RemoteVault` whose methods have the names,
signatures and return types of the local Vault's (MemoryItem, SearchHit, Page,
AuditEvent), seen through the key's scope as a
:class:`~memvault.governance.ScopedVault` would show it. Error bodies come back as the
same memvault exceptions, chosen by their ``code``; transport failures (refused
connection, time-out) become :class:`~memvault.errors.StorageError`.

Only httpx is needed: this module does not import the server.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote

import httpx

from . import _validate as check
from .api import Record, VaultAPI
from .errors import (Conflict, ConfigurationError, IntegrityError, InvalidInput, MemvaultError,
                     ModelError, ModelUnavailable, NotFound, PayloadTooLarge,
                     PermissionDenied, StorageError, Unauthorized)
from .governance.acl import Grant
from .types import AuditEvent, MemoryItem, Page, SearchHit

if TYPE_CHECKING:
    from .chat import ChatResult
    from .reader.pipeline import RememberResult

__all__ = ["connect", "RemoteVault", "RemoteError"]

#: Records per request the server accepts (``server/models.py``): larger batches are sent
#: as several requests.
MAX_RECORDS = 1000


_BY_CODE: dict[str, type[MemvaultError]] = {cls.code: cls for cls in (
    InvalidInput, NotFound, Conflict, PermissionDenied, StorageError, IntegrityError,
    ModelError, ConfigurationError, Unauthorized, PayloadTooLarge, ModelUnavailable)}


class RemoteError(MemvaultError):
    """A failure the server reported with a code this client has no class for."""

    def __init__(self, message: str, *, code: str, http_status: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code
        self.http_status = http_status


def connect(url: str, api_key: str, *, timeout: float = 30,
            transport: httpx.BaseTransport | None = None) -> "RemoteVault":
    """A :class:`RemoteVault` talking to the memvault server at ``url`` with ``api_key``.

    ``transport`` replaces the network (e.g. ``httpx.MockTransport``) for tests.
    """
    if not isinstance(api_key, str) or not api_key:
        raise InvalidInput("api_key must be a non-empty string", field="api_key")
    if not _KEY_CHARS.fullmatch(api_key):
        # never echo it: a key is a secret, and this one may be a key plus other output
        # (e.g. KEY=$(...) captured a second line)
        raise InvalidInput(f"api_key is malformed ({_key_problem(api_key)}); pass exactly "
                           "the token `memvault keys create` printed", field="api_key")
    client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, transport=transport,
                          headers={"Authorization": f"Bearer {api_key}",
                                   "User-Agent": "memvault-client"})
    return RemoteVault(client)


#: What an HTTP bearer token may hold (RFC 6750 b64token, plus the rest of visible ASCII).
_KEY_CHARS = re.compile(r"[\x21-\x7e]{1,512}")


def _key_problem(key: str) -> str:
    """Why ``key`` cannot be a token, without showing any of it."""
    if len(key) > 512:
        return f"{len(key)} characters, more than any key"
    if "\n" in key or "\r" in key:
        return f"it has {key.count(chr(10)) + 1} lines"
    if any(c.isspace() for c in key):
        return "it contains whitespace"
    return "it contains characters a key never has"


def _jsonable(value: Any) -> Any:
    """What the local Vault accepts (datetimes, tuples, ...) in its JSON spelling."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _seg(id: Any) -> str:
    """A memory id as one path segment, checked as the Vault checks it (a malformed id
    cannot be sent as a path). Dots are escaped too, so that ids such as ``..`` survive
    URL normalisation."""
    return quote(check.item_id(id), safe="").replace(".", "%2E")


def _param(value: Any) -> Any:
    """A query-string value; times (datetimes, epoch seconds) as ISO-8601, the only
    spelling the server's query parameters accept."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        try:
            return datetime.fromtimestamp(value, timezone.utc).isoformat()
        except (OverflowError, OSError, ValueError):
            return repr(value)  # out of any range: the server refuses it
    return value


class RemoteVault(VaultAPI):
    """A vault on a memvault server, with the local Vault's interface."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._closed = False

    @property
    def url(self) -> str:
        return str(self._client.base_url)

    def __repr__(self) -> str:
        return f"RemoteVault({self.url!r})"

    # -- transport ---------------------------------------------------------------------
    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 body: Any = None) -> Any:
        if self._closed:
            raise StorageError("the remote vault is closed")
        kwargs: dict[str, Any] = {}
        if params:
            kwargs["params"] = [(k, _param(x)) for k, v in params.items() if v is not None
                                for x in (v if isinstance(v, (list, tuple)) else [v])]
        if body is not None:
            try:
                kwargs["content"] = json.dumps(_jsonable(body), ensure_ascii=False).encode()
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"the request is not valid JSON: {exc}") from None
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise StorageError(f"{method} {path}: no answer from {self.url} in time; a write "
                               "may or may not have been applied", reason="timeout") from exc
        except httpx.HTTPError as exc:
            raise StorageError(f"{method} {path}: cannot reach {self.url}: {exc}",
                               reason="unreachable") from exc
        if response.status_code >= 400:
            raise _error(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise StorageError(f"{method} {path}: the server sent a body that is not JSON",
                               reason="bad_response") from exc

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    def flush(self) -> None:
        self._request("POST", "/v1/flush")

    def __enter__(self) -> "RemoteVault":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def whoami(self) -> dict[str, Any]:
        """The principal and scope of this client's key."""
        return self._request("GET", "/v1/whoami")

    # -- writes ------------------------------------------------------------------------
    def add(self, text: str, *, kind: str = "note", user_id: str | None = None,
            agent_id: str | None = None, session_id: str | None = None,
            cube_id: str | None = None, metadata: Mapping[str, Any] | None = None,
            provenance: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
            event_time: Any = None, importance: float = 0.5, expires_at: Any = None,
            id: str | None = None, dedup: str = "off") -> MemoryItem:
        body = {k: v for k, v in locals().items() if k != "self" and v is not None}
        if dedup == "off":  # the server's default: a server without dedup still answers
            del body["dedup"]
        return MemoryItem.from_dict(self._request("POST", "/v1/memories", body=body))

    def add_messages(self, messages: Sequence[Mapping[str, Any]], *,
                     user_id: str | None = None, agent_id: str | None = None,
                     session_id: str | None = None, cube_id: str | None = None,
                     metadata: Mapping[str, Any] | None = None,
                     event_time: Any = None) -> list[MemoryItem]:
        body = {k: v for k, v in locals().items() if k != "self" and v is not None}
        return _item_list(self._request("POST", "/v1/messages", body=body)["items"])

    def add_many(self, records: Iterable[Record], *, batch_size: int = 256,
                 progress: Callable[[int], None] | None = None,
                 **defaults: Any) -> list[MemoryItem]:
        """Each ``batch_size`` records are one request and one transaction on the server
        (at most :data:`MAX_RECORDS`, the server's cap per request)."""
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
            raise InvalidInput("records must be a list of strings or objects", field="records")
        defaults = {k: v for k, v in defaults.items() if v is not None}
        sane = isinstance(batch_size, int) and not isinstance(batch_size, bool) and \
            0 < batch_size <= 10_000
        if sane:
            batch_size = min(batch_size, MAX_RECORDS)
        # a bad batch_size goes to the server as it is, which refuses it like the Vault does
        chunks = _batches(records, batch_size) if sane else iter([list(records)])
        out: list[MemoryItem] = []
        for chunk in chunks:
            body: dict[str, Any] = {"records": chunk, "batch_size": batch_size}
            if defaults:
                body["defaults"] = defaults
            items = _item_list(self._request("POST", "/v1/memories/batch", body=body)["items"])
            out += items
            if progress and items:
                progress(len(items))
        return out

    def update(self, id: str, text: str | None = None, *, kind: str | None = None,
               metadata: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
               event_time: Any = None, importance: float | None = None,
               expires_at: Any = None, reason: str | None = None) -> MemoryItem:
        body = {k: v for k, v in locals().items() if k not in ("self", "id") and v is not None}
        return MemoryItem.from_dict(self._request("PATCH", f"/v1/memories/{_seg(id)}",
                                                  body=body))

    def delete(self, id: str, *, reason: str | None = None) -> MemoryItem:
        return MemoryItem.from_dict(self._request("DELETE", f"/v1/memories/{_seg(id)}",
                                                  params={"reason": reason}))

    def restore(self, id: str) -> MemoryItem:
        return MemoryItem.from_dict(self._request("POST", f"/v1/memories/{_seg(id)}/restore"))

    def archive(self, id: str, *, reason: str | None = None) -> MemoryItem:
        return MemoryItem.from_dict(self._request("POST", f"/v1/memories/{_seg(id)}/archive",
                                                  body={"reason": reason}))

    def purge(self, id: str, *, reason: str | None = None) -> int:
        doc = self._request("POST", f"/v1/memories/{_seg(id)}/purge", body={"reason": reason})
        return int(doc["purged_versions"])

    def link(self, src: str, dst: str, *, kind: str = "related", weight: float = 1.0) -> None:
        self._request("POST", "/v1/links",
                      body={"src": src, "dst": dst, "kind": kind, "weight": weight})

    def unlink(self, src: str, dst: str, *, kind: str = "related") -> None:
        self._request("DELETE", "/v1/links", params={"src": src, "dst": dst, "kind": kind})

    def remember(self, messages: Sequence[Mapping[str, Any]], *, mode: str = "fast",
                 llm: Any = None, user_id: str | None = None, agent_id: str | None = None,
                 session_id: str | None = None, cube_id: str | None = None,
                 event_time: Any = None) -> "RememberResult":
        """:meth:`Vault.remember` on the server; ``fine`` uses the server's LLM (``llm``
        must be None: a client cannot pick the server's model). Without one the server
        answers ModelUnavailable."""
        _server_model(llm)
        body = {k: v for k, v in locals().items() if k not in ("self", "llm") and v is not None}
        return _remember_result(self._request("POST", "/v1/remember", body=body))

    def chat(self, query: str, *, llm: Any = None, user_id: str | None = None,
             agent_id: str | None = None, session_id: str | None = None,
             cube_id: str | None = None, k: int = 5, activation: Any = True,
             adapter: Any = None, remember: bool = False,
             max_tokens: int = 256) -> "ChatResult":
        """:meth:`Vault.chat` with the server's LLM, activation blocks and adapters
        (``llm`` must be None, ``adapter`` None (the scope's own) or False,
        ``activation`` True or False)."""
        _server_model(llm)
        if adapter is not None and adapter is not False:
            raise InvalidInput("a remote chat uses the server's adapters: adapter must be "
                               "None or False", field="adapter")
        if not isinstance(activation, bool):
            raise InvalidInput("a remote chat takes activation=True or False", field="activation")
        body = {k_: v for k_, v in locals().items()
                if k_ not in ("self", "llm", "adapter") and v is not None}
        body["adapter"] = adapter is None
        return _chat_result(self._request("POST", "/v1/chat", body=body))

    def release(self, id: str, *, reason: str | None = None,
                actor: str | None = None) -> MemoryItem:
        """Serve a quarantined memory of the key's own; the key's principal is the actor
        (``actor`` must be None)."""
        if actor is not None:
            raise InvalidInput("over REST the actor is the key's principal: actor must be "
                               "None", field="actor")
        return MemoryItem.from_dict(self._request("POST", f"/v1/memories/{_seg(id)}/release",
                                                  body={"reason": reason}))

    # -- sharing -----------------------------------------------------------------------
    def share(self, id: str | None = None, *, to: str, cube_id: str | None = None,
              everything: bool = False, write: bool = False, redact: Sequence[str] = (),
              valid_from: Any = None, valid_to: Any = None) -> Grant:
        """Share a memory (``id``), a cube or ``everything`` with ``to``."""
        body = {"to": to, "write": write,
                "redact": list(redact) if isinstance(redact, (list, tuple)) else redact,
                "valid_from": valid_from, "valid_to": valid_to}
        if id is not None:  # the item route's body names no other target
            if cube_id is not None or everything is not False:
                raise InvalidInput("share exactly one of: a memory id, a cube_id, everything")
        elif cube_id is not None or everything is not False:  # /v1/shares: one target
            body.update(cube_id=cube_id, everything=everything if everything else None)
        body = {k: v for k, v in body.items() if v is not None}
        path = f"/v1/memories/{_seg(id)}/shares" if id is not None else "/v1/shares"
        return Grant.from_dict(self._request("POST", path, body=body))

    def unshare(self, grant_id: str) -> Grant:
        if not isinstance(grant_id, str) or not grant_id or "/" in grant_id:
            raise InvalidInput(f"not a grant id: {grant_id!r}", field="grant_id")
        return Grant.from_dict(self._request("DELETE", f"/v1/shares/{quote(grant_id)}"))

    def grants(self, *, item_id: str | None = None, cube_id: str | None = None,
               include_revoked: bool = False) -> list[Grant]:
        doc = self._request("GET", "/v1/shares", params={
            "item_id": item_id, "cube_id": cube_id, "include_revoked": include_revoked})
        return [Grant.from_dict(g) for g in doc["grants"]]

    # -- reads -------------------------------------------------------------------------
    def get(self, id: str, *, as_of: Any = None, known_at: Any = None) -> MemoryItem:
        return MemoryItem.from_dict(self._request("GET", f"/v1/memories/{_seg(id)}",
                                                  params={"as_of": as_of,
                                                          "known_at": known_at}))

    def history(self, id: str, *, known_at: Any = None) -> list[MemoryItem]:
        doc = self._request("GET", f"/v1/memories/{_seg(id)}/history",
                            params={"known_at": known_at})
        return _item_list(doc["versions"])

    def list(self, *, user_id: str | None = None, agent_id: str | None = None,
             session_id: str | None = None, cube_id: str | None = None,
             filters: Mapping[str, Any] | None = None, status: Any = "active",
             as_of: Any = None, limit: int = 50, offset: int = 0,
             order: str = "created_desc", known_at: Any = None) -> Page:
        params = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id,
                  "cube_id": cube_id, "status": _status_param(status), "as_of": as_of,
                  "limit": limit, "offset": offset, "order": order, "known_at": known_at}
        if filters is not None:
            try:
                params["filters"] = json.dumps(_jsonable(filters))
            except (TypeError, ValueError):
                raise InvalidInput("filters must be a JSON object", field="filters") from None
        return _page(self._request("GET", "/v1/memories", params=params))

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               session_id: str | None = None, cube_id: str | None = None,
               filters: Mapping[str, Any] | None = None, k: int = 10, as_of: Any = None,
               status: Any = "active", known_at: Any = None) -> list[SearchHit]:
        body = {k_: v for k_, v in locals().items()
                if k_ not in ("self", "status") and v is not None}
        body["status"] = list(status) if isinstance(status, (tuple, set, frozenset)) else status
        return [_hit(h) for h in self._request("POST", "/v1/search", body=body)["hits"]]

    def quarantined(self, *, user_id: str | None = None, agent_id: str | None = None,
                    session_id: str | None = None, cube_id: str | None = None,
                    limit: int = 50, offset: int = 0) -> Page:
        """The key's own memories the injection guard held back, newest first."""
        params = {k: v for k, v in locals().items() if k != "self"}
        return _page(self._request("GET", "/v1/quarantine", params=params))

    def count(self, *, user_id: str | None = None, status: Any = "active") -> int:
        doc = self._request("GET", "/v1/count",
                            params={"user_id": user_id, "status": _status_param(status)})
        return int(doc["count"])

    def audit(self, *, item_id: str | None = None, action: str | None = None,
              after: int = 0, limit: int = 100) -> list[AuditEvent]:
        doc = self._request("GET", "/v1/audit", params={"item_id": item_id, "action": action,
                                                        "after": after, "limit": limit})
        return [_event(e) for e in doc["events"]]

    def export(self, *, history: bool = False) -> Iterator[MemoryItem]:
        """Every memory in scope, streamed (all statuses); with ``history`` every version."""
        if self._closed:
            raise StorageError("the remote vault is closed")
        try:
            with self._client.stream("GET", "/v1/export",
                                     params={"history": _param(bool(history))}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield MemoryItem.from_dict(json.loads(line))
        except httpx.HTTPError as exc:
            raise StorageError(f"export from {self.url} failed: {exc}",
                               reason="unreachable") from exc

    def check(self) -> dict[str, Any]:
        return self._request("GET", "/v1/check")


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _status_param(status: Any) -> Any:
    if status is None:
        return "any"
    if isinstance(status, (set, frozenset)):
        return sorted(status)
    return status


def _item_list(docs: Iterable[dict[str, Any]]) -> list[MemoryItem]:
    return [MemoryItem.from_dict(d) for d in docs]


def _page(doc: dict[str, Any]) -> Page:
    return Page(items=_item_list(doc["items"]), total=doc["total"], offset=doc["offset"],
                next_offset=doc["next_offset"])


def _hit(doc: dict[str, Any]) -> SearchHit:
    return SearchHit(item=MemoryItem.from_dict(doc["item"]), score=doc["score"],
                     rank=doc["rank"], sources=doc.get("sources") or {})


def _server_model(llm: Any) -> None:
    if llm is not None:
        raise InvalidInput("a remote vault uses the server's LLM: llm must be None",
                           field="llm")


def _maybe_item(doc: dict[str, Any] | None) -> MemoryItem | None:
    return MemoryItem.from_dict(doc) if doc is not None else None


def _remember_result(doc: dict[str, Any]) -> "RememberResult":
    """The ``RememberResult`` the server sent (see ``server.assist.remember_doc``)."""
    from .reader.decide import Decision
    from .reader.facts import Fact
    from .reader.pipeline import RememberResult

    decisions = [Decision(action=d["action"], fact=Fact(d["fact"], kind=d["kind"]),
                          target=_maybe_item(d["target"]), text=d["text"], reason=d["reason"],
                          decided_by=d["decided_by"], similarity=d["similarity"],
                          item=_maybe_item(d["item"]), error=d["error"])
                 for d in doc["decisions"]]
    return RememberResult(mode=doc["mode"], turns=_item_list(doc["turns"]),
                          decisions=decisions, methods=list(doc["methods"]))


def _chat_result(doc: dict[str, Any]) -> "ChatResult":
    from .chat import ChatResult

    return ChatResult(answer=doc["answer"], model=doc["model"],
                      memories=[_hit(h) for h in doc["memories"]], block=doc["block"],
                      block_items=list(doc["block_items"]),
                      cached_tokens=doc["cached_tokens"], prompt_tokens=doc["prompt_tokens"],
                      adapter=doc["adapter"], activation=doc["activation"],
                      remembered=list(doc["remembered"]))


def _event(doc: dict[str, Any]) -> AuditEvent:
    from ._time import parse_time

    return AuditEvent(seq=doc["seq"], at=parse_time(doc["at"], field="at"), actor=doc["actor"],
                      action=doc["action"], item_id=doc["item_id"], version=doc["version"],
                      details=doc.get("details") or {})


def _error(response: httpx.Response) -> MemvaultError:
    """The memvault exception an error response stands for."""
    try:
        doc = response.json()
        code, message = str(doc["code"]), str(doc["message"])
        details = doc.get("details") or {}
        if not isinstance(details, dict):
            details = {"details": details}
    except (ValueError, KeyError, TypeError):
        return RemoteError(f"HTTP {response.status_code}: {response.text[:200]}",
                           code="http_error", http_status=response.status_code)
    details = {k: v for k, v in details.items() if k not in ("message", "code", "http_status")}
    cls = _BY_CODE.get(code)
    if cls is None:
        return RemoteError(message, code=code, http_status=response.status_code, **details)
    return cls(message, **details)
