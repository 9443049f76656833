"""Vault.chat: retrieved plaintext + the scope's activation block + an adapter."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from memvault import Vault
from memvault.chat import system_messages, user_message
from memvault.errors import InvalidInput
from memvault.settings import Settings
from memvault.models.scripted import ScriptedLLMServer

from forward_probe import fed_tokens


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    """These tests are about retrieval + the scope's block; their scopes are small enough
    for routing by budget to serve them whole (tests/test_routing.py), so it is off here."""
    v = Vault(tmp_path / "vault.db", embedder="hash", settings=Settings(chat_all_within=0))
    yield v
    v.close()


def _alice(vault: Vault) -> dict[str, Any]:
    return {
        "name": vault.add("The user's name is Alice Moreau.", kind="profile", user_id="alice"),
        "dog": vault.add("Alice's dog is a beagle called Pixel.", kind="fact", user_id="alice"),
        "job": vault.add("Alice works as a nurse in Porto.", kind="fact", user_id="alice"),
        "hike": vault.add("Yesterday Alice went hiking in the Peneda-Geres park.",
                          kind="note", user_id="alice"),
    }


class RecordingAdapter:
    """An adapter handle that only records when it is on (the remote path must not use it)."""

    id = "recording-v1"

    def __init__(self) -> None:
        self.entered = 0

    @contextmanager
    def active(self, llm: Any) -> Iterator[None]:
        self.entered += 1
        yield


class NormScaleAdapter:
    """A real change of the model's weights while active (like a LoRA), restored after."""

    id = "norm-x1.3"

    @contextmanager
    def active(self, llm: Any) -> Iterator[None]:
        import torch

        weight = llm.model.model.norm.weight
        saved = weight.detach().clone()
        with torch.no_grad():
            weight.mul_(1.3)
        try:
            yield
        finally:
            with torch.no_grad():
                weight.copy_(saved)


def test_remote_llm_gets_retrieved_memories_as_text(vault: Vault) -> None:
    mem = _alice(vault)
    adapter = RecordingAdapter()
    with ScriptedLLMServer(default="Your dog is Pixel.") as server:
        result = vault.chat("What is my dog called?", llm=server.llm(), user_id="alice",
                            adapter=adapter, remember=True)
        sent = server.requests[0]["messages"]
    assert result.answer == "Your dog is Pixel."
    assert result.activation == "off: the model is not local" and result.block is None
    assert result.adapter is None and adapter.entered == 0
    assert sent[0]["role"] == "system" and sent[-1]["role"] == "user"
    assert mem["dog"].text in sent[-1]["content"]
    assert sent[-1]["content"].endswith("What is my dog called?")
    assert mem["dog"].id in [h.item.id for h in result.memories]
    stored = [vault.get(i) for i in result.remembered]
    assert [(t.kind, t.metadata["role"], t.user_id) for t in stored] == [
        ("turn", "user", "alice"), ("turn", "assistant", "alice")]
    assert stored[1].text == "Your dog is Pixel."
    assert not Path(str(vault.store.path) + ".activation").exists()  # type: ignore[attr-defined]


def test_bad_chat_input_is_refused_and_stores_nothing(vault: Vault) -> None:
    _alice(vault)
    before = vault.count()
    with ScriptedLLMServer(default="x") as server:
        with pytest.raises(InvalidInput):
            vault.chat("", llm=server.llm(), user_id="alice", remember=True)
        with pytest.raises(InvalidInput):
            vault.chat("hi", llm=server.llm(), user_id="alice", adapter=object(), remember=True)
        with pytest.raises(InvalidInput):
            vault.chat("hi", llm=server.llm(), user_id=7, remember=True)  # type: ignore[arg-type]
        assert server.requests == []
    assert vault.count() == before


@pytest.mark.slow
def test_local_chat_builds_uses_and_rebuilds_the_scope_block(local_llm, vault: Vault) -> None:
    mem = _alice(vault)
    root = Path(str(vault.store.path) + ".activation")  # type: ignore[attr-defined]
    with fed_tokens(local_llm.model) as fed_first:
        first = vault.chat("What is my dog's name?", llm=local_llm, user_id="alice",
                           max_tokens=16)
    assert first.activation == "built" and "Pixel" in first.answer
    # built: the block is prefilled once, then generation feeds only what follows it
    assert fed_first[:2] == [first.cached_tokens, first.prompt_tokens - first.cached_tokens]
    assert set(first.block_items) == {mem["name"].id, mem["dog"].id, mem["job"].id}
    assert [h.item.id for h in first.memories] == [mem["hike"].id]  # no duplicates
    assert 0 < first.cached_tokens < first.prompt_tokens
    assert len(list(root.rglob("*.safetensors"))) == 1

    with fed_tokens(local_llm.model) as fed_second:
        second = vault.chat("Where did I go hiking yesterday?", llm=local_llm,
                            user_id="alice", max_tokens=16)
    assert second.activation == "used" and second.block == first.block
    # used: the block's tokens are never fed to the model again (a cache that generation
    # silently ignored would show the whole prompt here)
    assert second.cached_tokens == first.cached_tokens > 0
    assert fed_second[0] == second.prompt_tokens - second.cached_tokens
    assert fed_second[1:] == [1] * (len(fed_second) - 1)
    # the cached path answers exactly what recomputing the whole prompt answers
    block_items = [vault.get(i) for i in first.block_items]  # in block order
    messages = [*system_messages(block_items), user_message(
        "Where did I go hiking yesterday?", second.memories)]
    assert local_llm.complete(messages, max_tokens=16) == second.answer

    vault.update(mem["dog"].id, "Alice's dog is a poodle called Bolt.")
    third = vault.chat("What is my dog's name?", llm=local_llm, user_id="alice",
                       max_tokens=16, remember=True)
    assert third.activation == "built" and third.block != first.block
    assert [p.stem for p in root.rglob("*.safetensors")] == [third.block]  # stale one gone
    assert len(third.remembered) == 2

    other = vault.chat("Hello", llm=local_llm, user_id="bob", max_tokens=4)
    assert other.activation.startswith("off: no profile") and other.cached_tokens == 0


