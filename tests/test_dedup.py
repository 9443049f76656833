"""``Vault.add(dedup=...)``: near-duplicate writes with the bundled MiniLM embedder.

Why: three rewordings of one fact used to make three memories, and a dedup by cosine
alone would merge "two cats" into "three cats" (MiniLM: 0.97). These pin both sides: the
rewordings merge, the facts that differ in a value do not, other owners never do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from memvault import InvalidInput, Vault
from memvault.retrieval.dedup import same_values
from memvault.retrieval.config import SearchConfig
from memvault.errors import ConfigurationError


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    v = Vault(tmp_path_factory.mktemp("dedup") / "vault.db", embedder="minilm")
    yield v
    v.close()


def test_three_rewordings_make_one_memory(vault: Vault) -> None:
    texts = ["Tom works as a nurse at the city hospital.",
             "Tom is a nurse at the city hospital.",
             "Tom works as a nurse at the city hospital"]
    kept = [vault.add(t, kind="fact", user_id="u1", dedup="noop") for t in texts]
    assert {k.id for k in kept} == {kept[0].id}
    assert vault.count(user_id="u1") == 1
    assert vault.get(kept[0].id).text == texts[0]  # noop writes nothing


def test_default_off_keeps_every_write(vault: Vault) -> None:
    for t in ("Ana owns two cats.", "Ana has two cats."):
        vault.add(t, kind="fact", user_id="u2")
    assert vault.count(user_id="u2") == 2


def test_a_changed_value_is_not_a_duplicate(vault: Vault) -> None:
    a = vault.add("Ben has two cats.", kind="fact", user_id="u3", dedup="noop")
    b = vault.add("Ben has three cats.", kind="fact", user_id="u3", dedup="noop")
    c = vault.add("The meeting with Ben is on Thursday.", kind="fact", user_id="u3",
                  dedup="noop")
    d = vault.add("The meeting with Ben is on Tuesday.", kind="fact", user_id="u3",
                  dedup="noop")
    assert len({a.id, b.id, c.id, d.id}) == 4


def test_version_writes_the_restatement_as_the_next_version(vault: Vault) -> None:
    a = vault.add("Maya lives in Lisbon.", kind="fact", user_id="u4", tags=["home"])
    b = vault.add("Maya resides in Lisbon.", kind="fact", user_id="u4", dedup="version")
    assert b.id == a.id and b.version == 2 and b.text == "Maya resides in Lisbon."
    assert [h.text for h in vault.history(a.id)] == ["Maya lives in Lisbon.",
                                                     "Maya resides in Lisbon."]
    assert vault.audit(item_id=a.id)[-1].details["reason"].startswith("restated")
    assert vault.count(user_id="u4") == 1


def test_other_owners_and_kinds_never_merge(vault: Vault) -> None:
    a = vault.add("Zoe plays the violin.", kind="fact", user_id="u5")
    assert vault.add("Zoe plays the violin.", kind="fact", user_id="u6", dedup="noop").id != a.id
    assert vault.add("Zoe plays the violin.", kind="fact", dedup="noop").id != a.id
    assert vault.add("Zoe plays the violin.", kind="note", user_id="u5",
                     dedup="noop").id != a.id
    assert vault.add("Zoe plays the violin.", kind="fact", user_id="u5",
                     dedup="noop").id == a.id


def test_deleted_memories_are_not_matched(vault: Vault) -> None:
    a = vault.add("Liam collects stamps.", kind="fact", user_id="u7")
    vault.delete(a.id)
    b = vault.add("Liam collects stamps.", kind="fact", user_id="u7", dedup="noop")
    assert b.id != a.id and b.status == "active"


def test_bad_input_is_refused_and_nothing_is_written(vault: Vault) -> None:
    before = vault.count()
    with pytest.raises(InvalidInput) as bad:
        vault.add("x", dedup="merge")
    assert bad.value.code == "invalid_input" and "noop" in bad.value.message
    with pytest.raises(InvalidInput):
        vault.add("x", id="chosen-1", dedup="noop")
    with pytest.raises(InvalidInput):
        vault.add("x", dedup=None)  # type: ignore[arg-type]
    assert vault.count() == before
    with pytest.raises(ConfigurationError):
        SearchConfig(dedup_threshold=1.5)


def test_same_values_reads_numbers_names_negation_and_states() -> None:
    assert same_values("Ana has two cats.", "Ana owns two cats.")
    assert not same_values("Ana has two cats.", "Ana has 2 cats and a dog named Rex.")
    assert not same_values("Ben likes tea.", "Ben does not like tea.")
    assert not same_values("Maya lives in Lisbon.", "Maya lives in Porto.")
    assert not same_values("Tom works as a nurse.", "Tom works as a teacher.")
    assert same_values("The cat sleeps.", "A cat is sleeping.")
