"""The outermost ASGI layer of the REST server: the request-size limit and per-route
request statistics (count, errors, latency percentiles over a sliding window)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from typing import Any, Awaitable, Callable

__all__ = ["Metrics", "Edge"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class _Route:
    __slots__ = ("count", "client_errors", "server_errors", "window")

    def __init__(self, window: int) -> None:
        self.count = 0
        self.client_errors = 0
        self.server_errors = 0
        self.window: deque[float] = deque(maxlen=window)


class Metrics:
    """Thread-safe request statistics, keyed by ``"METHOD /route/{template}"``."""

    def __init__(self, window: int = 4096) -> None:
        self.started = time.time()
        self._window = window
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            stats = self._routes.get(route)
            if stats is None:
                stats = self._routes[route] = _Route(self._window)
            stats.count += 1
            if 400 <= status < 500:
                stats.client_errors += 1
            elif status >= 500:
                stats.server_errors += 1
            stats.window.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            routes = {name: (r.count, r.client_errors, r.server_errors, sorted(r.window))
                      for name, r in self._routes.items()}
        out: dict[str, Any] = {}
        for name, (count, client, server, ordered) in sorted(routes.items()):
            out[name] = {"count": count, "client_errors": client, "server_errors": server}
            if ordered:
                out[name].update({f"p{int(q * 100)}_ms": round(_percentile(ordered, q) * 1e3, 3)
                                  for q in (0.5, 0.95, 0.99)})
        return {"uptime_s": round(time.time() - self.started, 3),
                "requests": sum(r[0] for r in routes.values()), "routes": out}


def _route_name(scope: Scope) -> str:
    """``"METHOD /template"`` of the route that served the request; ``"unmatched"`` when
    none did (unknown path, wrong method, refused before routing), so that clients
    cannot grow the table with made-up paths or methods."""
    route = scope.get("route")
    path, methods = getattr(route, "path", None), getattr(route, "methods", None)
    if path and methods and scope["method"] in methods:
        return f"{scope['method']} {path}"
    return "unmatched"


class Edge:
    """Refuses bodies over ``max_body_bytes`` with 413 before the app reads them, and
    times every HTTP request by the route template it matched."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, max_body_bytes: int,
                 metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await self._too_large(timed_send)
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # after the body: wait for the disconnect

            await self.app(scope, replay, timed_send)
        finally:
            self.metrics.observe(_route_name(scope), status, time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` if it is larger than allowed."""
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None
                except ValueError:
                    pass  # the server rejects a malformed length before we see it
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnected
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"code": "payload_too_large",
                           "message": f"the request body is larger than "
                                      f"{self.max_body_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
