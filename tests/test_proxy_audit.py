"""The memory proxy's read audit, through the official ``openai`` client: every proxied
search leaves its ``read`` event, committed after the answer in the same transaction as
the exchange it answered (no commit of its own while the caller waits), alone when
nothing is stored (an upstream error), and before the server finishes shutting down."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Iterator

import httpx
import openai
import pytest

from memvault import Vault
from memvault.governance import KeyStore
from memvault.models.scripted import Reply, ScriptedLLMServer
from memvault.server.app import create_app
from memvault.server.proxy import ProxyConfig
from memvault.server.serve import BackgroundServer
from memvault.storage.base import AuditOp
from memvault.errors import InvalidInput
from waiting import eventually


class Env:
    def __init__(self, tmp: Path, upstream: str | None = None) -> None:
        self.upstream = ScriptedLLMServer(default="Noted.").start()
        self.vault = Vault(tmp / "vault.db", embedder="hash")
        self.keys = KeyStore.for_vault(tmp / "vault.db")
        self.alice = self.keys.create("alice-app", "alice")
        proxy = ProxyConfig(upstream or self.upstream.base_url, api_key="sk-up")
        self.server = BackgroundServer(create_app(self.vault, self.keys, proxy=proxy)).start()

    def ask(self, text: str, **kw: Any) -> str:
        client = openai.OpenAI(base_url=self.server.url + "/v1", api_key=self.alice,
                               max_retries=0)
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": text}], **kw)
        if kw.get("stream"):
            return "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
        return reply.choices[0].message.content or ""

    def reads(self) -> list[Any]:
        return self.vault.audit(action="read", limit=100)

    def close(self) -> None:
        self.server.stop()
        self.upstream.stop()
        self.keys.close()
        self.vault.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()



@pytest.mark.parametrize("stream", [False, True])
def test_a_proxied_read_is_recorded_with_the_exchange_it_answered(env: Env,
                                                                  stream: bool) -> None:
    env.ask("My sister Ines lives in Lisbon.", stream=stream)
    eventually(lambda: env.vault.count(user_id="alice") == 2)
    assert env.ask("Where does my sister live?", stream=stream) == "Noted."
    eventually(lambda: env.vault.count(user_id="alice") == 4)
    first, second = env.reads()  # one read per proxied request, each on record
    assert (second.actor, second.details["op"]) == ("alice-app", "search")
    injected = env.upstream.requests[-1]["messages"][0]["content"]
    found = [env.vault.get(i).text for i in second.details["ids"]]
    assert second.details["n"] == len(found) >= 1 and "My sister Ines lives in Lisbon." in found
    assert all(text in injected for text in found)  # what was read is what was sent on
    assert first.details["n"] == 0  # the first search found nothing: logged all the same
    # committed in the transaction that stored the exchange it answered, not on its own
    events = env.vault.audit(after=second.seq - 1, limit=10)
    assert [e.action for e in events[:3]] == ["read", "add", "add"]
    stored = {e.item_id for e in events[1:3]}
    assert {env.vault.get(i).text for i in stored} == {"Where does my sister live?", "Noted."}
    assert {e.at for e in events[:3]} == {second.at}


def test_a_read_is_recorded_when_the_upstream_fails(env: Env) -> None:
    env.ask("I collect stamps.")
    eventually(lambda: env.vault.count(user_id="alice") == 2)
    env.upstream.push(Reply.error(500, "upstream broke"))
    with pytest.raises(openai.InternalServerError):
        env.ask("What do I collect?")
    eventually(lambda: len(env.reads()) == 2)
    failed = env.reads()[-1]
    assert failed.details["n"] >= 1 and failed.actor == "alice-app"
    assert env.vault.count(user_id="alice") == 2  # the failed exchange is not stored


def test_a_read_is_recorded_when_the_upstreams_stream_is_cut_short(env: Env) -> None:
    env.ask("I collect stamps.")
    eventually(lambda: env.vault.count(user_id="alice") == 2)
    env.upstream.push(Reply.malformed(  # one event, then the stream ends without [DONE]
        'data: {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", '
        '"choices": [{"index": 0, "delta": {"content": "You coll"}, "finish_reason": null}]}'
        '\n\n'))
    try:
        env.ask("What do I collect?", stream=True)
    except openai.APIError:
        pass  # however the client takes a stream that stops: the read is what matters
    eventually(lambda: len(env.reads()) == 2)
    assert env.reads()[-1].details["n"] >= 1
    assert env.vault.count(user_id="alice") == 2  # a cut answer is not remembered


def test_a_read_is_recorded_when_the_upstream_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    e = Env(tmp_path, upstream=dead)
    try:
        e.vault.add("alice likes sailing", user_id="alice")
        r = httpx.post(e.server.url + "/v1/chat/completions",
                       json={"model": "m", "messages": [{"role": "user",
                                                         "content": "What do I like?"}]},
                       headers={"Authorization": f"Bearer {e.alice}"}, timeout=30)
        assert r.status_code == 502 and r.json()["code"] == "model_error"
        eventually(lambda: len(e.reads()) == 1)
        assert e.reads()[0].details["n"] == 1
    finally:
        e.close()


def test_reads_are_on_record_once_the_server_has_stopped(tmp_path: Path) -> None:
    e = Env(tmp_path)
    try:
        for i in range(3):
            e.ask(f"Fact number {i}: the boat is called Wave {i}.")
        e.server.stop()  # right after the last answer: its write may still be in flight
        assert len(e.reads()) == 3
        assert e.vault.count(user_id="alice") == 6
    finally:
        e.close()


# -- the vault's side: events committed with the next write ---------------------------------
def _read(note: str) -> AuditOp:
    return AuditOp("read", None, None, "tester", {"op": "search", "note": note})


def test_noting_commits_the_events_in_the_transaction_of_the_first_write(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        with vault.noting([_read("a")]):
            added = vault.add("one", user_id="u")
            vault.add("two", user_id="u")
        events = vault.audit(limit=10)
        assert [(e.action, e.item_id) for e in events][:2] == [("read", None), ("add", added.id)]
        assert events[0].at == events[1].at != events[2].at
        assert len([e for e in events if e.action == "read"]) == 1  # once, not per write


def test_noting_commits_the_events_alone_without_a_write_or_after_a_failure(
        tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        with vault.noting([_read("no write")]):
            pass
        with pytest.raises(InvalidInput):
            with vault.noting([_read("failed write")]):
                vault.add("", user_id="u")  # refused before anything is written
        assert [e.details["note"] for e in vault.audit(action="read")] == \
            ["no write", "failed write"]
        assert vault.count(user_id="u") == 0
