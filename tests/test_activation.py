"""Activation memory: KV-cache blocks built, stored (fp16 safetensors), injected, refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from memvault.activation.blocks import (ActivationBlock, ActivationStore, block_hash,
                                      build_block, entries_for, stale_ids)
from memvault.errors import IntegrityError, ModelError
from memvault.models.local import LocalLLM, ModelFingerprint

from forward_probe import fed_tokens

FACTS = [f"The user's locker number {i} holds a {colour} {thing}."
         for i, (colour, thing) in enumerate(
             [(c, t) for c in ("red", "blue", "green", "amber") for t in
              ("kite", "lamp", "violin", "teapot", "compass")])]
PREFIX = [{"role": "system", "content": "You are a helpful assistant.\n\nWhat you know "
           "about the user:\n" + "\n".join(f"- {f}" for f in FACTS)}]
QUESTION = {"role": "user", "content": "What does locker number 7 hold?"}


def _fake_fingerprint(tag: str = "x") -> ModelFingerprint:
    return ModelFingerprint("LlamaForCausalLM", tag * 64, "float32", "t" * 64)


def _block_over(items, fingerprint: ModelFingerprint | None = None) -> ActivationBlock:
    fp = fingerprint or _fake_fingerprint()
    ids = (1, 2, 3)
    return ActivationBlock(hash=block_hash(fp, ids, None), fingerprint=fp,
                           messages=({"role": "system", "content": "x"},), token_ids=ids,
                           entries=entries_for(items))


# -- no model needed ----------------------------------------------------------------------
def test_block_goes_stale_when_a_memory_changes_or_goes(vault) -> None:
    a, b, c = (vault.add(t, kind="fact", user_id="u") for t in ("likes tea", "lives in Oslo",
                                                                   "has a cat"))
    block = _block_over([a, b, c])
    assert stale_ids(block, vault.store) == []
    vault.update(a.id, "likes coffee")
    vault.delete(b.id)
    assert stale_ids(block, vault.store) == [a.id, b.id]
    fresh = _block_over([vault.get(a.id), c])
    assert stale_ids(fresh, vault.store) == []
    vault.archive(c.id)
    assert stale_ids(fresh, vault.store) == [c.id]
    vault.purge(c.id)
    assert stale_ids(block, vault.store) == [a.id, b.id, c.id]


def test_prune_deletes_only_blocks_whose_memories_changed(vault, tmp_path) -> None:
    import torch

    from memvault.activation.blocks import LoadedBlock

    a, b = vault.add("likes tea", kind="fact", user_id="u"), vault.add("has a cat", kind="fact",
                                                                       user_id="u")
    kv = [(torch.zeros(1, 1, 3, 2), torch.ones(1, 1, 3, 2))]
    store = ActivationStore(tmp_path / "act")
    fp_a, fp_b = _fake_fingerprint("a"), _fake_fingerprint("b")  # two models
    keep = store.save(LoadedBlock(_block_over([b], fp_a), kv), name="b")
    drop = store.save(LoadedBlock(_block_over([a, b], fp_b), kv), name="ab")
    assert {x.hash for x in store.all_blocks()} == {keep.hash, drop.hash}
    assert store.prune(vault.store) == []
    vault.update(a.id, "likes coffee")
    assert store.prune(vault.store) == [drop.hash]
    assert [x.hash for x in store.all_blocks()] == [keep.hash]
    assert store.get(fp_b, "ab") is None and store.get(fp_a, "b") == keep


def test_block_entry_round_trips_and_rejects_tampering() -> None:
    block = _block_over([])
    assert ActivationBlock.from_dict(json.loads(json.dumps(block.to_dict()))) == block
    forged = {**block.to_dict(), "token_ids": [1, 2, 4]}  # content no longer matches hash
    with pytest.raises(IntegrityError):
        ActivationBlock.from_dict(forged)
    with pytest.raises(IntegrityError):
        ActivationBlock.from_dict({**block.to_dict(), "format": 99})


# -- the real model -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(local_llm, tmp_path_factory):
    """A block of the 20 facts, saved to disk, with the store's root."""
    root = tmp_path_factory.mktemp("activation")
    store = ActivationStore(root)
    block = store.save(build_block(local_llm, PREFIX), name="facts")
    return root, block


