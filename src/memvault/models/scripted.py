"""A scripted OpenAI-compatible server on 127.0.0.1, for deterministic tests and demos.

Real HTTP, real sockets, a real ``/v1/chat/completions`` protocol (``"stream": true``
answers with OpenAI's server-sent events), but the replies come
from a script instead of a model: a queue of :class:`Reply` objects (or plain strings),
or a function of the request body. A reply can be delayed (to provoke client timeouts),
be an HTTP error (429, 500, ...), or be a raw body (malformed JSON), so every failure
path of :class:`~memvault.models.openai_http.OpenAIChatLLM` and of the reader can be
exercised without a model. It ships in the package, like ``httpx.MockTransport``, so
applications can test their own memvault integrations the same way.

    with ScriptedLLMServer(['{"action": "NOOP"}']) as server:
        llm = server.llm()            # an OpenAIChatLLM pointed at the server
        llm.complete([{"role": "user", "content": "hi"}])
        server.requests[0]["messages"]  # what the client sent
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping

__all__ = ["ScriptedLLMServer", "Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer.

    ``content`` becomes ``choices[0].message.content`` of a normal completion. ``status``
    other than 200 sends an OpenAI-style error body instead. ``raw`` replaces the whole
    body verbatim (malformed JSON, truncated responses). ``delay`` seconds pass before
    anything is sent. ``headers`` are added to the response (e.g. ``Retry-After``).
    """

    content: str | None = ""
    status: int = 200
    delay: float = 0.0
    raw: str | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, status: int, message: str = "scripted error", **kw: Any) -> "Reply":
        return cls(content=message, status=status, **kw)

    @classmethod
    def malformed(cls, body: str = '{"choices": [{"message": {"content": ') -> "Reply":
        return cls(raw=body)

    @classmethod
    def slow(cls, delay: float, content: str = "") -> "Reply":
        return cls(content=content, delay=delay)


Script = Iterable["Reply | str"] | Callable[[dict[str, Any]], "Reply | str"]


class ScriptedLLMServer:
    """Serve ``script`` on ``http://127.0.0.1:<port>/v1`` from a background thread.

    With a queue, each request consumes one reply; when the queue is empty ``default`` is
    used, or (``default=None``) the server answers HTTP 500 "script exhausted", which a
    test notices. Every request body is recorded in :attr:`requests` (in arrival order).
    """

    def __init__(self, script: Script = (), *, default: "Reply | str | None" = None,
                 model: str = "scripted") -> None:
        self._fn = script if callable(script) else None
        self._queue: deque[Reply | str] = deque() if callable(script) else deque(script)
        self.default = default
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- script ----------------------------------------------------------------------------
    def push(self, *replies: "Reply | str") -> None:
        """Append replies to the queue (while the server runs, too)."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            if self._fn is not None:
                reply: Reply | str | None = None
                fn = self._fn
            else:
                fn = None
                reply = self._queue.popleft() if self._queue else self.default
        if fn is not None:
            reply = fn(body)
        if reply is None:
            return Reply.error(500, "script exhausted")
        return Reply(content=reply) if isinstance(reply, str) else reply

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ScriptedLLMServer":
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True  # a delayed reply never blocks shutdown
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "ScriptedLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the scripted server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def llm(self, **kwargs: Any) -> Any:
        """An :class:`OpenAIChatLLM` talking to this server (kwargs: timeout, retries...)."""
        from .openai_http import OpenAIChatLLM

        kwargs.setdefault("backoff", 0.0)
        return OpenAIChatLLM(self.base_url, self.model, **kwargs)


class _Handler(BaseHTTPRequestHandler):
    server_ref: ScriptedLLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "request body is not JSON"}})
            return
        reply = self.server_ref._next(body if isinstance(body, dict) else {"body": body})
        if reply.delay:
            time.sleep(reply.delay)
        if reply.raw is not None:
            raw = reply.raw.encode() if isinstance(reply.raw, str) else reply.raw
            self._send(reply.status, raw, reply.headers)
        elif reply.status != 200:
            self._send(reply.status, {"error": {"message": reply.content,
                                                "type": "scripted"}}, reply.headers)
        elif body.get("stream") is True:
            self._stream(body, reply)
        else:
            self._send(200, {
                "id": f"chatcmpl-{len(self.server_ref.requests)}", "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model", self.server_ref.model),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply.content}}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }, reply.headers)

    def _stream(self, body: dict[str, Any], reply: Reply) -> None:
        """The reply as OpenAI's server-sent events: a role chunk, the content in a few
        pieces, a finish chunk, a usage chunk if asked for, then ``[DONE]``."""
        ident = f"chatcmpl-{len(self.server_ref.requests)}"
        model = body.get("model", self.server_ref.model)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            doc = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": model, "choices": [{"index": 0, "delta": delta,
                                                "finish_reason": finish}], **extra}
            return b"data: " + json.dumps(doc).encode() + b"\n\n"

        text = reply.content or ""
        words = text.split(" ")
        pieces = [" ".join(words[i:i + 3]) + (" " if i + 3 < len(words) else "")
                  for i in range(0, len(words), 3)] if text else []
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(b"data: " + json.dumps({
                "id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model, "choices": [], "usage": {"prompt_tokens": 0,
                                                         "completion_tokens": len(pieces),
                                                         "total_tokens": len(pieces)}}
            ).encode() + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")  # the body ends when the socket does
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            for event in events:
                self.wfile.write(event)
                self.wfile.flush()
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass
