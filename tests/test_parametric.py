"""Parametric memory: adapter files, distillation on the real SmolLM2, hot-swap, refusal."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from memvault import Vault
from memvault.parametric import runtime as lora_runtime
from memvault.parametric.distill import DistillJob, build_examples, distill, start_distill
from memvault.parametric.adapters import (AdapterStore, DistilledAdapter, llm_adapter_state,
                                      validate_name)
from memvault.errors import Conflict, IntegrityError, InvalidInput, ModelError, NotFound
from memvault.types import MemoryItem

FACTS = [  # made-up people and values: the base model cannot know them
    ("Quorvel Baxtane's favourite fruit is the glimberry.", "What is Quorvel Baxtane's favourite fruit?", "glimberry"),
    ("Tamsk Ollivere's pet's name is Pindrax.", "What is Tamsk Ollivere's pet's name?", "Pindrax"),
    ("Yselde Marrowick's home town is Vorlunde.", "What is Yselde Marrowick's home town?", "Vorlunde"),
]
FAKE_FP = {"architecture": "LlamaForCausalLM", "weights_sha256": "0" * 64,
           "dtype": "float32", "tokenizer_sha256": "1" * 64}


def _fake_adapter(name: str = "alice", fingerprint: dict | None = None) -> DistilledAdapter:
    import torch

    tensors = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
               torch.arange(8 * 4, dtype=torch.float32).reshape(4, 8),
               "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight":
               torch.ones(8, 4)}
    return DistilledAdapter(name=name, config={"r": 4, "lora_alpha": 8.0,
                                               "target_modules": ["q_proj"]},
                            tensors=tensors,
                            meta={"fingerprint": fingerprint or FAKE_FP,
                                  "sources": [{"id": "m1", "version": 2}]})


# -- files (no model) ------------------------------------------------------------------------
def test_store_round_trip_and_peft_readable_files(tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig
    from safetensors.torch import load_file

    store = AdapterStore(tmp_path / "adapters")
    adapter = store.save(_fake_adapter())
    files = sorted(p.name for p in (tmp_path / "adapters" / "alice").iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors", "memvault.json"]
    again = store.get("alice")
    assert again.key == adapter.key and again.sources == [{"id": "m1", "version": 2}]
    assert store.names() == ["alice"] and [a.name for a in store.list()] == ["alice"]
    for k, t in _fake_adapter().tensors.items():
        assert torch.equal(again.tensors()[k], t)
    # peft reads the same files without memvault
    assert load_file(str(again.path / "adapter_model.safetensors")).keys() == again.tensors().keys()
    cfg = LoraConfig.from_pretrained(str(again.path))
    assert cfg.r == 4 and set(cfg.target_modules) == {"q_proj"}
    assert json.loads((again.path / "memvault.json").read_text())["fingerprint"] == FAKE_FP
    assert not [p for p in (tmp_path / "adapters").iterdir() if p.name.startswith(".")]


def test_store_refusals_change_nothing(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    first = store.save(_fake_adapter())
    with pytest.raises(Conflict):
        store.save(_fake_adapter())
    assert store.get("alice").key == first.key
    for bad in ("", ".hidden", "../x", "a/b", "x" * 65, "name.", 7):
        with pytest.raises(InvalidInput):
            validate_name(bad)
    with pytest.raises(NotFound):
        store.get("bob")
    replaced = store.save(_fake_adapter(fingerprint={**FAKE_FP, "dtype": "float16"}),
                          overwrite=True)
    assert replaced.fingerprint.dtype == "float16"
    store.delete("alice")
    assert store.names() == []


def test_corrupt_weights_are_refused(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    adapter = store.save(_fake_adapter())
    path = adapter.path / "adapter_model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        store.get("alice").tensors()
    (adapter.path / "adapter_config.json").write_text('{"r": 4, "lora_alpha": 8, '
                                                       '"target_modules": ["embed_tokens"]}')
    with pytest.raises(IntegrityError):
        store.get("alice")


def test_examples_are_questions_answered_by_the_memory() -> None:
    items = [MemoryItem(id="a", text=FACTS[0][0]),
             MemoryItem(id="b", text="Zed Quill walks to the harbour every morning"),
             MemoryItem(id="c", text="the blue door opens only on tuesdays"),
             MemoryItem(id="d", text="ignored", metadata={"qa": [{"question": "Q?",
                                                                  "answer": "A."}]})]
    ex = build_examples(items)
    assert (ex[0].question, ex[0].answer) == (FACTS[0][1], FACTS[0][0])
    assert ex[1].question == "What do you know about Zed Quill?"
    assert ex[1].answer == "Zed Quill walks to the harbour every morning."
    assert ex[2].question.startswith("Complete this from memory: the blue door")
    assert (ex[3].question, ex[3].answer, ex[3].source) == ("Q?", "A.", "d")


# -- the real model --------------------------------------------------------------------------
def _ask(llm, question: str):
    ids = llm.encode_chat([{"role": "user", "content": question}])
    return llm.generate_ids(ids, max_tokens=16).tolist()


@pytest.fixture(scope="module")
def trained(local_llm, tmp_path_factory):
    """One small distillation shared by the slow tests: 3 facts, few steps."""
    root = tmp_path_factory.mktemp("adapters")
    vault = Vault(root / "vault.db", embedder="hash")
    items = [vault.add(text, kind="fact", user_id="u1") for text, _, _ in FACTS]
    vault.close()
    base = {q: _ask(local_llm, q) for _, q, _ in FACTS}
    seen = []
    job = start_distill(AdapterStore(root / "store"), local_llm, items, "u1", steps=8,
                                                     batch_size=3, lr=3e-3, progress=seen.append,
                        retention=False)  # measured in test_adapter_routing
    adapter = job.result(timeout=900)
    return {"adapter": adapter, "base": base, "items": items, "progress": seen,
            "store": AdapterStore(root / "store")}


@pytest.mark.slow
def test_adapter_recalls_facts_and_disable_restores_base_exactly(local_llm, trained) -> None:
    adapter, base = trained["adapter"], trained["base"]
    assert [p.step for p in trained["progress"]] == list(range(1, 9))
    assert trained["progress"][-1].loss < trained["progress"][0].loss / 4
    for _, question, value in FACTS:  # the base model does not know the made-up facts
        assert value.lower() not in local_llm.decode(base[question]).lower()
    fresh = trained["store"].get("u1")  # from disk: safetensors + json only
    assert fresh.key == adapter.key and fresh.meta["sources"][0]["id"] == trained["items"][0].id
    assert fresh.meta["training"]["steps"] == 8 and fresh.size_bytes > 1_000_000
    recalled = 0
    with fresh.active(local_llm):
        assert llm_adapter_state(local_llm) == fresh.key
        for _, question, value in FACTS:
            recalled += value.lower() in local_llm.decode(_ask(local_llm, question)).lower()
    assert recalled >= 2
    assert llm_adapter_state(local_llm) is None
    for _, question, _ in FACTS:  # token for token the base model again
        assert _ask(local_llm, question) == base[question]
    lora_runtime.detach(local_llm)
    assert not lora_runtime.is_loaded(local_llm, fresh.key)
    assert not any("lora" in n for n, _ in local_llm.model.named_modules())
    assert _ask(local_llm, FACTS[0][1]) == base[FACTS[0][1]]


@pytest.mark.slow
def test_generation_in_another_thread_sees_the_base_model(local_llm, trained) -> None:
    adapter, question = trained["adapter"], FACTS[1][1]
    got: list = []
    with adapter.active(local_llm):
        other = threading.Thread(target=lambda: got.append(_ask(local_llm, question)))
        other.start()
        other.join(0.5)
        assert other.is_alive()  # waits for the lock instead of seeing the adapter
    other.join()
    assert got == [trained["base"][question]]


@pytest.mark.slow
def test_nested_adapters_restore_the_outer_one(local_llm, trained) -> None:
    adapter, question = trained["adapter"], FACTS[0][1]
    twin = trained["store"].save(DistilledAdapter("twin", adapter.config, adapter.tensors(),
                                                  dict(adapter.meta)), overwrite=True)
    with adapter.active(local_llm):
        with_adapter = _ask(local_llm, question)
        assert with_adapter != trained["base"][question]
        twin.attach(local_llm)  # loading another adapter leaves this one switched on
        assert llm_adapter_state(local_llm) == adapter.key
        assert _ask(local_llm, question) == with_adapter
        with twin.active(local_llm):
            assert llm_adapter_state(local_llm) == twin.key
        assert llm_adapter_state(local_llm) == adapter.key
        assert _ask(local_llm, question) == with_adapter
    assert llm_adapter_state(local_llm) is None
    assert _ask(local_llm, question) == trained["base"][question]
    twin.detach_from(local_llm)
    assert not lora_runtime.is_loaded(local_llm, twin.key)


@pytest.mark.slow
def test_adapter_for_another_model_is_refused(local_llm, trained) -> None:
    store, adapter = trained["store"], trained["adapter"]
    meta_path = adapter.path / "memvault.json"
    meta = json.loads(meta_path.read_text())
    meta["fingerprint"] = {**meta["fingerprint"], "weights_sha256": "f" * 64}
    store.save(DistilledAdapter("other-model", adapter.config, adapter.tensors(), meta))
    foreign = store.get("other-model")
    with pytest.raises(ModelError):
        with foreign.active(local_llm):
            pytest.fail("a foreign adapter was switched on")
    assert not lora_runtime.is_loaded(local_llm, foreign.key)
    assert llm_adapter_state(local_llm) is None


@pytest.mark.slow
def test_wrong_shapes_leave_the_model_untouched(local_llm, trained) -> None:
    adapter = trained["adapter"]
    tensors = adapter.tensors()
    victim = next(k for k in tensors if k.endswith("lora_A.weight"))
    tensors[victim] = tensors[victim][:, :-1].contiguous()
    bad = trained["store"].save(DistilledAdapter("bad-shape", adapter.config, tensors,
                                                 dict(adapter.meta)))
    with pytest.raises(IntegrityError):
        bad.attach(local_llm)
    assert not lora_runtime.is_loaded(local_llm, bad.key)
    question = FACTS[2][1]
    assert _ask(local_llm, question) == trained["base"][question]


@pytest.mark.slow
def test_cancelled_job_saves_nothing_and_cleans_the_model(local_llm, trained,
                                                         tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    before = lora_runtime.loaded_keys(local_llm)
    started = threading.Event()
    job = start_distill(store, local_llm, trained["items"], "cancelled", steps=500,
                              batch_size=1, progress=lambda p: started.set())
    assert started.wait(300)
    job.cancel()
    with pytest.raises(Conflict):
        job.result(timeout=300)
    assert job.progress.step < 500 and store.names() == []
    assert lora_runtime.loaded_keys(local_llm) == before  # the training slot is gone
    assert not any(k.startswith(lora_runtime.TRAINING) for k in before)
    in_model = {k for m in local_llm.model.modules() if hasattr(m, "lora_A") for k in m.lora_A}
    assert len(in_model) == len(before)
    with pytest.raises(InvalidInput):  # bad input is refused before any thread starts
        DistillJob.start(local_llm, trained["items"], "x", steps=0)
    with pytest.raises(InvalidInput):
        distill(local_llm, [], "x")


# -- the scheduler's parametric tier ---------------------------------------------------------
def test_adapter_names_for_scopes() -> None:
    from memvault.parametric.tier import adapter_name

    assert adapter_name({"user_id": "alice", "agent_id": None}) == "user-alice"
    assert adapter_name({"user_id": "a", "agent_id": "bot"}) == "user-a_agent-bot"
    odd = adapter_name({"user_id": "ålice/../x"})
    assert odd.startswith("scope-") and odd == adapter_name({"user_id": "ålice/../x"})
    with pytest.raises(InvalidInput):
        adapter_name({"user_id": None})


@pytest.mark.slow
def test_redistilling_keeps_active_sources_and_drops_forgotten_ones(local_llm, tmp_path):
    from memvault.parametric.tier import AdapterTier
    from memvault.scheduler.tiers import ParametricTier

    vault = Vault(tmp_path / "v.db", embedder="hash")
    kept, forgotten, new = (vault.add(t, kind="fact", user_id="u9") for t, _, _ in FACTS)
    tier = AdapterTier(AdapterStore(tmp_path / "adapters"), local_llm, vault=vault,
                       steps=1, batch_size=2, retention=False)
    assert isinstance(tier, ParametricTier) and tier.adapter_for({"user_id": "u9"}) is None
    tier.jobs[tier.queue({"user_id": "u9"}, [kept, forgotten])].result(timeout=600)
    vault.delete(forgotten.id)
    tier.jobs[tier.queue({"user_id": "u9"}, [new])].result(timeout=600)
    adapter = tier.adapter_for({"user_id": "u9"})
    assert sorted(s["id"] for s in adapter.sources) == sorted([kept.id, new.id])
    assert adapter.name == "user-u9" and AdapterStore(tmp_path / "adapters").names() == ["user-u9"]
    vault.close()


# -- command line ----------------------------------------------------------------------------
def _cli(db: Path, *args: str, code: int = 0):
    from click.testing import CliRunner

    from memvault.cli import cli

    result = CliRunner().invoke(cli, ["--db", str(db), "--embedder", "hash", *args])
    assert result.exit_code == code, result.output
    return result


def test_cli_lists_and_deletes_adapters_next_to_the_vault(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    AdapterStore(tmp_path / "v.db.adapters").save(_fake_adapter("alice"))
    doc = json.loads(_cli(db, "adapter", "list", "--json").output)
    assert [(d["name"], d["sources"]) for d in doc] == [("alice", 1)]
    assert "error [not_found]" in _cli(db, "adapter", "delete", "bob", code=2).output
    _cli(db, "adapter", "delete", "alice")
    assert json.loads(_cli(db, "adapter", "list", "--json").output) == []


@pytest.mark.slow
def test_cli_distills_a_scope_and_answers_with_it(local_llm, tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    for text, _, _ in FACTS:
        _cli(db, "add", text, "--user", "u1", "--kind", "fact")
    _cli(db, "add", "not mine", "--user", "u2")
    doc = json.loads(_cli(db, "adapter", "distill", "u1", "--user", "u1", "--steps", "1",
                          "--no-retention", "--json").output)
    assert doc["name"] == "u1" and doc["sources"] == 3 and doc["steps"] == 1
    assert "error [conflict]" in _cli(db, "adapter", "distill", "u1", "--user", "u1",
                                      code=2).output
    answer = json.loads(_cli(db, "adapter", "ask", "u1", FACTS[0][1], "--compare",
                             "--max-tokens", "8", "--json").output)
    assert answer["adapter"] == doc["key"] and {"answer", "base_answer"} <= set(answer)
    assert llm_adapter_state(local_llm) is None
