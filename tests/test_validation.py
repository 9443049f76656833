"""Bad input raises a memvault error and changes nothing that was stored."""

from __future__ import annotations

import math

import pytest

from memvault import InvalidInput, MemvaultError, NotFound, Vault


@pytest.fixture
def seeded(vault: Vault):
    item = vault.add("the original memory", user_id="u", metadata={"a": 1})
    snapshot = (vault.count(status="any"), [e.seq for e in vault.audit()])
    return vault, item, snapshot


def unchanged(vault: Vault, item, snapshot) -> None:
    assert (vault.count(status="any"), [e.seq for e in vault.audit()]) == snapshot
    assert vault.get(item.id).text == "the original memory"
    assert vault.get(item.id).version == item.version
    assert vault.check()["ok"]


BAD_ADDS = [
    ({"text": ""}, "empty"),
    ({"text": "   \n\t"}, "blank"),
    ({"text": None}, "none"),
    ({"text": 42}, "int"),
    ({"text": b"bytes"}, "bytes"),
    ({"text": "x" * (64 * 1024 + 1)}, "huge"),
    ({"text": "nul\x00byte"}, "nul"),
    ({"text": "bad surrogate \udc80"}, "surrogate"),
    ({"text": "ok", "kind": "Not A Kind"}, "kind"),
    ({"text": "ok", "kind": 7}, "kind type"),
    ({"text": "ok", "user_id": ""}, "empty scope"),
    ({"text": "ok", "user_id": 5}, "scope type"),
    ({"text": "ok", "user_id": "u" * 300}, "long scope"),
    ({"text": "ok", "metadata": "not a dict"}, "metadata type"),
    ({"text": "ok", "metadata": {"x": float("nan")}}, "metadata nan"),
    ({"text": "ok", "metadata": {"x": object()}}, "metadata object"),
    ({"text": "ok", "metadata": {"x": "y" * 20000}}, "metadata huge"),
    ({"text": "ok", "tags": "notalist"}, "tags str"),
    ({"text": "ok", "tags": [1, 2]}, "tags ints"),
    ({"text": "ok", "tags": ["t"] * 100}, "too many tags"),
    ({"text": "ok", "event_time": "yesterday-ish"}, "bad date"),
    ({"text": "ok", "event_time": 1e15}, "ms epoch"),
    ({"text": "ok", "event_time": "0001-01-01"}, "absurd date"),
    ({"text": "ok", "event_time": math.inf}, "inf date"),
    ({"text": "ok", "importance": 2.0}, "importance"),
    ({"text": "ok", "importance": True}, "importance bool"),
    ({"text": "ok", "id": "has spaces in it"}, "bad id"),
]


@pytest.mark.parametrize("record,why", BAD_ADDS, ids=[w for _, w in BAD_ADDS])
def test_bad_add_is_refused_and_nothing_changes(seeded, record, why) -> None:
    vault, item, snapshot = seeded
    with pytest.raises(InvalidInput):
        vault.add(**record)
    unchanged(vault, item, snapshot)


def test_bad_record_in_batch_writes_none_of_the_batch(seeded) -> None:
    vault, item, snapshot = seeded
    with pytest.raises(InvalidInput):
        vault.add_many(["fine one", "fine two", {"text": ""}])
    with pytest.raises(InvalidInput):
        vault.add_many([{"text": "x", "unknown_field": 1}])
    with pytest.raises(InvalidInput):
        vault.add_many([12])
    unchanged(vault, item, snapshot)


@pytest.mark.parametrize("kwargs", [
    {"query": ""}, {"query": 3}, {"query": "ok", "k": 0}, {"query": "ok", "k": 10**9},
    {"query": "ok", "k": "10"}, {"query": "ok", "k": True},
    {"query": "ok", "filters": {"nope": 1}}, {"query": "ok", "filters": "kind=fact"},
    {"query": "ok", "filters": {"metadata": {"a'; DROP TABLE versions; --": 1}}},
    {"query": "ok", "filters": {"metadata": {"a": [1, 2]}}},
    {"query": "ok", "as_of": "not a date"}, {"query": "ok", "status": "gone"},
    {"query": "ok", "user_id": 7},
])
def test_bad_search_is_refused(seeded, kwargs) -> None:
    vault, item, snapshot = seeded
    with pytest.raises(InvalidInput):
        vault.search(**kwargs)
    unchanged(vault, item, snapshot)


