"""The OpenAI-compatible memory proxy, driven by the official ``openai`` client exactly as an
application would use it: the only change from calling the upstream is ``base_url`` (and
the memvault key). The upstream is the scripted OpenAI-compatible server, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import openai

from memvault import Vault
from memvault.governance import KeyStore
from memvault.models.scripted import Reply, ScriptedLLMServer
from memvault.server.app import create_app
from memvault.server.proxy import ProxyConfig
from memvault.server.serve import BackgroundServer
from waiting import eventually


def _reply(body: dict[str, Any]) -> str:
    """The scripted model answers with what the proxy told it it remembers."""
    system = [m["content"] for m in body["messages"] if m["role"] == "system"]
    memory = [s for s in system if s.startswith("Memories from earlier")]
    last = body["messages"][-1]["content"]
    return f"echo: {last}" + (f" | remembered {len(memory[0].splitlines()) - 1}" if memory else "")


class Env:
    def __init__(self, tmp: Path, *, upstream: bool = True, llm: Any = None) -> None:
        self.upstream = ScriptedLLMServer(_reply).start()
        self.vault = Vault(tmp / "vault.db", embedder="hash")
        self.keys = KeyStore.for_vault(tmp / "vault.db")
        self.alice = self.keys.create("alice-app", "alice")
        self.bob = self.keys.create("bob-app", "bob")
        proxy = ProxyConfig(self.upstream.base_url if upstream else None, api_key="sk-up")
        self.server = BackgroundServer(create_app(self.vault, self.keys, proxy=proxy,
                                                  llm=llm)).start()

    def client(self, key: str, **kw: Any) -> Any:
        """The application's client: only base_url and api_key differ from the upstream's."""
        return openai.OpenAI(base_url=self.server.url + "/v1", api_key=key, **kw)

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



def _ask(client: Any, text: str, **kw: Any) -> Any:
    return client.chat.completions.create(model="gpt-test",
                                          messages=[{"role": "system", "content": "Be brief."},
                                                    {"role": "user", "content": text}], **kw)


def test_memories_are_injected_stored_and_kept_per_key(env: Env) -> None:
    alice, bob = env.client(env.alice), env.client(env.bob)
    first = _ask(alice, "My dog is called Rex and he loves the beach.")
    assert first.choices[0].message.content == \
        "echo: My dog is called Rex and he loves the beach."
    second = _ask(alice, "What is my dog called?")
    assert second.choices[0].message.content.endswith("| remembered 2")  # turn + answer
    sent = env.upstream.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "system", "user"]  # after the app's own
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert "My dog is called Rex" in sent[1]["content"]
    assert env.upstream.requests[-1]["model"] == "gpt-test"
    # Bob's key sees nothing of Alice's
    third = _ask(bob, "What is my dog called?")
    assert "remembered" not in third.choices[0].message.content
    assert all("Rex" not in m["content"] for m in env.upstream.requests[-1]["messages"])
    # stored through remember (fast: turns), in the key's scope
    texts = [(i.kind, i.metadata.get("role"), i.text) for i in
             env.vault.list(user_id="alice", order="created_asc").items]
    assert texts[:2] == [("turn", "user", "My dog is called Rex and he loves the beach."),
                         ("turn", "assistant", "echo: My dog is called Rex and he loves "
                                               "the beach.")]
    # written after the answer was sent: it lands moments later
    eventually(lambda: env.vault.count(user_id="bob") == 2)
    # the upstream was called with the server's key, not the caller's
    assert all(r["messages"] for r in env.upstream.requests)


def test_the_user_field_separates_end_users_under_one_key(env: Env) -> None:
    app = env.client(env.alice)
    _ask(app, "I am vegetarian.", user="u1")
    _ask(app, "I am allergic to nuts.", user="u2")
    _ask(app, "What do I eat?", user="u1")
    injected = env.upstream.requests[-1]["messages"][1]["content"]
    assert "vegetarian" in injected and "nuts" not in injected
    _ask(app, "What do I eat?", user="u2")
    injected = env.upstream.requests[-1]["messages"][1]["content"]
    assert "nuts" in injected and "vegetarian" not in injected
    assert {i.cube_id for i in env.vault.list(user_id="alice", limit=100).items} == {"u1", "u2"}
    assert env.upstream.requests[-1]["user"] == "u2"  # forwarded as sent


def test_streaming_is_relayed_and_remembered(env: Env) -> None:
    alice = env.client(env.alice)
    stream = _ask(alice, "My favourite colour is teal, remember it please.", stream=True,
                  stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: My favourite colour is teal, remember it please."
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert env.upstream.requests[-1]["stream"] is True
    follow = _ask(alice, "Which colour do I like?", stream=True)
    answer = "".join(c.choices[0].delta.content or "" for c in follow if c.choices)
    assert answer.endswith("| remembered 2")
    assert "teal" in env.upstream.requests[-1]["messages"][1]["content"]


def test_the_answer_is_the_upstreams_unchanged(env: Env) -> None:
    proxied = _ask(env.client(env.alice), "hello there").model_dump()
    direct = _ask(openai.OpenAI(base_url=env.upstream.base_url, api_key="sk-up"),
                  "hello there").model_dump()
    for doc in (proxied, direct):
        doc.pop("id"), doc.pop("created")
    assert proxied == direct


def test_errors_have_stable_codes(env: Env) -> None:
    with pytest.raises(openai.AuthenticationError):
        _ask(env.client("mv_000000000000_" + "x" * 43, max_retries=0), "hi")
    r = httpx.post(env.server.url + "/v1/chat/completions", json={"model": "m"},
                   headers={"Authorization": f"Bearer {env.alice}"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    r = httpx.post(env.server.url + "/v1/chat/completions", content=b"{not json",
                   headers={"Authorization": f"Bearer {env.alice}"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    r = httpx.post(env.server.url + "/v1/chat/completions",
                   json={"model": "m", "messages": [{"role": "user", "content": "x"}],
                         "user": "u" * 300},
                   headers={"Authorization": f"Bearer {env.alice}"})
    assert r.status_code == 422
    # an upstream error status comes back as the upstream sent it
    env.upstream._fn = None
    env.upstream.push(Reply.error(429, "slow down"))
    with pytest.raises(openai.RateLimitError) as info:
        _ask(env.client(env.alice, max_retries=0), "hi")
    assert info.value.body["message"] == "slow down"
    assert env.vault.count(user_id="alice") == 0  # failed exchanges are not remembered


def test_an_unreachable_upstream_is_a_502(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    vault = Vault(tmp_path / "v.db", embedder="hash")
    keys = KeyStore.for_vault(tmp_path / "v.db")
    key = keys.create("a", "alice")
    try:
        with BackgroundServer(create_app(vault, keys, proxy=ProxyConfig(dead))) as server:
            r = httpx.post(server.url + "/v1/chat/completions",
                           json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
                           headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 502 and r.json()["code"] == "model_error"
        assert vault.count(user_id="alice") == 0
    finally:
        keys.close()
        vault.close()


def test_without_an_upstream_the_servers_own_llm_answers(tmp_path: Path) -> None:
    with ScriptedLLMServer(default="the model's own answer") as model:
        e = Env(tmp_path, upstream=False, llm=model.llm())
        try:
            alice = e.client(e.alice)
            assert _ask(alice, "remember: I play chess").choices[0].message.content == \
                "the model's own answer"
            streamed = list(_ask(alice, "what do I play?", stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in streamed) == \
                "the model's own answer"
            assert "I play chess" in model.requests[-1]["messages"][1]["content"]
        finally:
            e.close()
    bare = Env(tmp_path / "bare", upstream=False)
    try:
        r = httpx.post(bare.server.url + "/v1/chat/completions",
                       json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
                       headers={"Authorization": f"Bearer {bare.alice}"})
        assert r.status_code == 409 and r.json()["code"] == "model_unavailable"
    finally:
        bare.close()


def test_a_bad_upstream_url_is_refused() -> None:
    from memvault import InvalidInput

    with pytest.raises(InvalidInput):
        ProxyConfig("ftp://example")


def test_json_round_trip_of_the_injected_note(env: Env) -> None:
    """Memories with quotes, newlines and unicode reach the upstream as valid JSON text."""
    alice = env.client(env.alice)
    _ask(alice, 'She said "ünïcödé"\nand left.')
    _ask(alice, "What did she say?")
    note = env.upstream.requests[-1]["messages"][1]["content"]
    assert '"ünïcödé" and left.' in note
    json.dumps(env.upstream.requests[-1])


def test_the_exchange_is_indexed_after_the_answer_not_in_the_next_search(env: Env) -> None:
    """The write after the answer also embeds the new turns' sentences, so a later request's
    search finds the index current instead of embedding them on its critical path."""
    alice = env.client(env.alice)
    _ask(alice, "We moved to Porto in May. The flat has a view of the river.")
    eventually(lambda: env.vault.count(user_id="alice") == 2)
    searcher = env.vault.searcher
    # without a search in between, the proxy's write brought the index up to date: the
    # user's two sentences were embedded, and nothing is left for the next search to do
    eventually(lambda: searcher.sentence_vectors["embedded"] >= 2)
    assert searcher.sync() == 0


class _GatedEmbedder:
    """An embedder plugin (the shipped hash embedder's vectors) that holds any batch with
    a stored answer in it until ``gate`` opens: the proxy's write of an exchange is then
    in flight for as long as the test wants, on any machine."""

    def __init__(self) -> None:
        from memvault.models.base import HashEmbedder

        self._inner = HashEmbedder()
        self.id, self.dim = self._inner.id, self._inner.dim
        import threading

        self.gate = threading.Event()

    def embed(self, texts: Any) -> Any:
        if any("echo:" in t for t in texts):
            self.gate.wait(60)
        return self._inner.embed(texts)


def test_a_conversation_that_goes_on_does_not_wait_for_its_last_write(tmp_path: Path) -> None:
    """Read-your-writes: a new conversation waits for the previous exchange to be stored;
    a request that carries that exchange in its own history does not need to."""
    import threading

    embedder = _GatedEmbedder()
    upstream = ScriptedLLMServer(_reply).start()
    vault = Vault(tmp_path / "vault.db", embedder=embedder)
    keys = KeyStore.for_vault(tmp_path / "vault.db")
    key = keys.create("alice-app", "alice")
    server = BackgroundServer(create_app(vault, keys, proxy=ProxyConfig(
        upstream.base_url, api_key="sk-up"))).start()
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0,
                               timeout=60)
        history = [{"role": "user", "content": "My cat is called Tom."}]
        first = client.chat.completions.create(model="m", messages=history)
        history.append({"role": "assistant", "content": first.choices[0].message.content})
        # its write is now held at the embedder; the conversation goes on regardless
        history.append({"role": "user", "content": "And the dog is Rex."})
        second = client.chat.completions.create(model="m", messages=history)
        assert second.choices[0].message.content == "echo: And the dog is Rex."
        assert vault.count(user_id="alice") == 0  # nothing stored yet: it did not wait
        # a new conversation must see the first exchange: it waits for the write
        done: list[Any] = []
        fresh = threading.Thread(target=lambda: done.append(client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "What is my cat called?"}])))
        fresh.start()
        fresh.join(1.5)
        assert not done, "a new conversation did not wait for the pending write"
        embedder.gate.set()
        fresh.join(30)
        assert done and "remembered" in done[0].choices[0].message.content
        assert any("Tom" in m["content"] for r in upstream.requests for m in r["messages"]
                   if m["role"] == "system")
    finally:
        embedder.gate.set()
        server.stop()
        upstream.stop()
        keys.close()
        vault.close()
