"""How the memory proxy writes an exchange: searchable first (what the scope's next request
waits for), sentence vectors after (what nobody waits for), and nothing lost at shutdown.

Real HTTP through the official ``openai`` client, a real SQLite vault, the scripted
OpenAI-compatible upstream. The embedder is the shipped hash embedder behind a gate that
holds the one batch a test names, so a write step is in flight for as long as the test
wants, on any machine."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

from memvault import Vault
from memvault.governance import KeyStore
from memvault.models.base import HashEmbedder
from memvault.models.scripted import ScriptedLLMServer
from memvault.server.app import create_app
from memvault.server.proxy import ProxyConfig
from memvault.server.serve import BackgroundServer

#: a sentence that is embedded alone only as a sentence vector (the turn says more)
HELD = "user: Please keep it safe."


class GatedEmbedder(HashEmbedder):
    """Holds any batch with ``HELD`` in it until ``gate`` opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.held = threading.Event(), threading.Event()

    def embed(self, texts: Any) -> Any:
        if HELD in texts:
            self.held.set()
            self.gate.wait(60)
        return super().embed(texts)


def _reply(body: dict[str, Any]) -> str:
    system = [m["content"] for m in body["messages"] if m["role"] == "system"]
    return "Noted." if not system else "From memory: " + system[-1].replace("\n", " ")


class Env:
    def __init__(self, tmp: Path, embedder: HashEmbedder | None = None,
                 reply: Any = None) -> None:
        self.embedder = embedder if embedder is not None else GatedEmbedder()
        self.upstream = ScriptedLLMServer(reply or _reply).start()
        self.vault = Vault(tmp / "vault.db", embedder=self.embedder)
        self.keys = KeyStore.for_vault(tmp / "vault.db")
        key = self.keys.create("alice-app", "alice")
        self.server = BackgroundServer(create_app(self.vault, self.keys, proxy=ProxyConfig(
            self.upstream.base_url, api_key="sk-up"))).start()
        self.client = openai.OpenAI(base_url=self.server.url + "/v1", api_key=key,
                                    max_retries=0, timeout=60)

    def ask(self, text: str) -> str:
        """A new conversation: one user message, no history."""
        return self.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": text}]).choices[0].message.content

    def close(self) -> None:
        gate = getattr(self.embedder, "gate", None)
        if gate is not None:
            gate.set()
        self.server.stop()
        self.upstream.stop()
        self.keys.close()
        self.vault.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


def test_a_new_conversation_sees_every_earlier_exchange_without_waiting_for_sentences(
        env: Env) -> None:
    """Back to back, each question a new conversation right after the exchange it asks
    about: its search must find that exchange (read-your-writes), and it must not wait
    for the exchange's sentence vectors, which are held here for the whole test."""
    facts = [("The code of locker 7 is 4711. Please keep it safe.", "locker 7", "4711"),
             ("My dentist is Dr Okafor on Elm Street.", "dentist", "Okafor"),
             ("The wifi password at the cabin is bluefjord.", "wifi password", "bluefjord"),
             ("Our anniversary dinner is booked at Casa Lume.", "anniversary dinner", "Lume")]
    started = time.monotonic()
    for fact, topic, answer in facts:
        env.ask(fact)
        reply = env.ask(f"What about the {topic}?")
        assert answer in reply, (topic, reply)  # the exchange was in the injected memories
    assert env.embedder.held.is_set() and not env.embedder.gate.is_set()
    assert time.monotonic() - started < 30  # nothing waited for the held sentences
    searcher = env.vault.searcher
    assert searcher._inflight >= 1  # the held sentences: taken from the queue, not indexed
    env.embedder.gate.set()
    deadline = time.monotonic() + 15
    while (searcher.deferred or searcher._inflight) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert searcher.deferred == 0 and searcher._inflight == 0


def test_no_exchange_or_sentence_is_lost_at_shutdown(env: Env) -> None:
    """The server stops while an exchange's sentences are still being embedded: it waits
    for them, and the vault holds the exchange with its sentence vectors indexed."""
    env.ask("The code of locker 7 is 4711. Please keep it safe.")
    assert env.embedder.held.wait(15)
    threading.Timer(0.5, env.embedder.gate.set).start()
    assert env.vault.searcher.sentence_vectors["embedded"] < 2  # the held one is not in
    env.server.stop()  # the app's shutdown waits for the proxy's writes
    assert env.vault.count(user_id="alice") == 2
    assert env.vault.searcher.deferred == 0
    # both sentences of the user's turn (the answer, "Noted.", has one: no parts)
    assert env.vault.searcher.sentence_vectors["embedded"] == 2


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.at: list[float] = []

    def embed(self, texts: Any) -> Any:
        self.calls.append(list(texts))
        self.at.append(time.monotonic())
        return super().embed(texts)


