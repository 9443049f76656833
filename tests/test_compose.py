"""Blocks composed in any order: per-chunk KV, RoPE re-rotation, tail recompute (issue 26.3)."""

from __future__ import annotations

import pytest

from memvault import Vault
from memvault.activation.compose import (ChunkCache, Composition, _inv_freq, compose,
                                         prompt_pieces, rerotate)
from memvault.chat import MEMORY_MARKER, memory_lines, system_messages, user_message
from memvault.errors import ConfigurationError, InvalidInput
from memvault.settings import Settings

MEMORIES = ["Alice keeps a violin in a flat in Porto.",
            "Bob sold his kayak last June after the storm.",
            "Carmen's sister moved to Oslo to study marine biology."]


def test_rerotation_composes_like_positions_add() -> None:
    import torch

    torch.manual_seed(0)
    inv = 1.0 / (10000 ** (torch.arange(0, 16, 2, dtype=torch.float32) / 16))
    keys = torch.randn(1, 2, 5, 16)
    assert torch.equal(rerotate(keys, 0, inv), keys)
    twice = rerotate(rerotate(keys, 7, inv), 11, inv)
    assert torch.allclose(twice, rerotate(keys, 18, inv), atol=1e-5)
    assert torch.allclose(rerotate(rerotate(keys, 9, inv), -9, inv), keys, atol=1e-5)
    assert not torch.allclose(rerotate(keys, 3, inv), keys)
    with pytest.raises(InvalidInput):
        Composition(recompute=1.5)
    with pytest.raises(InvalidInput):
        Composition(recompute=True)
    for bad in (0, -5, 10**6, 1.5, True):
        with pytest.raises(InvalidInput):
            Composition(all_within=bad)
    with pytest.raises(InvalidInput):
        Composition(select="random")
    for bad in (-1, True, 5000, 1.5):
        with pytest.raises(InvalidInput):
            Composition(firsts=bad)


def test_chat_compose_setting_parses_and_rejects_bad_values() -> None:
    assert Settings().chat_compose is None  # off by default
    assert Settings.from_env({"MEMVAULT_CHAT_COMPOSE": "0.3"}).chat_compose == 0.3
    assert Settings.from_env({"MEMVAULT_CHAT_COMPOSE": "off"}).chat_compose is None
    for raw in ("lots", "1.5", "-0.1"):
        with pytest.raises(ConfigurationError):
            Settings.from_env({"MEMVAULT_CHAT_COMPOSE": raw})
    for bad in (True, 2, -0.5, "0.2"):
        with pytest.raises(ConfigurationError):
            Settings(chat_compose=bad)


def _forward(llm, ids, *, positions=None, cache=None):
    import torch

    with torch.inference_mode():
        x = torch.tensor([ids])
        pos = None if positions is None else torch.tensor([positions])
        return llm.model(x, position_ids=pos, cache=cache, use_cache=True)


@pytest.mark.slow
def test_one_chunk_moved_by_rerotation_equals_its_prefill_at_the_new_offset(local_llm) -> None:
    """A chunk computed after the head at positions h.., re-rotated by d, is the chunk of
    a prefill of the same tokens at positions d.. (every layer: only relative positions
    shape the hidden states, so only the keys' own rotation changes)."""
    import torch

    head, chunks, tail = _pieces(local_llm, [0])
    chunk, _ = ChunkCache().chunk(local_llm, head, chunks[0])
    inv = _inv_freq(local_llm)
    n = len(head) + len(chunks[0])
    for delta in (1, 37, 300):
        moved = _forward(local_llm, head + chunks[0],
                         positions=list(range(delta, delta + n))).cache
        for layer in (0, 1, 15, len(moved.layers) - 1):
            want = moved.layers[layer].keys[:, :, len(head):]
            got = rerotate(chunk.kv[layer][0], delta, inv)
            assert torch.allclose(got, want, atol=2e-4), (delta, layer)
            assert torch.allclose(chunk.kv[layer][1], moved.layers[layer].values[:, :, len(head):],
                                  atol=2e-4)
    # one chunk composed in place: logits of the prompt's last token = a full prefill's
    full = head + chunks[0] + tail
    want = _forward(local_llm, full).logits[0, -1]
    for select in ("tail", "deviation"):
        c = compose(local_llm, head, chunks, tail, recompute=0.0, select=select)
        got = _forward(local_llm, full[c.cached:], cache=c.cache).logits[0, -1]
        assert torch.allclose(got, want, atol=1e-3), select


