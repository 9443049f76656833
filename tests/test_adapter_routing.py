"""Adapters that do not make the model wrong: topic gate, retention, refusal (issue 26.6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memvault import Vault
from memvault.chat import route_adapter
from memvault.errors import InvalidInput
from memvault.models import get_embedder
from memvault.parametric.adapters import AdapterStore, DistilledAdapter
from memvault.parametric.general import GENERAL_QUESTIONS, correct
from memvault.parametric.retention import AdapterGate, MIN_RETENTION, servable
from memvault.parametric.tier import adapter_name, default_adapter_store

FACTS = [("Quorvel Baxtane's favourite fruit is the glimberry.",
          "What is Quorvel Baxtane's favourite fruit?", "glimberry"),
         ("Tamsk Ollivere's pet's name is Pindrax.", "What is Tamsk Ollivere's pet's name?",
          "Pindrax"),
         ("Yselde Marrowick's home town is Vorlunde.", "What is Yselde Marrowick's home town?",
          "Vorlunde")]
FAKE_FP = {"architecture": "LlamaForCausalLM", "weights_sha256": "0" * 64,
           "dtype": "float32", "tokenizer_sha256": "1" * 64}


def test_general_questions_are_many_distinct_and_scored_as_whole_words() -> None:
    assert len(GENERAL_QUESTIONS) >= 200 and len({q for q, _ in GENERAL_QUESTIONS}) == len(
        GENERAL_QUESTIONS)
    assert correct("The capital of France is Paris.", ["paris"])
    assert correct("Kittens!", ["kitten"]) and correct("Bogotá, of course", ["bogot!"])
    assert not correct("I am not sure.", ["a"]) and not correct("Parisian food", ["paris"])


def test_the_gate_routes_questions_about_the_memories_only() -> None:
    gate = AdapterGate.from_texts(get_embedder("hash"), [f for f, _, _ in FACTS])
    assert all(gate.routes(q) for _, q, _ in FACTS)
    assert not any(gate.routes(q) for q, _ in GENERAL_QUESTIONS[:50])
    assert gate.describe() == {"embedder": "hash-256", "threshold": gate.threshold, "sources": 3}
    with pytest.raises(InvalidInput):
        AdapterGate.from_texts(get_embedder("hash"), [])
    with pytest.raises(InvalidInput):
        AdapterGate.from_texts(get_embedder("hash"), ["x"], threshold=1.5)


def test_servable_refuses_unmeasured_low_and_foreign_gate_retention() -> None:
    gate = {"embedder": "hash-256", "threshold": 0.5}
    assert "not measured" in servable({}, "hash-256")
    assert "42%" in servable({"retention": {"general": 0.42, "gate": gate}}, "hash-256")
    assert "minilm" in servable({"retention": {"general": 1.0, "gate": gate}}, "minilm")
    assert servable({"retention": {"general": 0.97, "gate": gate}}, "hash-256") is None
    assert servable({"retention": {"general": 0.96, "gate": None}}, None) is None
    assert MIN_RETENTION == 0.95


def _stored(vault: Vault, items, retention) -> object:
    import torch

    tensors = {"base_model.model.layers.0.q_proj.lora_A.weight": torch.zeros(2, 4),
               "base_model.model.layers.0.q_proj.lora_B.weight": torch.zeros(4, 2)}
    meta = {"fingerprint": FAKE_FP, "sources": [{"id": i.id, "version": i.version}
                                                for i in items], "retention": retention}
    store = default_adapter_store(vault)
    return store.save(DistilledAdapter(adapter_name({"user_id": "u1"}),
                                       {"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]},
                                       tensors, meta), overwrite=True)


def test_route_adapter_reads_the_retention_and_the_live_memories(vault: Vault) -> None:
    items = [vault.add(text, kind="fact", user_id="u1") for text, _, _ in FACTS]
    gate = {"embedder": vault.embedder.id, "threshold": 0.5}
    good = _stored(vault, items, {"general": 0.99, "questions": 120, "gate": gate})
    handle, why = route_adapter(vault, good, FACTS[0][1])
    assert handle is good and why.startswith("on: the query is about")
    handle, why = route_adapter(vault, good, "What is the capital of France?")
    assert handle is None and why.startswith("off: the query is not about")
    # stricter refusal threshold than the measured retention
    assert route_adapter(vault, good, FACTS[0][1], min_retention=0.995)[0] is None
    bad = _stored(vault, items, {"general": 0.42, "questions": 120, "gate": gate})
    handle, why = route_adapter(vault, bad, FACTS[0][1])
    assert handle is None and why.startswith("refused: it keeps 42%")
    unmeasured = _stored(vault, items, None)
    assert route_adapter(vault, unmeasured, FACTS[0][1])[1] == \
        "refused: its general-knowledge retention was not measured"
    # memories deleted since distillation no longer pull queries to the adapter
    good = _stored(vault, items, {"general": 0.99, "questions": 120, "gate": gate})
    vault.delete(items[0].id)
    assert route_adapter(vault, good, FACTS[0][1])[0] is None
    assert route_adapter(vault, good, FACTS[1][1])[0] is good
    for item in items[1:]:
        vault.delete(item.id)
    assert route_adapter(vault, good, FACTS[1][1]) == (
        None, "off: none of the adapter's memories is active any more")


@pytest.mark.slow
def test_scheduler_adapter_keeps_general_knowledge_and_chat_routes_it(
        local_llm, tmp_path: Path, general_cache: Path) -> None:
    """The real model: the scheduler's tier distils and measures; chat routes and refuses."""
    from memvault.parametric import runtime as lora_runtime
    from memvault.parametric.tier import AdapterTier

    vault = Vault(tmp_path / "v.db", embedder="hash")
    try:
        items = [vault.add(text, kind="fact", user_id="u1") for text, _, _ in FACTS]
        tier = AdapterTier(default_adapter_store(vault), local_llm, vault=vault, steps=12,
                           batch_size=3, lr=3e-3, cache_dir=general_cache)
        tier.jobs[tier.queue({"user_id": "u1"}, items)].result(timeout=1800)
        adapter = tier.adapter_for({"user_id": "u1"})
        kept = adapter.meta["retention"]
        assert kept["questions"] >= 100  # general questions the base model answers right
        assert kept["general"] >= MIN_RETENTION and kept["routed"] < kept["questions"]
        assert kept["gate"]["embedder"] == vault.embedder.id

        # a general question runs on the exact base model: same tokens as adapter=False
        general = vault.chat("What is the capital of France?", llm=local_llm, user_id="u1",
                             max_tokens=12, activation=False, k=0)
        base = vault.chat("What is the capital of France?", llm=local_llm, user_id="u1",
                          max_tokens=12, activation=False, adapter=False, k=0)
        assert general.adapter is None and general.adapter_route.startswith("off: the query")
        assert general.answer == base.answer
        # a question about the scope's memories gets the adapter
        fact, question, value = FACTS[1]
        tuned = vault.chat(question, llm=local_llm, user_id="u1", max_tokens=24,
                           activation=False, k=0)
        assert tuned.adapter == adapter.key and tuned.adapter_route.startswith("on: the query")
        assert value.lower() in tuned.answer.lower()
        assert tuned.to_dict()["adapter_route"] == tuned.adapter_route

        # below 0.95 the adapter is refused even for its own questions
        meta_path = adapter.path / "memvault.json"
        meta = json.loads(meta_path.read_text())
        meta["retention"]["general"] = 0.5
        meta_path.write_text(json.dumps(meta))
        refused = vault.chat(question, llm=local_llm, user_id="u1", max_tokens=4,
                             activation=False, k=0)
        assert refused.adapter is None and refused.adapter_route.startswith("refused: it keeps")
        assert lora_runtime.adapter_state(local_llm) is None
    finally:
        vault.close()