@pytest.mark.parametrize("delay", [0.0, 0.4])
def test_the_users_turn_is_embedded_while_a_slow_upstream_answers(tmp_path: Path,
                                                                  delay: float) -> None:
    """A slow upstream leaves time to embed the user's turn before the answer is in; a
    fast one does not, and the write embeds it after. Either way each turn is embedded
    once, in a call of its own (the write pauses between the two for running searches)."""
    from memvault.models.scripted import Reply

    env = Env(tmp_path, CountingEmbedder(),
              lambda body: Reply(content="Fine, thanks.", delay=delay))
    embedder, vault = env.embedder, env.vault
    try:
        env.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "How are you today?"}])
        answered = time.monotonic()
        deadline = time.monotonic() + 15
        while vault.count(user_id="alice") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        turn_calls = [(c, at) for c, at in zip(embedder.calls, embedder.at)
                      if any(t.startswith(("user: How", "assistant: Fine")) for t in c)]
        assert [c for c, _ in turn_calls] == [["user: How are you today?"],
                                              ["assistant: Fine, thanks."]]
        if delay:  # ahead: well before the answer came back
            assert turn_calls[0][1] < answered - delay / 2
    finally:
        env.close()


class HoldingEmbedder(CountingEmbedder):
    """Counts calls and holds any batch with ``hold`` in it until ``gate`` opens."""

    def __init__(self, hold: str) -> None:
        super().__init__()
        self.hold, self.gate = hold, threading.Event()

    def embed(self, texts: Any) -> Any:
        if self.hold in texts:
            self.gate.wait(60)
        return super().embed(texts)


def test_a_waiting_new_conversation_embeds_its_own_turn_meanwhile(tmp_path: Path) -> None:
    """While a new conversation waits for the previous exchange to be searchable, it
    embeds its query and then its own turn, for its write after the answer: that write,
    which the next new conversation waits for, then has one turn less to embed."""
    env = Env(tmp_path, HoldingEmbedder("assistant: Noted."))  # holds the first answer
    embedder, vault = env.embedder, env.vault
    try:
        assert env.ask("My locker code is 4711.") == "Noted."  # its write is now held
        replies: list[str] = []
        second = threading.Thread(
            target=lambda: replies.append(env.ask("What is my locker code?")))
        second.start()
        deadline = time.monotonic() + 15
        while ["user: What is my locker code?"] not in embedder.calls:
            assert time.monotonic() < deadline, "the waiting request did not embed its turn"
            time.sleep(0.02)
        assert not embedder.gate.is_set() and not replies  # still waiting, turn embedded
        embedder.gate.set()
        second.join(30)
        assert replies and "4711" in replies[0]  # it saw the first exchange
        while vault.count(user_id="alice") < 4:
            assert time.monotonic() < deadline + 15
            time.sleep(0.05)
        embedded = [t for call in embedder.calls for t in call]
        assert embedded.count("user: What is my locker code?") == 1  # the write took it
    finally:
        env.close()


def test_the_sentence_step_embeds_one_sentence_per_call(tmp_path: Path) -> None:
    """The exchange's sentence vectors are embedded one per worker call, each after no
    request is in front: a request that arrives meanwhile competes with one sentence at
    most, not with the whole exchange's."""
    env = Env(tmp_path, CountingEmbedder())
    embedder, vault = env.embedder, env.vault
    try:
        env.client.chat.completions.create(model="m", messages=[{"role": "user", "content":
                                           "The van is blue. It has a roof rack. It seats seven."}])
        deadline = time.monotonic() + 15
        searcher = vault.searcher
        while vault.count(user_id="alice") < 2 or searcher.deferred or searcher._inflight:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sentences = [c for c in embedder.calls
                     if any(t in ("user: The van is blue.", "user: It has a roof rack.",
                                  "user: It seats seven.") for t in c)]
        assert sentences == [["user: The van is blue."], ["user: It has a roof rack."],
                             ["user: It seats seven."]]
    finally:
        env.close()
