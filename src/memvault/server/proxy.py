"""The OpenAI-compatible memory proxy: ``POST /v1/chat/completions``.

An application that talks to an OpenAI-compatible endpoint gets memory by pointing its
client's ``base_url`` at memvault and using a memvault API key; nothing else changes:

1. the key's principal picks the scope (its ``user_id``, and ``agent_id`` if the key has
   one); the request's optional ``user`` field picks a sub-scope under it: memories
   with ``cube_id = user``. So one key per end user isolates users by key; one key for an
   application isolates the end users it names in ``user``. (``user`` is a label the key
   holder chooses, not a security boundary: a request without it sees all of the key's
   memories.)
2. the memories most relevant to the last user message (the caller's own, never ones
   shared with it) are put into one system message, inserted after the request's own
   leading system messages;
3. the request, otherwise unchanged, goes to the upstream endpoint (``memvault serve
   --proxy-to URL``, authenticated with the server's ``--llm-api-key``), or without one
   to the server's own LLM (``--llm local`` is the bundled SmolLM2);
4. the upstream answer is returned unchanged (bytes and status), streamed or not;
5. the exchange (last user message + answer) is stored with ``remember`` in fast mode, so
   the write adds no LLM call. It is written after the answer is sent, in two steps: the
   turns are stored and made searchable (by their whole text, dense and lexical), then
   their sentence vectors are embedded, one at a time, each once no request is in front.
   The next request of the same scope waits for the first step only (embedding its own
   query, then its own turn for its own write, meanwhile), so a user always sees their
   previous exchange (unless that request carries it in its own messages, as a
   conversation that goes on does, and then it does not wait at all), and a request that
   comes after the write is done pays nothing for it;
6. the search's ``read`` audit event (when the server audits reads) is committed after
   the answer, in the same transaction as the exchange it answered, or alone when nothing
   is stored (an upstream error, an unreachable upstream, a stream cut short); shutdown
   waits for it like for the write. So a read costs the request no commit of its own;
   the event's time is that of the write, moments after the read.

Upstream failures: an upstream error status is passed through as it came; an upstream
that cannot be reached is 502 ``model_error``. Bad requests are 422 ``invalid_input``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from ..errors import InvalidInput, MemvaultError, ModelError
from ..governance import ScopedVault
from ..types import SearchHit
from .runtime import _ERRORS, RT, SV, Runtime, _ok

__all__ = ["ProxyConfig", "proxy_router"]

log = logging.getLogger("memvault.server.proxy")

MAX_MESSAGES = 1024
MAX_QUERY_CHARS = 4000  # what retrieval reads of the last user message
MAX_STORED_CHARS = 60_000  # under the vault's text limit
#: How long a write's sentence vectors wait for requests in flight to finish searching
#: before they are embedded anyway (a steady stream of requests must not starve them).
YIELD_S = 0.25
#: Sentence vectors embedded per worker call: between calls the write yields again to
#: requests in front, so one that arrives meanwhile competes with one sentence at most.
SENTENCE_STEP = 1
#: How long the upstream must take before the user's turn is embedded while it answers.
AHEAD_AFTER_S = 0.05
_HEADER = ("Memories from earlier conversations with this user (use them when they help; "
           "they may be out of date):")


class ProxyConfig:
    """Where the proxy forwards (``upstream``: an OpenAI-compatible base URL ending in
    ``/v1``, or None for the server's own LLM), how many memories it injects (``k``) and
    how it remembers (``mode``: ``fast`` adds no LLM call to the write)."""

    def __init__(self, upstream: str | None = None, *, api_key: str | None = None,
                 timeout: float = 60.0, k: int = 5, mode: str = "fast") -> None:
        if upstream is not None and not upstream.startswith(("http://", "https://")):
            raise InvalidInput(f"--proxy-to must be an http(s) URL, not {upstream!r}",
                               field="proxy_to")
        if not 1 <= k <= 50 or timeout <= 0 or mode not in ("fast", "fine"):
            raise InvalidInput("proxy: k in 1..50, timeout > 0, mode fast or fine")
        self.upstream = upstream.rstrip("/") if upstream else None
        self.api_key, self.timeout, self.k, self.mode = api_key, timeout, k, mode
        self._client: Any = None
        #: scope -> its write in flight: done once the exchange is searchable, the whole
        #: write (sentence vectors too), and the turns it writes
        self._pending: dict[tuple[Any, ...], tuple[asyncio.Future[None], asyncio.Task[None],
                                                   list[dict[str, str]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # every write not finished yet
        self._front = 0  # requests not done searching, and writes not yet searchable
        self._calm: asyncio.Event | None = None  # set while there are none
        self._searches = 0  # requests running their search (not waiting before it)
        self._no_search: asyncio.Event | None = None  # set while there are none

    def client(self) -> Any:
        """One pooled HTTP client per server (created in the server's event loop)."""
        if self._client is None:
            import httpx

            headers = {"Accept-Encoding": "identity"}  # relay bytes as the upstream sent them
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._client = httpx.AsyncClient(timeout=self.timeout, headers=headers,
                                             limits=httpx.Limits(max_keepalive_connections=32))
        return self._client

    async def aclose(self) -> None:
        """Finish every write in flight (no exchange is lost at shutdown), then the client."""
        while pending := [t for t in self._tasks if not t.done()]:  # writes may chain
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- read-your-writes per scope ---------------------------------------------------------
    def _event(self) -> asyncio.Event:
        if self._calm is None:
            self._calm = asyncio.Event()
            self._calm.set()
        return self._calm

    def _searching_event(self) -> asyncio.Event:
        if self._no_search is None:
            self._no_search = asyncio.Event()
            self._no_search.set()
        return self._no_search

    @contextlib.asynccontextmanager
    async def searching(self) -> AsyncIterator[None]:
        """Mark a request's search: a write's first step pauses between its two embedding
        calls until no search runs (see ``later``)."""
        idle = self._searching_event()
        self._searches += 1
        idle.clear()
        try:
            yield
        finally:
            self._searches -= 1
            if not self._searches:
                idle.set()

    @staticmethod
    async def _wait(event: asyncio.Event) -> None:
        """Until ``event`` is set, or ``YIELD_S`` at most (a steady stream of requests
        must not starve the writes)."""
        try:
            await asyncio.wait_for(event.wait(), YIELD_S)
        except asyncio.TimeoutError:
            pass

    @contextlib.asynccontextmanager
    async def in_front(self) -> AsyncIterator[None]:
        """Mark work that a request is or may be waiting for (a request until its search
        is done; the searchable half of a write): the writes' deferred half (sentence
        vectors) waits for it to finish (see ``later``)."""
        calm = self._event()
        self._front += 1
        calm.clear()
        try:
            yield
        finally:
            self._front -= 1
            if not self._front:
                calm.set()

    async def settle(self, scope: tuple[Any, ...], messages: list[dict[str, Any]] | None = None,
                     ahead: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Wait until the scope's write in flight is searchable, unless the request already
        carries what it writes: a conversation that goes on sends its history back, so its
        last exchange is in the prompt and the search need not wait to find it.
        ``ahead``: work the search will need anyway (embedding its query), run meanwhile."""
        entry = self._pending.get(scope)
        if entry is None:
            return
        visible, _, turns = entry
        if visible.done() or (messages is not None and turns and _carries(messages, turns)):
            return
        waits: list[Any] = [asyncio.shield(visible)]
        if ahead is not None:
            waits.append(ahead())
        await asyncio.gather(*waits, return_exceptions=True)  # the search reports bad input

    def waiting(self, scope: tuple[Any, ...]) -> bool:
        """Whether the scope has a write in flight that is not searchable yet."""
        entry = self._pending.get(scope)
        return entry is not None and not entry[0].done()

    def later(self, scope: tuple[Any, ...], rt: Runtime, sv: ScopedVault,
              turns: list[dict[str, str]], sub: Mapping[str, str],
              ahead: _Ahead | None = None, reads: Sequence[Any] = ()) -> None:
        """Write the exchange after the answer is out, in two steps. First the turns are
        stored and made searchable (by their whole text, dense and lexical), which is what
        the scope's next request waits for; then, once no request is searching and no
        write is in its first step (or after ``YIELD_S``), their sentence vectors, one at a
        time (waiting so again before each): the costly half, which only refines ranking,
        so it neither holds up nor competes for long with what a request is waiting for.
        ``reads``: the request's read events, committed in the first step's transaction
        (alone when there are no turns)."""
        if not turns:
            if reads or ahead is not None:
                self._spawn(self._record(rt, sv, reads, ahead))
            return
        previous = self._pending[scope][0] if scope in self._pending else None
        visible: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def store() -> None:  # one worker call: no search can slip in between
            with sv.vault.noting(reads):
                sv.remember(turns, mode=self.mode, **sub)
            sv.vault.prepare(defer_sentences=True)

        async def write() -> None:
            try:
                if previous is not None:  # the scope's writes land in order
                    await asyncio.gather(asyncio.shield(previous), return_exceptions=True)
                try:
                    async with self.in_front():
                        # the user's turn first, in a call of its own (embedded during the
                        # upstream's answer if that took long), then, once no search is
                        # running, the rest: a search that came meanwhile is not slowed by
                        # the whole write at once
                        if ahead is None or not await ahead.settle():
                            if turns[0]["role"] == "user" and len(turns) > 1:
                                await rt.run(sv.vault.embed_ahead, messages=turns[:1])
                                await self._wait(self._searching_event())
                        await rt.run(store)
                except MemvaultError as exc:  # the answer is already out: log, do not raise
                    log.warning("proxy: remembering the exchange failed: %s", exc)
                finally:
                    if not visible.done():
                        visible.set_result(None)
                try:  # a sentence at a time, each once nothing is in front (see later)
                    while True:
                        await self._wait(self._event())
                        if not await rt.run(sv.vault.index_sentences, SENTENCE_STEP):
                            break
                except MemvaultError as exc:
                    log.warning("proxy: indexing the exchange's sentences failed: %s", exc)
            finally:
                if not visible.done():  # cancelled before the write: nobody waits forever
                    visible.set_result(None)
                if scope in self._pending and self._pending[scope][1] is task:
                    del self._pending[scope]

        task = self._spawn(write())
        self._pending[scope] = (visible, task, turns)

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        """A write task that ``aclose`` waits for."""
        task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _record(rt: Runtime, sv: ScopedVault, reads: Sequence[Any],
                      ahead: _Ahead | None) -> None:
        """The read events of a request that stored nothing, committed alone."""
        if ahead is not None:
            await ahead.settle()  # not started: cancelled; nothing will take its vector
        if not reads:
            return
        try:
            await rt.run(_commit, sv.vault, reads)
        except MemvaultError as exc:
            log.warning("proxy: recording the request's read failed: %s", exc)


def proxy_router(config: ProxyConfig) -> APIRouter:
    r = APIRouter(prefix="/v1", responses=_ERRORS, tags=["proxy"])

    @r.post("/chat/completions", summary="OpenAI-compatible chat completions with the "
                                         "caller's memories (streaming and not)")
    async def chat_completions(request: Request, sv: SV, rt: RT) -> Response:
        doc = _body(await request.body())
        messages = doc["messages"]
        sub = {"cube_id": doc["user"]} if doc.get("user") else {}
        p = sv.principal
        scope = (p.user_id, p.agent_id, sub.get("cube_id"))
        query = _last_user_text(messages)
        hits: list[SearchHit] = []
        # the search's read event is committed with the exchange, after the answer is out
        # (in the write's own transaction): no commit of its own in the request's time
        reads: list[Any] = []
        sv.held_reads = reads
        finished = False

        def remember(answer: str | None) -> None:
            """Once per request: the exchange (``answer`` None: the upstream gave none)
            and the read events, written after the answer."""
            nonlocal finished
            if finished:
                return
            finished = True
            turns = list(asked) if answer is not None else []
            if answer is not None and answer.strip():
                turns.append({"role": "assistant", "content": answer[:MAX_STORED_CHARS]})
            config.later(scope, rt, sv, turns, sub, ahead, reads)

        asked = [{"role": "user", "content": query[:MAX_STORED_CHARS]}] if query.strip() else []
        # the user's turn, embedded for the write in time this request has idle
        ahead = _Ahead(rt.run, sv.vault.embed_ahead, messages=asked) if asked else None

        async def meanwhile() -> None:  # while the previous write becomes searchable
            await rt.run(sv.vault.embed_ahead, query[:MAX_QUERY_CHARS])  # the search's
            if ahead is not None and config.waiting(scope):
                ahead.now()  # the wait goes on: the write's too

        try:
            async with config.in_front():
                await config.settle(scope, messages, meanwhile if asked else None)
                if asked:
                    async with config.searching():
                        hits = await rt.run(sv.search, query[:MAX_QUERY_CHARS], k=config.k,
                                            user_id=p.user_id, **sub)
            forwarded = {**doc, "messages": inject(messages, hits)}
            if ahead is not None:
                ahead.after(AHEAD_AFTER_S)  # during a slow upstream's answer
            if config.upstream is None:
                return await _local(rt, forwarded, remember)
            return await _forward(config, forwarded, remember)
        except BaseException:
            remember(None)  # the reads that were made are still recorded
            raise

    return r


class _Ahead:
    """The user's turn embedded for the write ahead of it, in time the request has idle:
    while it waits for the scope's previous write to be searchable (read-your-writes),
    once its own query is embedded (``now``); or once the upstream has taken
    ``AHEAD_AFTER_S`` to answer (``after``): a model generating an answer leaves hundreds
    of milliseconds idle, which it fills. A fast upstream answers first, and then nothing
    was added to the request's own time (on a loaded machine doing it beside the search
    cost more than the write saved: measured with ``bench_proxy_ab.py``)."""

    def __init__(self, run: Callable[..., Awaitable[Any]], fn: Callable[..., Any],
                 **kwargs: Any) -> None:
        self._work = lambda: run(fn, **kwargs)
        self._task: asyncio.Future[None] | None = None
        self._started = False

    def now(self) -> None:
        """Start it now, unless it has started."""
        if not self._started:
            if self._task is not None:
                self._task.cancel()
            self._task = self._go(0.0)

    def after(self, delay: float) -> None:
        """Start it in ``delay`` seconds, unless it is already due."""
        if self._task is None:
            self._task = self._go(delay)

    def _go(self, delay: float) -> asyncio.Future[None]:
        async def go() -> None:
            if delay:
                await asyncio.sleep(delay)
            self._started = True
            await self._work()

        task = asyncio.ensure_future(go())
        # its failure is nobody's to report: the write embeds what is missing
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def settle(self) -> bool:
        """Cancel it if it has not started, else wait for it (never do the work twice);
        True if it was done."""
        task = self._task
        if task is None:
            return False
        if not self._started:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return self._started and not task.cancelled() and task.exception() is None


def _commit(vault: Any, events: Sequence[Any]) -> None:
    with vault.noting(events):
        pass  # no write in the block: the events are committed alone


# -- the request ------------------------------------------------------------------------------
def _body(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the body must be a JSON object")
    messages = doc.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise InvalidInput(f"messages must be a list of 1..{MAX_MESSAGES} messages",
                           field="messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise InvalidInput(f"messages[{i}] must be an object with a role", field="messages")
    if not isinstance(doc.get("model"), str) or not doc["model"]:
        raise InvalidInput("model must be a non-empty string", field="model")
    user = doc.get("user")
    if user is not None and (not isinstance(user, str) or not 0 < len(user) <= 256
                             or "\x00" in user):
        raise InvalidInput("user must be a string of 1..256 characters", field="user")
    if "stream" in doc and not isinstance(doc["stream"], bool):
        raise InvalidInput("stream must be true or false", field="stream")
    return doc


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _carries(messages: list[dict[str, Any]], turns: list[dict[str, str]]) -> bool:
    """Every turn of ``turns`` is among ``messages`` (same role, same text as stored)."""
    held = {(m.get("role"), _text(m.get("content"))[:MAX_STORED_CHARS].strip())
            for m in messages}
    return all((t["role"], t["content"].strip()) in held for t in turns)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return _text(msg.get("content"))
    return ""


def inject(messages: list[dict[str, Any]], hits: list[SearchHit]) -> list[dict[str, Any]]:
    """``messages`` with one system message of memories after the leading system (or
    developer) messages; unchanged when nothing was found."""
    if not hits:
        return messages
    lines = []
    for hit in hits:
        when = hit.item.event_time or hit.item.created_at
        stamp = f"({when.date().isoformat()}) " if when else ""
        lines.append(f"- {stamp}{' '.join(hit.item.text.split())}")
    note = {"role": "system", "content": _HEADER + "\n" + "\n".join(lines)}
    at = 0
    while at < len(messages) and messages[at].get("role") in ("system", "developer"):
        at += 1
    return messages[:at] + [note] + messages[at:]


# -- upstream ---------------------------------------------------------------------------------
async def _forward(config: ProxyConfig, doc: dict[str, Any], remember: Any) -> Response:
    import httpx

    client = config.client()
    url = f"{config.upstream}/chat/completions"
    try:
        if not doc.get("stream"):
            resp = await client.post(url, json=doc)
        else:
            resp = await client.send(client.build_request("POST", url, json=doc), stream=True)
    except httpx.HTTPError as exc:
        raise ModelError(f"the upstream at {config.upstream} failed: {exc}") from exc
    media = resp.headers.get("content-type", "application/json")
    if not doc.get("stream") or resp.status_code != 200:
        body = await resp.aread()
        await resp.aclose()
        remember(_answer(body) if resp.status_code == 200 else None)
        return Response(content=body, status_code=resp.status_code, media_type=media)

    async def relay() -> AsyncIterator[bytes]:
        reader = _SSE()
        try:
            async for chunk in resp.aiter_raw():
                yield chunk
                reader.feed(chunk)
        finally:  # remembered first: a cancelled relay may not get past an await
            remember(reader.text() if reader.done else None)
            await resp.aclose()
    return _Relay(relay(), resp, remember, status_code=200, media_type=media)


class _Relay(StreamingResponse):
    """A relayed stream that closes the upstream response and records the request even
    when its body was never started (the client left before the first byte)."""

    def __init__(self, body: AsyncIterator[bytes], upstream: Any,
                 remember: Callable[[str | None], None], **kwargs: Any) -> None:
        super().__init__(body, **kwargs)
        self._upstream, self._remember = upstream, remember

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._remember(None)  # a no-op once the relay has remembered the exchange
            await self._upstream.aclose()


def _answer(body: bytes) -> str:
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


class _SSE:
    """Collects the content deltas of an OpenAI event stream as it passes by (bounded)."""

    def __init__(self) -> None:
        self._buf = b""
        self._parts: list[str] = []
        self._size = 0
        self.done = False

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        if len(self._buf) > 1_000_000:  # a line that never ends is not an event stream
            self._buf = b""
        for line in lines:
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                self.done = True
                continue
            try:
                delta = json.loads(data)["choices"][0]["delta"].get("content")
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue
            if isinstance(delta, str) and self._size < MAX_STORED_CHARS:
                self._parts.append(delta)
                self._size += len(delta)

    def text(self) -> str:
        return "".join(self._parts)


# -- the server's own model -------------------------------------------------------------------
async def _local(rt: Runtime, doc: dict[str, Any], remember: Any) -> Response:
    rt.llm.require("/v1/chat/completions without --proxy-to")
    max_tokens = doc.get("max_completion_tokens") or doc.get("max_tokens") or 256
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or \
            not 1 <= max_tokens <= 4096:
        raise InvalidInput("max_tokens must be an integer in 1..4096", field="max_tokens")
    messages = [{"role": m["role"] if m["role"] in ("system", "user", "assistant") else "system",
                 "content": _text(m.get("content"))} for m in doc["messages"]]
    llm = await rt.model_pool.run(rt.llm.get)
    answer = await rt.model_pool.run(llm.complete, messages, max_tokens=max_tokens)
    remember(answer)
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    model = doc["model"]
    if not doc.get("stream"):
        return _ok({"id": ident, "object": "chat.completion", "created": created,
                    "model": model, "system_fingerprint": llm.id,
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                 "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})

    def event(delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + json.dumps({
            "id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"

    async def events() -> AsyncIterator[str]:
        yield event({"role": "assistant", "content": answer})
        yield event({}, "stop")
        yield "data: [DONE]\n\n"
    return StreamingResponse(events(), media_type="text/event-stream")