@pytest.mark.slow
def test_injected_block_is_token_identical_to_recompute_and_left_unchanged(local_llm, saved
                                                                           ) -> None:
    import torch

    root, block = saved
    path = root / block.fingerprint.key / f"{block.hash}.safetensors"
    file_digest = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = ActivationStore(root).load(local_llm, block)  # from disk: fp16 round trip
    before = [(k.clone(), v.clone()) for k, v in loaded.kv]
    ids = local_llm.encode_chat([*PREFIX, QUESTION])
    assert loaded.matches_prefix(ids) and block.n_tokens > 300

    n, cached = int(ids.shape[1]), block.n_tokens
    with fed_tokens(local_llm.model) as plain:
        recomputed = local_llm.generate_ids(ids, max_tokens=12).tolist()
    with fed_tokens(local_llm.model) as with_cache:
        first = local_llm.generate_ids(ids, max_tokens=12,
                                       cache=loaded.fresh_cache(local_llm))
    second = local_llm.generate_ids(ids, max_tokens=12,
                                    cache=loaded.fresh_cache(local_llm))
    assert first.tolist() == recomputed == second.tolist()
    # equal output cannot tell a used cache from an ignored one; the work can: with the
    # cache the prefill feeds only the tokens after the block, then one token per step
    assert plain[0] == n and with_cache[0] == n - cached
    assert with_cache[1:] == [1] * (len(first) - 1) and sum(with_cache) == sum(plain) - cached
    assert all(torch.equal(k, k0) and torch.equal(v, v0)
               for (k, v), (k0, v0) in zip(loaded.kv, before))
    assert all(k.shape[-2] == block.n_tokens for k, _ in loaded.kv)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == file_digest
    # fp16 on disk: 2 bytes x (keys + values) x layers x kv-heads x head_dim per token
    cfg = local_llm.model.config
    per_token = 2 * 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim
    assert path.stat().st_size == pytest.approx(per_token * block.n_tokens, rel=0.02)


@pytest.mark.slow
def test_a_prompt_that_does_not_start_with_the_block_is_recomputed(local_llm, saved) -> None:
    from memvault.chat import ChatResult, _generate_local

    root, block = saved
    loaded = ActivationStore(root).load(local_llm, block)
    other = [{"role": "system", "content": "You are terse."}, QUESTION]
    result = ChatResult(answer="", model=local_llm.id, activation="used")
    with fed_tokens(local_llm.model) as fed:
        answer = _generate_local(local_llm, other, loaded, 6, result)
    assert result.activation.startswith("recomputed") and result.cached_tokens == 0
    assert fed[0] == result.prompt_tokens  # the whole prompt, no stale cache underneath
    assert answer == local_llm.complete(other, max_tokens=6)


@pytest.mark.slow
def test_a_block_from_another_model_fingerprint_is_refused(local_llm, saved, tmp_path) -> None:
    import shutil

    root, block = saved
    other_fp = dataclasses.replace(local_llm.fingerprint, weights_sha256="0" * 64)
    other = LocalLLM(local_llm.model, local_llm.tokenizer, other_fp, "other")
    store = ActivationStore(root)
    with pytest.raises(ModelError, match="built for model"):
        store.load(other, block)
    with pytest.raises(ModelError):
        store.load(local_llm, block).fresh_cache(other)
    assert store.get(other_fp, "facts") is None and store.get(local_llm.fingerprint, "facts")
    # the same files moved under the other model's directory are refused too
    copy = tmp_path / "copy"
    shutil.copytree(root / block.fingerprint.key, copy / other_fp.key)
    with pytest.raises(IntegrityError):
        ActivationStore(copy).entry(other_fp, block.hash)


@pytest.mark.slow
def test_a_corrupted_block_file_is_refused(local_llm, saved, tmp_path) -> None:
    import shutil

    root, block = saved
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    path = copy / block.fingerprint.key / f"{block.hash}.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        ActivationStore(copy).load(local_llm, block)
    store = ActivationStore(copy)
    store.delete(block)
    assert store.get(block.fingerprint, "facts") is None and not path.exists()
    assert not list(Path(copy).rglob("*.tmp"))
