"""All three kinds of memory end to end, on the real SmolLM2 and a real SQLite vault.

Hot plaintext -> the scheduler (``scheduler.for_vault``) promotes it into an activation
block and distils it into the scope's LoRA adapter -> ``Vault.chat`` uses the block as
``past_key_values`` under that adapter, by default -> an update makes the block stale and
chat rebuilds it -> deleting the memories makes the next pass demote the block. Every
move is in the audit log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memvault import Vault
from memvault.chat import block_name, default_activation_store, default_adapter_store
from memvault.parametric.tier import adapter_name
from memvault.parametric import runtime as lora_runtime
from memvault.scheduler import PlacementConfig, SchedulerConfig, for_vault
from memvault.settings import Settings

SCOPE = {"user_id": "zoe"}
FACTS = ["Zoe's cat is called Miso.", "Zoe's favourite city is Kyoto.",
         "Zoe's employer is Acme Robotics."]
#: placement only, and "stable" from the first second (the default waits a week)
CONFIG = SchedulerConfig(forget=None, link=None, consolidate=None,
                         placement=PlacementConfig(distill_stable_days=0, distill_min_access=3))
TINY = dict(steps=4, batch_size=3, rank=4)  # a real adapter, trained in seconds

#: These scopes are small enough for routing by budget to serve them whole; what is under
#: test here is the scheduler's block, so the route stays retrieval + block.
BLOCK_PATH = Settings(chat_all_within=0)


def _hot(vault: Vault) -> list:
    items = [vault.add(text, kind="fact", **SCOPE) for text in FACTS]
    for _ in range(4):  # recalled often: heat and access counts rise
        for item in items:
            vault.get(item.id)
    vault.flush()
    return items


def _actions(vault: Vault, after: int = 0) -> list[str]:
    return [e.action for e in vault.audit(after=after, limit=1000)]


@pytest.mark.slow
def test_scheduler_promotes_distils_and_chat_uses_all_three(local_llm, tmp_path: Path,
                                                            general_cache: Path) -> None:
    vault = Vault(tmp_path / "vault.db", embedder="hash", settings=BLOCK_PATH)
    try:
        _run(vault, local_llm, general_cache)
    finally:
        vault.close()
    assert lora_runtime.adapter_state(local_llm) is None  # the shared model is left as found


def _run(vault: Vault, llm, general_cache: Path) -> None:
    items = _hot(vault)
    sched = for_vault(vault, llm, CONFIG, **TINY, cache_dir=general_cache)
    assert sched.activation is not None and sched.parametric is not None
    seq = vault.store.last_change()

    place = sched.run_once(vault, wait=True).steps["placement"]
    assert place["errors"] == []
    (queued,), (distilled,), (promoted,) = place["queued"], place["distilled"], place["promoted"]
    assert sorted(queued["items"]) == sorted(i.id for i in items)
    assert distilled["job"] == queued["job"] and distilled["adapter"] == adapter_name(SCOPE)
    assert set(promoted["items"]) == {i.id for i in items}
    actions = _actions(vault, seq)
    assert actions.index("queue_distill") < actions.index("distilled") < actions.index("promote")

    # the adapter is where chat looks, trained on this model from these memories
    adapter = default_adapter_store(vault).get(adapter_name(SCOPE))
    assert adapter.key == distilled["key"] and adapter.fingerprint == llm.fingerprint
    assert {s["id"] for s in adapter.sources} == {i.id for i in items}
    assert adapter.meta["training"]["steps"] == TINY["steps"]
    # measured through chat's topic gate on the vault's embedder: served (>= 0.95)
    assert adapter.meta["retention"]["general"] >= 0.95
    assert adapter.meta["retention"]["gate"]["embedder"] == vault.embedder.id
    # the block is where chat looks: this scope, this model, computed under that adapter
    blocks = default_activation_store(vault)
    block = blocks.get(llm.fingerprint, block_name(SCOPE, adapter.key))
    assert block is not None and block.hash == promoted["block_id"]
    assert block.adapter == adapter.key

    # chat uses all three by default: retrieved text, the block's KV cache, the adapter
    first = vault.chat("What is my cat called?", llm=llm, max_tokens=6, **SCOPE)
    assert first.activation == "used" and first.block == block.hash
    assert 0 < first.cached_tokens < first.prompt_tokens
    assert first.adapter == adapter.key
    assert set(first.block_items) == {i.id for i in items}
    # adapter=False: the base model, whose cache is another block
    plain = vault.chat("What is my cat called?", llm=llm, max_tokens=6, adapter=False, **SCOPE)
    assert plain.adapter is None and plain.block != block.hash
    assert lora_runtime.adapter_state(llm) is None

    # an update makes the block stale: the next chat notices and rebuilds it
    vault.update(items[0].id, "Zoe's cat is called Tofu.")
    second = vault.chat("What is my cat called?", llm=llm, max_tokens=6, **SCOPE)
    assert second.activation == "built" and second.block != block.hash
    assert second.cached_tokens > 0 and second.adapter == adapter.key
    assert blocks.get(llm.fingerprint, block_name(SCOPE, adapter.key)).hash == second.block

    # the next pass sees the change too: the old text leaves the weights (re-distilled
    # from the current versions) and the block is rebuilt under the new adapter
    place = sched.run_once(vault, wait=True).steps["placement"]
    assert place["errors"] == []
    (requeued,), (redistilled,) = place["queued"], place["distilled"]
    assert requeued["changed"] == [items[0].id]
    adapter = default_adapter_store(vault).get(adapter_name(SCOPE))
    assert adapter.key == redistilled["key"] != first.adapter
    assert {(s["id"], s["version"]) for s in adapter.sources} == {
        (items[0].id, 2), (items[1].id, 1), (items[2].id, 1)}
    (promoted,) = place["promoted"]
    block = blocks.get(llm.fingerprint, block_name(SCOPE, adapter.key))
    assert block is not None and block.hash == promoted["block_id"]
    assert second.block not in {b.hash for b in blocks.all_blocks()}  # replaced, not orphaned
    third = vault.chat("Where is my favourite city?", llm=llm, max_tokens=6, **SCOPE)
    assert third.activation == "used" and third.block == block.hash
    assert third.adapter == adapter.key
    # an adapter trained on other weights is never switched on
    meta_path = adapter.path / "memvault.json"
    saved_meta = meta_path.read_text()
    meta = json.loads(saved_meta)
    meta["fingerprint"]["weights_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    assert vault.chat("Hi", llm=llm, max_tokens=2, activation=False, **SCOPE).adapter is None
    meta_path.write_text(saved_meta)

    # the memories go: the next pass demotes the scope's block and deletes its files
    seq = vault.store.last_change()
    for item in items:
        vault.delete(item.id)
    place = sched.run_once(vault, wait=True).steps["placement"]
    assert place["errors"] == []
    (dropped, demoted) = place["demoted"]  # the adapter, then the block
    assert dropped["adapter"] == adapter.key and dropped["reason"] == "its memories are gone"
    assert demoted["reason"] == "nothing hot" and demoted["scope"]["user_id"] == "zoe"
    assert "demote" in _actions(vault, seq)
    assert blocks.get(llm.fingerprint, block_name(SCOPE, adapter.key)) is None
    assert demoted["block_id"] not in {b.hash for b in blocks.all_blocks()}

    # ... and drops the adapter: deleted memories do not live on in the weights
    assert "demote" in [e.action for e in vault.audit(after=seq, limit=1000)
                        if e.details.get("tier") == "parametric"]
    assert default_adapter_store(vault).names() == []
    # every version of the scope's adapter is unloaded from the shared model too
    assert not [k for k in lora_runtime.loaded_keys(llm) if k.startswith("lora:user-zoe:")]
    assert vault.chat("Hi", llm=llm, max_tokens=2, activation=False, **SCOPE).adapter is None


@pytest.mark.slow
def test_a_newer_distillation_supersedes_a_running_one_and_keeps_its_items(
        local_llm, vault: Vault) -> None:
    from memvault.parametric.tier import AdapterTier

    first, second, gone = (vault.add(t, kind="fact", **SCOPE) for t in FACTS)
    tier = AdapterTier(default_adapter_store(vault), local_llm, vault=vault, steps=3,
                       batch_size=2, rank=2, retention=False)
    old = tier.queue(SCOPE, [first, gone])
    vault.delete(gone.id)  # deleted while its job runs: the newer job must not train it
    new = tier.queue(SCOPE, [second])
    docs = {d["job"]: d for d in tier.collect(timeout=None)}
    assert docs[old]["superseded"] and "error" in docs[old]
    assert sorted(docs[new]["items"]) == sorted([first.id, second.id]) and docs[new]["key"]
    adapter = tier.adapter_for(SCOPE)
    assert adapter.key == docs[new]["key"]
    assert sorted(s["id"] for s in adapter.sources) == sorted([first.id, second.id])
    assert tier.collect() == [] and tier.jobs == {}
    assert tier.drop(SCOPE) == adapter.key and tier.adapter_for(SCOPE) is None
    assert tier.drop(SCOPE) is None
    assert not [k for k in lora_runtime.loaded_keys(local_llm) if k.startswith("lora:user-zoe:")]


@pytest.mark.slow
def test_cli_run_once_with_tiers_promotes_where_chat_reads(local_llm, db_path: Path) -> None:
    from click.testing import CliRunner

    from memvault.cli import cli

    with Vault(db_path, embedder="hash", settings=BLOCK_PATH) as v:
        items = _hot(v)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "--embedder", "hash", "scheduler",
                                      "run-once", "--tiers", "--distill-steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    place = json.loads(result.output)["placement"]
    (promoted,) = place["promoted"]
    assert place["queued"] == []  # the default policy distils after a week of stability
    with Vault(db_path, embedder="hash", settings=BLOCK_PATH) as v:
        assert set(promoted["items"]) == {i.id for i in items}
        assert [e.action for e in v.audit(action="promote")] == ["promote"]
        chat = v.chat("What is my cat called?", llm=local_llm, max_tokens=2, **SCOPE)
    assert chat.activation == "used" and chat.block == promoted["block_id"]
    assert chat.adapter is None
