"""Routing by budget: a scope whose memories fit ``chat_all_within`` tokens is served whole
from its cached prefix; above it, retrieval (``Vault.chat`` with the bundled model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memvault import Vault
from memvault.activation.compose import ChunkCache, Composition, prompt_pieces
from memvault.chat import MEMORY_MARKER, memory_lines, user_message
from memvault.activation.tier import system_messages
from memvault.errors import ConfigurationError
from memvault.settings import CHAT_ALL_WITHIN, Settings
from memvault.types import SearchHit

MEMORIES = ["Alice keeps her violin in the hall cupboard.",
            "Bob sold his red bicycle in March.",
            "The user's dentist appointment is on Friday.",
            "Carmen moved to Porto last year."]
QUESTION = "Where does Alice keep her violin?"


def _tokens(route: str) -> int:
    m = re.fullmatch(r"all: \d+ memories, (\d+) tokens <= \d+", route)
    assert m, route
    return int(m.group(1))


def test_the_setting_has_the_measured_default_and_refuses_bad_values() -> None:
    assert Settings().chat_all_within == CHAT_ALL_WITHIN > 0
    for bad in (-1, 40_000, 1.5, True, "512"):
        with pytest.raises(ConfigurationError) as err:
            Settings(chat_all_within=bad)
        assert err.value.code == "configuration_error"
    assert Settings.from_env({"MEMVAULT_CHAT_ALL_WITHIN": "0"}).chat_all_within == 0
    with pytest.raises(ConfigurationError):
        Settings.from_env({"MEMVAULT_CHAT_ALL_WITHIN": "lots"})


def test_chat_switches_from_all_to_retrieval_at_the_threshold(local_llm, tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    with Vault(db, embedder="hash") as vault:  # the default threshold
        for text in MEMORIES:
            vault.add(text, user_id="u1")
        whole = vault.chat(QUESTION, llm=local_llm, user_id="u1", k=2, max_tokens=2)
        assert whole.route.startswith("all: 4 memories,")
        assert [h.item.text for h in whole.memories] == MEMORIES  # oldest first, not k
        assert whole.activation == "prefix: 0 memories reused, 4 computed"
        used = _tokens(whole.route)
        assert used <= CHAT_ALL_WITHIN
        # nothing is served whole when no plaintext memories are asked for, or without
        # activation memory
        assert vault.chat(QUESTION, llm=local_llm, user_id="u1", k=0, max_tokens=1
                          ).route == "retrieval"
        assert vault.chat(QUESTION, llm=local_llm, user_id="u1", k=2, max_tokens=1,
                          activation=False).route == "retrieval"
    # exactly at the threshold: all; one token below: retrieval (k memories)
    with Vault(db, embedder="hash", settings=Settings(chat_all_within=used)) as vault:
        at = vault.chat(QUESTION, llm=local_llm, user_id="u1", k=2, max_tokens=1)
        assert at.route == f"all: 4 memories, {used} tokens <= {used}"
    with Vault(db, embedder="hash", settings=Settings(chat_all_within=used - 1)) as vault:
        below = vault.chat(QUESTION, llm=local_llm, user_id="u1", k=2, max_tokens=1)
        assert below.route == "retrieval" and len(below.memories) == 2
        # a Composition given per call overrides the setting
        over = vault.chat(QUESTION, llm=local_llm, user_id="u1", k=2, max_tokens=1,
                          activation=Composition(all_within=used))
        assert over.route.startswith("all: 4 memories")
    with Vault(db, embedder="hash", settings=Settings(chat_all_within=0)) as vault:
        assert vault.chat(QUESTION, llm=local_llm, user_id="u1", k=2, max_tokens=1
                          ).route == "retrieval"


def test_the_cached_prefix_gives_the_full_context_answer_and_grows_by_appending(
        local_llm, tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        for text in MEMORIES:
            vault.add(text, user_id="u1")
        cache = ChunkCache()
        how = Composition(cache=cache, all_within=4096)
        first = vault.chat(QUESTION, llm=local_llm, user_id="u1", max_tokens=12, activation=how)
        again = vault.chat(QUESTION, llm=local_llm, user_id="u1", max_tokens=12, activation=how)
        assert again.activation == "prefix: 4 memories reused, 0 computed"
        assert again.cached_tokens == first.cached_tokens and again.answer == first.answer
        # the full prefill of the same prompt, no cache: the same reply
        hits = [SearchHit(item=i, score=1.0, rank=r) for r, i in enumerate(
            vault.list(user_id="u1", order="created_asc").items)]
        messages = [*system_messages([]), user_message(QUESTION, hits)]
        head, chunks, tail = prompt_pieces(local_llm, messages, memory_lines(hits),
                                           MEMORY_MARKER)
        import torch

        ids = torch.tensor([[*head, *(t for c in chunks for t in c), *tail]])
        assert again.prompt_tokens == ids.shape[-1]
        assert again.answer == local_llm.decode(local_llm.generate_ids(ids, max_tokens=12)
                                                ).strip()
        vault.add("Dmitri's kayak is blue.", user_id="u1")  # one more memory: only it is new
        grown = vault.chat(QUESTION, llm=local_llm, user_id="u1", max_tokens=2, activation=how)
        assert grown.activation == "prefix: 4 memories reused, 1 computed"
        assert grown.route.startswith("all: 5 memories")


def test_the_chunk_cache_keeps_to_its_byte_bound(local_llm) -> None:
    head = local_llm.encode("Memories that may help:\n")[0].tolist()
    chunks = [local_llm.encode(f"- {text}\n")[0].tolist() for text in MEMORIES]
    roomy = ChunkCache()
    kv, reused = roomy.prefix(local_llm, head, chunks)
    assert reused == 0 and kv[0][0].shape[2] == len(head) + sum(map(len, chunks))
    assert roomy.prefix(local_llm, head, chunks)[1] == 4 and len(roomy) == 4
    bound = roomy.nbytes // 2
    tight = ChunkCache(max_bytes=bound)
    tight.prefix(local_llm, head, chunks)
    assert 0 < tight.nbytes <= bound and len(tight) < 4
    assert tight.prefix(local_llm, head, chunks)[1] == 0  # the first chunks went first