@pytest.mark.slow
def test_adapter_is_on_while_generating_and_has_its_own_block(local_llm, vault: Vault) -> None:
    import torch

    _alice(vault)
    norm = local_llm.model.model.norm.weight.detach().clone()
    adapter = NormScaleAdapter()
    base = vault.chat("What is my job?", llm=local_llm, user_id="alice", max_tokens=12)
    tuned = vault.chat("What is my job?", llm=local_llm, user_id="alice", max_tokens=12,
                       adapter=adapter)
    assert tuned.adapter == adapter.id and tuned.activation == "built"
    assert tuned.block != base.block  # a cache computed with other weights is another block
    assert torch.equal(local_llm.model.model.norm.weight, norm)  # restored
    again = vault.chat("What is my job?", llm=local_llm, user_id="alice", max_tokens=12,
                       adapter=adapter)
    assert again.activation == "used" and again.answer == tuned.answer
    with adapter.active(local_llm):  # recomputing with the adapter on gives the same answer
        ids = local_llm.encode_chat([*system_messages([vault.get(i) for i in tuned.block_items]),
                                     user_message("What is my job?", tuned.memories)])
        assert local_llm.decode(local_llm.generate_ids(ids, max_tokens=12)).strip() == again.answer


@pytest.mark.slow
def test_scheduler_promotion_is_the_block_chat_uses(local_llm, vault: Vault) -> None:
    from memvault.chat import ActivationTierEngine, default_activation_store
    from memvault.scheduler import ActivationTier

    mem = _alice(vault)
    engine = ActivationTierEngine(local_llm, default_activation_store(vault))
    assert isinstance(engine, ActivationTier)
    block_id = engine.promote({"user_id": "alice", "agent_id": None, "cube_id": None},
                              [mem["dog"]])
    result = vault.chat("What is my dog's name?", llm=local_llm, user_id="alice",
                        session_id="s1", max_tokens=8)
    assert result.activation == "used" and result.block == block_id
    assert result.block_items == [mem["dog"].id]
    engine.demote(block_id)
    engine.demote(block_id)  # idempotent
    again = vault.chat("What is my dog's name?", llm=local_llm, user_id="alice", max_tokens=8)
    assert again.activation == "built" and again.block != block_id


@pytest.mark.slow
def test_a_lora_switched_on_outside_chat_keys_the_block(local_llm, vault: Vault) -> None:
    """The real LoRA runtime: a block is never reused across base model and adapter."""
    from memvault.parametric import runtime as lora_runtime

    mem = _alice(vault)
    key = "test:chat-lora"
    lora_runtime.install(local_llm, key, {"r": 2, "lora_alpha": 4,
                                          "target_modules": ["q_proj", "v_proj"]})
    try:
        with lora_runtime.enabled(local_llm, key):
            tuned = vault.chat("Where do I work?", llm=local_llm, user_id="alice", max_tokens=6)
        base = vault.chat("Where do I work?", llm=local_llm, user_id="alice", max_tokens=6)
    finally:
        lora_runtime.uninstall(local_llm, key)
    assert tuned.activation == "built" and base.activation == "built"
    assert tuned.adapter == key and base.adapter is None
    assert tuned.block != base.block and mem["job"].id in tuned.block_items
    assert tuned.answer == base.answer  # peft starts B at 0: same outputs, other cache key
    # other tests' adapters may stay resident in the shared model (the pager keeps them)
    assert key not in lora_runtime.loaded_keys(local_llm)


def test_chat_command_line_with_an_http_llm(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from memvault.cli import cli

    db = str(tmp_path / "cli.db")
    with Vault(db, embedder="hash") as v:
        dog = _alice(v)["dog"]
    with ScriptedLLMServer(default="Pixel, your beagle.") as server:
        spec = f"openai:{server.base_url}#{server.model}"
        result = CliRunner().invoke(cli, ["--db", db, "--embedder", "hash", "chat",
                                          "What is my dog called?", "--user", "alice",
                                          "--llm", spec, "--remember", "--json"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.output)
        human = CliRunner().invoke(cli, ["--db", db, "--embedder", "hash", "chat", "Dog?",
                                         "--user", "alice", "--llm", spec])
    assert doc["answer"] == "Pixel, your beagle." and len(doc["remembered"]) == 2
    assert dog.id in [m["item"]["id"] for m in doc["memories"]]
    assert doc["activation"] == "off: the model is not local"
    assert human.exit_code == 0 and human.output.startswith("Pixel, your beagle.")
    with Vault(db, embedder="hash") as v:
        assert v.count(user_id="alice") == 6
