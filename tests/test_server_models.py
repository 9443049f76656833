"""The REST routes that involve a model or the scheduler, over real HTTP:
``/v1/remember``, ``/v1/chat`` (with a scripted OpenAI-compatible server as the LLM, or
none) and ``/v1/scheduler`` (with the bundled SmolLM2 building real blocks/adapters)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from memvault import Vault
from memvault.governance import KeyStore
from memvault.models.scripted import Reply, ScriptedLLMServer
from memvault.server.app import create_app
from memvault.server.serve import BackgroundServer


class Served:
    def __init__(self, path: Path, llm: Any = None) -> None:
        self.vault = Vault(path, embedder="hash")
        self.keys = KeyStore.for_vault(path)
        self.server = BackgroundServer(create_app(self.vault, self.keys, llm=llm)).start()
        self.anon = httpx.Client(base_url=self.server.url, timeout=30)

    def client(self, principal: str, user: str) -> httpx.Client:
        token = self.keys.create(principal, user)
        return httpx.Client(base_url=self.server.url, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.anon.close()
        self.server.stop()
        self.keys.close()
        self.vault.close()


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path / "vault.db")
    yield s
    s.close()


@pytest.fixture
def scripted() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(default="Pixel.") as server:
        yield server


TURNS = [{"role": "user", "content": "My dog is called Pixel"},
         {"role": "assistant", "content": "Nice name!"}]


def test_remember_fast_without_a_model_and_model_unavailable(bare: Served) -> None:
    with bare.client("app", "alice") as http:
        r = http.post("/v1/remember", json={"messages": TURNS, "session_id": "s1"})
        assert r.status_code == 201, r.text
        doc = r.json()
        assert doc["mode"] == "fast" and doc["decisions"] == []
        assert [t["text"] for t in doc["turns"]] == [m["content"] for m in TURNS]
        assert {(t["user_id"], t["session_id"], t["kind"]) for t in doc["turns"]} == \
            {("alice", "s1", "turn")}
        for path, body in (("/v1/remember", {"messages": TURNS, "mode": "fine"}),
                           ("/v1/chat", {"query": "What is my dog called?"})):
            r = http.post(path, json=body)
            assert r.status_code == 409 and r.json()["code"] == "model_unavailable", r.text
        # refused input changes nothing: a bad mode, another user's scope
        r = http.post("/v1/remember", json={"messages": TURNS, "mode": "slow"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        r = http.post("/v1/remember", json={"messages": TURNS, "user_id": "bob"})
        assert r.status_code == 403 and r.json()["code"] == "permission_denied"
        assert http.get("/v1/count").json()["count"] == 2
    health = bare.anon.get("/v1/health").json()
    assert health["model"] == {"configured": False, "threads": 1, "in_flight": 0,
                               "queue_depth": 0}


def test_chat_is_scoped_and_runs_on_the_model_pool(tmp_path: Path,
                                                    scripted: ScriptedLLMServer) -> None:
    s = Served(tmp_path / "vault.db", llm=scripted.llm())
    try:
        with s.client("app-a", "alice") as alice, s.client("app-b", "bob") as bob:
            assert alice.post("/v1/remember", json={"messages": TURNS}).status_code == 201
            assert bob.post("/v1/memories", json={"text": "Bob's dog is called Rex"}
                            ).status_code == 201
            r = alice.post("/v1/chat", json={"query": "What is my dog called?",
                                             "remember": True})
            assert r.status_code == 200, r.text
            doc = r.json()
            assert doc["answer"] == "Pixel." and doc["activation"].startswith("off")
            assert {h["item"]["user_id"] for h in doc["memories"]} == {"alice"}
            assert len(doc["remembered"]) == 2
            prompt = str(scripted.requests[-1]["messages"])
            assert "Pixel" in prompt and "Rex" not in prompt
            assert alice.get("/v1/count").json()["count"] == 4  # 2 turns + query/answer
            r = alice.post("/v1/chat", json={"query": "x", "k": "5"})  # strict types
            assert r.status_code == 422 and r.json()["code"] == "invalid_input"

            # two slow generations: one runs, one waits on the model pool, and neither
            # holds up the event loop or the vault workers
            scripted.push(Reply.slow(1.5, "one"), Reply.slow(1.5, "two"))
            answers: list[str] = []
            workers = [threading.Thread(target=lambda: answers.append(alice.post(
                "/v1/chat", json={"query": "slow?"}).json()["answer"])) for _ in range(2)]
            for w in workers:
                w.start()
            deadline = time.monotonic() + 10
            while True:
                started = time.monotonic()
                health = s.anon.get("/v1/health").json()
                assert time.monotonic() - started < 1.0  # the loop is free
                # settled: one generation runs, one waits, no vault worker is held
                # (before the model worker picks up the first call both are "waiting")
                if (health["model"]["queue_depth"], health["model"]["in_flight"],
                        health["in_flight"]) == (1, 1, 0):
                    break
                assert time.monotonic() < deadline, health
                time.sleep(0.02)
            assert bob.get("/v1/count").json()["count"] == 1  # vault calls still served
            for w in workers:
                w.join(20)
            assert sorted(answers) == ["one", "two"]
            metrics = alice.get("/v1/metrics").json()
            assert metrics["model"]["configured"] is True
            assert metrics["model"]["id"].startswith("openai:scripted")
    finally:
        s.close()


@pytest.mark.slow
def test_scheduler_shows_the_callers_blocks_and_adapters(tmp_path: Path, local_llm: Any) -> None:
    from memvault.parametric.distill import distill
    from memvault.parametric.adapters import AdapterStore

    s = Served(tmp_path / "vault.db")
    try:
        with s.client("app-a", "alice") as alice, s.client("app-b", "bob") as bob:
            first = alice.get("/v1/scheduler").json()
            pager = first.pop("pager")
            assert first == {
                "activation": {"available": True, "blocks": [], "skipped": 0},
                "adapters": {"available": True, "adapters": [], "skipped": 0}}
            assert (pager["kv_quant"], pager["budget_bytes"], pager["resident_bytes"]) == \
                ("fp16", 512 * 1024 * 1024, 0)
            facts = [s.vault.add(t, kind="fact", user_id="alice") for t in
                     ("Alice's dog is called Pixel", "Alice lives in Oslo")]
            s.vault.add("Bob's dog is called Rex", kind="fact", user_id="bob")
            for user in ("alice", "bob"):  # builds each scope's KV block with the real model
                # (k=0: these scopes are small enough for routing by budget to skip blocks)
                s.vault.chat("Where do I live?", llm=local_llm, user_id=user, max_tokens=2,
                             k=0)
            adapter = distill(local_llm, facts, "user-alice", steps=1, retention=False)
            AdapterStore(tmp_path / "vault.db.adapters").save(adapter)

            doc = alice.get("/v1/scheduler").json()
            # the server's pager holds both scopes' blocks (one budget, aggregates only)
            assert doc["pager"]["by_kind"]["block"]["pages"] == 2
            assert 0 < doc["pager"]["resident_bytes"] <= doc["pager"]["budget_bytes"]
            (block,) = doc["activation"]["blocks"]
            assert block["quant"] == "fp16"
            assert sorted(block["item_ids"]) == sorted(f.id for f in facts)
            assert block["n_tokens"] > 10 and block["stale"] is False
            assert block["model"] == local_llm.fingerprint.key
            (info,) = doc["adapters"]["adapters"]
            assert (info["name"], info["sources"], info["model"]) == \
                ("user-alice", 2, local_llm.fingerprint.key)
            assert info["key"].startswith("lora:user-alice:") and info["size_bytes"] > 0

            bobs = bob.get("/v1/scheduler").json()
            assert [b["item_ids"] for b in bobs["activation"]["blocks"]] != [block["item_ids"]]
            assert len(bobs["activation"]["blocks"]) == 1 and bobs["adapters"]["adapters"] == []

            s.vault.update(facts[1].id, "Alice lives in Bergen")  # the block is now stale
            (block,) = alice.get("/v1/scheduler").json()["activation"]["blocks"]
            assert block["stale"] is True and block["stale_ids"] == [facts[1].id]
    finally:
        s.close()