def test_unknown_ids(seeded) -> None:
    vault, item, snapshot = seeded
    for call in (vault.get, vault.history, vault.delete, vault.restore, vault.purge):
        with pytest.raises(NotFound):
            call("0000-no-such-id")
    with pytest.raises(NotFound):
        vault.update("0000-no-such-id", "text")
    with pytest.raises(InvalidInput):
        vault.get("../../etc/passwd")
    with pytest.raises(InvalidInput):
        vault.get(None)  # type: ignore[arg-type]
    unchanged(vault, item, snapshot)


def test_bad_update_changes_nothing(seeded) -> None:
    vault, item, snapshot = seeded
    for kwargs in ({"text": ""}, {"metadata": [1]}, {"importance": -1}, {"kind": "BAD"},
                   {"text": "x" * 70000}):
        with pytest.raises(InvalidInput):
            vault.update(item.id, **kwargs)
    unchanged(vault, item, snapshot)


def test_bad_list_args(seeded) -> None:
    vault, item, snapshot = seeded
    for kwargs in ({"limit": 0}, {"limit": 10**6}, {"offset": -1}, {"order": "random"}):
        with pytest.raises(InvalidInput):
            vault.list(**kwargs)
    unchanged(vault, item, snapshot)


def test_errors_have_stable_codes() -> None:
    assert InvalidInput("x").code == "invalid_input"
    assert NotFound("x").code == "not_found"
    err = InvalidInput("bad", field="text")
    assert err.to_dict() == {"code": "invalid_input", "message": "bad",
                             "details": {"field": "text"}}
    assert isinstance(err, MemvaultError) and isinstance(err, ValueError)


def test_unicode_is_normalised(vault: Vault) -> None:
    composed = vault.add("caf\u00e9 au lait")
    decomposed_query = "cafe\u0301"
    assert composed.text == "caf\u00e9 au lait"
    assert vault.search(decomposed_query)[0].item.id == composed.id
    d = vault.add("cafe\u0301 noir")
    assert d.text == "caf\u00e9 noir"


def test_batch_shapes_and_defaults_are_checked(seeded) -> None:
    vault, item, snapshot = seeded
    for bad in ("hello", b"bytes", {"text": "x"}, 5):
        with pytest.raises(InvalidInput):
            vault.add_many(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        vault.add_many(["fine"], colour="blue")
    with pytest.raises(InvalidInput):
        vault.audit(after="x")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        vault.unlink(item.id, "0000-no-such-id")
    unchanged(vault, item, snapshot)


def test_provenance_cannot_claim_another_actor(tmp_path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash", actor="agent-7") as v:
        item = v.add("x", provenance={"actor": "admin", "source": "chat"})
        assert item.provenance == {"actor": "agent-7", "source": "chat"}


def test_bad_embedder_name_is_a_configuration_error(tmp_path) -> None:
    from memvault import ConfigurationError

    for name in ("hash-abc", "hash-1", "word2vec"):
        with pytest.raises(ConfigurationError):
            Vault(tmp_path / "v.db", embedder=name)


@pytest.mark.parametrize("kwargs", [
    {"text": "ok", "tags": ["\ud800"]},
    {"text": "ok", "metadata": {"k\udc00": 1}},
    {"text": "ok", "metadata": {"k": "v\ud800"}},
    {"text": "ok", "event_time": "9999-12-31T23:59:59-23:59"},
])
def test_unstorable_values_are_refused(seeded, kwargs) -> None:
    vault, item, snapshot = seeded
    with pytest.raises(InvalidInput):
        vault.add(**kwargs)
    with pytest.raises(InvalidInput):
        vault.search("ok", filters={"metadata": {"a": 10**30}})
    with pytest.raises(InvalidInput):
        vault.link(item.id, item.id, weight=float("inf"))
    unchanged(vault, item, snapshot)


def test_emoji_and_astral_text_are_fine(vault: Vault) -> None:
    item = vault.add("party \U0001F389", tags=["\U0001F389"], metadata={"e": "\U0001F600"})
    assert vault.get(item.id).metadata == {"e": "\U0001F600"}