@pytest.mark.slow
def test_selective_recompute_is_exact_at_one_and_repairs_below(local_llm) -> None:
    import torch

    head, chunks, tail = _pieces(local_llm, [2, 0, 1])
    full = head + [t for c in chunks for t in c] + tail
    ref = _forward(local_llm, full)
    want = ref.logits[0, -1].log_softmax(-1)
    cache = ChunkCache()

    def kl(c):
        got = _forward(local_llm, full[c.cached:], cache=c.cache).logits[0, -1].log_softmax(-1)
        return float((want.exp() * (want - got)).sum())

    exact = compose(local_llm, head, chunks, tail, recompute=1.0, cache=cache,
                    select="deviation")
    assert exact.cached == len(full) - 1 and exact.recomputed == exact.chunk_tokens
    for layer in (1, 15, 29):  # every token's KV is the full prefill's
        assert torch.allclose(exact.cache.layers[layer].keys,
                              ref.cache.layers[layer].keys[:, :, :-1], atol=1e-3)
        assert torch.allclose(exact.cache.layers[layer].values,
                              ref.cache.layers[layer].values[:, :, :-1], atol=1e-3)
    assert kl(exact) < 1e-5
    none = compose(local_llm, head, chunks, tail, recompute=0.0, cache=cache,
                   select="deviation")
    half = compose(local_llm, head, chunks, tail, recompute=0.5, cache=cache,
                   select="deviation", firsts=4)
    assert none.recomputed == 0 and half.recomputed == round(0.5 * half.chunk_tokens)
    assert none.reused_chunks == 3 and none.new_chunks == 0
    assert kl(half) < kl(none) and kl(none) > 1e-3  # stitching alone is not exact
    with pytest.raises(InvalidInput):
        compose(local_llm, head, chunks, tail, select="nearest", cache=cache)


def _pieces(llm, order):
    from memvault.types import MemoryItem, SearchHit

    hits = [SearchHit(item=MemoryItem(id=f"m{i}", text=MEMORIES[i]), score=1.0, rank=r) for r, i in enumerate(order)]
    messages = [*system_messages([], "Answer from the memories."),
                user_message("Where does Alice keep her violin?", hits)]
    return prompt_pieces(llm, messages, memory_lines(hits), MEMORY_MARKER)


@pytest.mark.slow
def test_placed_chunks_match_a_full_prefill_where_they_must(local_llm) -> None:
    import torch

    head, chunks, tail = _pieces(local_llm, [2, 0, 1])
    full = torch.tensor([head + [t for c in chunks for t in c] + tail])
    reference = local_llm.prefill(full)
    cache = ChunkCache()
    composed = compose(local_llm, head, chunks, tail, recompute=0.0, cache=cache)
    assert composed.input_ids.tolist() == full.tolist() and composed.new_chunks == 3
    n0 = len(head) + len(chunks[0])
    # the first chunk was computed right after the head: exact in every layer
    got, ref = composed.cache.layers[5].keys, reference.layers[5].keys
    assert torch.allclose(got[:, :, :n0], ref[:, :, :n0], atol=1e-4)
    # later chunks were moved by RoPE re-rotation: layer 0 (no cross-token mixing) exact
    assert torch.allclose(composed.cache.layers[0].keys[:, :, n0:],
                          reference.layers[0].keys[:, :, n0:composed.cached], atol=1e-4)
    # ... but in deeper layers they miss the earlier chunks (what recompute repairs)
    assert not torch.allclose(got[:, :, n0:], ref[:, :, n0:composed.cached], atol=1e-3)
    # recompute everything: greedy output identical to the full prefill
    want = local_llm.generate_ids(full, max_tokens=16).tolist()
    again = compose(local_llm, head, chunks, tail, recompute=1.0, cache=cache)
    assert again.reused_chunks == 3 and again.cached == len(head)
    assert local_llm.generate_ids(again.input_ids, max_tokens=16,
                                  cache=again.cache).tolist() == want
    with pytest.raises(InvalidInput):
        compose(local_llm, head, chunks, [], cache=cache)


