"""Any OpenAI-compatible chat endpoint as an :class:`~memvault.models.llm.LLM`.

Ollama, vLLM, the llama.cpp server and OpenAI itself all speak ``POST
{base_url}/chat/completions``. This adapter is deliberately small: one request per
``complete`` call, retried with exponential backoff on what is usually transient (HTTP 429
and 5xx, timeouts, refused or dropped connections), and everything else reported as
:class:`~memvault.errors.ModelError` at once. With ``json_schema`` it sends
``response_format={"type": "json_schema", ...}`` (structured output where the server
supports it); the caller still validates the reply, because many servers ignore it.

An ``httpx`` transport can be passed in (``httpx.MockTransport``, a proxy transport, a
Unix-socket transport), which is also how tests could avoid the network entirely; ours use
the real loopback server in :mod:`memvault.models.scripted` instead.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..errors import ConfigurationError, ModelError
from .llm import Message

if TYPE_CHECKING:
    import httpx

__all__ = ["OpenAIChatLLM", "RETRY_STATUSES"]

#: HTTP statuses worth retrying: rate limits and server-side trouble.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 30.0  # never sleep longer than this on a server's Retry-After


class OpenAIChatLLM:
    """Chat completions over HTTP.

    ``retries`` is the number of extra attempts after the first (so ``retries=2`` means at
    most three requests); the n-th retry waits ``backoff * 2**(n-1)`` seconds, or the
    server's ``Retry-After`` when it sends a short one. ``timeout`` bounds each attempt.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 timeout: float = 60.0, retries: int = 2, backoff: float = 0.5,
                 transport: "httpx.BaseTransport | None" = None,
                 headers: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        try:
            import httpx
        except ImportError as exc:  # the `client` extra
            raise ConfigurationError("an HTTP LLM needs httpx: pip install 'memvault[client]'"
                                     ) from exc
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"LLM base_url must be an http(s) URL, got {base_url!r}")
        if not model:
            raise ConfigurationError("an HTTP LLM needs a model name")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ConfigurationError("retries >= 0, timeout > 0 and backoff >= 0 are required")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.id = f"openai:{model}@{self.base_url}"
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            hdrs["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(timeout=timeout, transport=transport, headers=hdrs)
        self._httpx = httpx

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "OpenAIChatLLM":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the LLM contract ----------------------------------------------------------------
    def complete(self, messages: Sequence[Message], *, max_tokens: int = 256,
                 temperature: float = 0.0,
                 json_schema: Mapping[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"model": self.model,
                                "messages": [{"role": m["role"], "content": m["content"]}
                                             for m in messages],
                                "max_tokens": max_tokens, "temperature": temperature}
        if json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "reply", "schema": dict(json_schema), "strict": True}}
        data = self._post("/chat/completions", body)
        return _content(data)

    # -- transport -----------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> Any:
        httpx = self._httpx
        url = self.base_url + path
        last: str = "no attempt made"
        last_response: "httpx.Response | None" = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, last_response))
            last_response = None
            try:
                response = self._client.post(url, json=body)
            except httpx.TimeoutException as exc:
                last = f"timed out ({type(exc).__name__})"
                continue
            except httpx.TransportError as exc:  # refused, reset, DNS: maybe transient
                last = f"transport error: {exc}"
                continue
            except httpx.HTTPError as exc:
                raise ModelError(f"LLM request to {url} failed: {exc}") from exc
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code}: {_snippet(response.text)}"
                last_response = response
                continue
            if response.status_code >= 400:
                raise ModelError(f"LLM at {url} refused the request: HTTP "
                                 f"{response.status_code}: {_snippet(response.text)}",
                                 status=response.status_code)
            try:
                return response.json()
            except ValueError as exc:
                raise ModelError(f"LLM at {url} sent a body that is not JSON: "
                                 f"{_snippet(response.text)}") from exc
        raise ModelError(f"LLM at {url} failed after {self.retries + 1} attempt(s): {last}",
                         attempts=self.retries + 1)

    def _delay(self, attempt: int, response: "httpx.Response | None") -> float:
        delay = self.backoff * (2 ** (attempt - 1))
        if response is not None:
            try:
                retry_after = float(response.headers.get("retry-after", ""))
            except ValueError:
                retry_after = -1.0
            if 0 <= retry_after <= _MAX_RETRY_AFTER:
                delay = retry_after
        return delay


def _content(data: Any) -> str:
    """The first choice's message text; anything else in its place is a ModelError."""
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelError(f"LLM reply has no choices[0].message.content: "
                         f"{_snippet(json.dumps(data, default=str))}") from exc
    if content is None:  # e.g. a refusal or a tool call
        return ""
    if not isinstance(content, str):
        raise ModelError(f"LLM reply content is {type(content).__name__}, not text")
    return content


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