@pytest.mark.slow
def test_vault_chat_composes_retrieved_chunks_and_reuses_them(local_llm, tmp_path) -> None:
    vault = Vault(tmp_path / "v.db", embedder="hash")
    try:
        for text in MEMORIES:
            vault.add(text, kind="fact", user_id="u1")
        cache = ChunkCache()
        how = Composition(recompute=0.5, cache=cache)
        first = vault.chat("Where does Alice keep her violin?", llm=local_llm, user_id="u1",
                           k=3, max_tokens=12, activation=how)
        assert first.activation.startswith("composed: 0 chunks reused, 3 computed")
        assert len(cache) == 3 and first.cached_tokens < first.prompt_tokens
        # another question, the same memories in another order: nothing new to compute
        second = vault.chat("What did Bob sell?", llm=local_llm, user_id="u1", k=3,
                            max_tokens=8, activation=how)
        assert second.activation.startswith("composed: 3 chunks reused, 0 computed")
        assert {h.item.id for h in second.memories} == {h.item.id for h in first.memories}
        assert "recomputed (50%, deviation)" in second.activation
        # recompute 1: the answer is the full prefill's (chat without activation memory)
        exact = vault.chat("What did Bob sell?", llm=local_llm, user_id="u1", k=3,
                           max_tokens=8, activation=Composition(1.0, cache))
        plain = vault.chat("What did Bob sell?", llm=local_llm, user_id="u1", k=3,
                           max_tokens=8, activation=False)
        tail = vault.chat("What did Bob sell?", llm=local_llm, user_id="u1", k=3,
                          max_tokens=8, activation=Composition(1.0, cache, select="tail"))
        assert tail.cached_tokens < second.cached_tokens and tail.answer == plain.answer
        assert exact.prompt_tokens == plain.prompt_tokens and exact.answer == plain.answer
        assert exact.route == "retrieval"

        # routing by budget: a history that fits is served whole, without retrieval
        vault.add("The weather in Lima was mild all week.", kind="fact", user_id="u1")
        whole = vault.chat("What did Bob sell?", llm=local_llm, user_id="u1", k=1,
                           max_tokens=4, activation=Composition(0.0, cache, all_within=512))
        assert whole.route.startswith("all: 4 memories,") and len(whole.memories) == 4
        assert [h.item.text for h in whole.memories][0] == MEMORIES[0]  # oldest first
        # served from the exact cached prefix (tests/test_routing.py), not composed chunks
        assert whole.activation == "prefix: 0 memories reused, 4 computed"
        tight = vault.chat("What did Bob sell?", llm=local_llm, user_id="u1", k=1,
                           max_tokens=4, activation=Composition(0.0, cache, all_within=20))
        assert tight.route == "retrieval" and len(tight.memories) == 1
        assert vault.chat("What did Bob sell?", llm=local_llm, user_id="u2", k=1,
                          max_tokens=2, activation=Composition(0.0, cache, all_within=512)
                          ).route == "retrieval"  # nothing stored: nothing to serve whole
    finally:
        vault.close()


@pytest.mark.slow
def test_chat_compose_setting_turns_composition_on_for_plain_chat(local_llm, tmp_path) -> None:
    vault = Vault(tmp_path / "v.db", embedder="hash",
                  settings=Settings(chat_compose=1.0, chat_all_within=0))
    try:
        for text in MEMORIES:
            vault.add(text, kind="fact", user_id="u1")
        on = vault.chat("Where does Alice keep her violin?", llm=local_llm, user_id="u1",
                        k=3, max_tokens=8)
        assert on.activation.startswith("composed: ") and "(100%, deviation)" in on.activation
        again = vault.chat("What did Bob sell?", llm=local_llm, user_id="u1", k=3,
                           max_tokens=8)
        assert "3 chunks reused, 0 computed" in again.activation
        plain = vault.chat("What did Bob sell?", llm=local_llm, user_id="u1", k=3,
                           max_tokens=8, activation=False)
        assert again.answer == plain.answer  # recompute 1: the full prefill's reply
    finally:
        vault.close()
    off = Vault(tmp_path / "w.db", embedder="hash", settings=Settings(chat_all_within=0))
    try:
        off.add(MEMORIES[0], kind="fact", user_id="u1")
        got = off.chat("Where does Alice keep her violin?", llm=local_llm, user_id="u1",
                       k=1, max_tokens=4)
        assert not got.activation.startswith("composed")
    finally:
        off.close()
