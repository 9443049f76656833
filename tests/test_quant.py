"""Quantized KV blocks, layout 2 (fp16 attention sink, KIVI split, int4 Hadamard): sizes,
error, the sink kept exact, old layout-1 blocks still loading, unknown layouts refused,
and answers through Vault.chat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memvault import Vault
from memvault.activation import quant, quant_v1
from memvault.activation.blocks import ActivationBlock, ActivationStore, build_block
from memvault.errors import IntegrityError
from memvault.settings import Settings

FP16_BYTES = 2 * 2 * 3 * 64  # per token and layer: keys + values, 3 heads of 64, 2 bytes


def _kv(tokens: int, layers: int = 2, seed: int = 0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    outliers = torch.ones(64)
    outliers[[3, 17]] = 25.0  # key channels of large magnitude, as real keys have
    out = []
    for _ in range(layers):
        k = torch.randn(1, 3, tokens, 64, generator=gen) * outliers + 2.0  # offset channels
        v = torch.randn(1, 3, tokens, 64, generator=gen)
        k[..., 0, :] *= 0.25  # a sink: a small first key and value
        v[..., 0, :] *= 0.05
        out.append((k, v))
    return out


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


@pytest.mark.parametrize("scheme,ratio,err", [("int8", 0.52, 0.01), ("int4", 0.30, 0.12)])
def test_layout2_round_trip_bytes_error_and_exact_sink(scheme: str, ratio: float,
                                                       err: float) -> None:
    import torch

    kv = _kv(200)
    tensors = quant.encode(kv, scheme)
    assert set(tensors) == quant.tensor_names(scheme, 2)
    # every byte counted: codes, scales, zero points and the fp16 sink token
    assert _nbytes(tensors) <= ratio * 2 * 200 * FP16_BYTES
    back = quant.decode(tensors, scheme, n_layers=2, shape=(1, 3, 200, 64),
                        dtype=torch.float32)
    for (k, v), (k2, v2) in zip(kv, back):
        for a, b in ((k, k2), (v, v2)):
            assert ((a - b).norm() / a.norm()).item() < err
            assert torch.equal(b[..., :1, :], a[..., :1, :].half().float())  # sink exact
            # the sink's own error is not inflated by the others' range
            assert (a[..., 1:, :] - b[..., 1:, :]).abs().max() > 0


def test_layout2_beats_layout1_where_it_was_measured_to_matter() -> None:
    """The sink token's key error: layout 1 sized its grid by the other tokens."""
    import torch

    kv = _kv(200)
    for scheme in ("int8", "int4"):
        new = quant.decode(quant.encode(kv, scheme), scheme, n_layers=2,
                           shape=(1, 3, 200, 64), dtype=torch.float32)
        old = quant_v1.decode(quant_v1.encode(kv, scheme), scheme, n_layers=2,
                              shape=(1, 3, 200, 64), dtype=torch.float32)
        sink_new = sum((k[..., 0, :] - n[0][..., 0, :]).norm() for k, n in zip(
            (x[0] for x in kv), new))
        sink_old = sum((k[..., 0, :] - o[0][..., 0, :]).norm() for k, o in zip(
            (x[0] for x in kv), old))
        assert sink_new < 0.1 * sink_old


@pytest.mark.parametrize("tokens", [1, 2, 63, 65])
def test_short_and_odd_blocks_round_trip(tokens: int) -> None:
    import torch

    kv = _kv(tokens, layers=1)
    for scheme in quant.SCHEMES:
        back = quant.decode(quant.encode(kv, scheme), scheme, n_layers=1,
                            shape=(1, 3, tokens, 64), dtype=torch.float32)
        assert back[0][0].shape == (1, 3, tokens, 64)
        assert ((back[0][1] - kv[0][1]).norm() / kv[0][1].norm()).item() < 0.15


def test_constant_runs_decode_exactly() -> None:
    """A run of identical values (a padded last token run, a zero head) has range 0: its
    scale must not underflow to 0 in fp16 and make the codes 0/0."""
    import torch

    kv = [(torch.full((1, 3, 66, 64), 0.5), torch.zeros(1, 3, 66, 64))]
    for scheme in ("int8", "int4"):
        tensors = quant.encode(kv, scheme)
        assert all(bool(t.float().isfinite().all()) for t in tensors.values())
        back = quant.decode(tensors, scheme, n_layers=1, shape=(1, 3, 66, 64),
                            dtype=torch.float32)
        assert torch.allclose(back[0][0], kv[0][0], atol=1e-3)
        assert torch.allclose(back[0][1], kv[0][1], atol=1e-3)


def test_damaged_or_mislabelled_files_are_integrity_errors() -> None:
    import torch

    kv = _kv(80)
    for scheme in ("int8", "int4"):
        tensors = quant.encode(kv, scheme)
        bad = dict(tensors)
        bad["keys.q"] = bad["keys.q"][..., :10]
        with pytest.raises(IntegrityError):
            quant.decode(bad, scheme, n_layers=2, shape=(1, 3, 80, 64), dtype=torch.float32)
        bad = dict(tensors)
        bad["values.sink"] = bad["values.sink"].float()
        with pytest.raises(IntegrityError):
            quant.decode(bad, scheme, n_layers=2, shape=(1, 3, 80, 64), dtype=torch.float32)
        with pytest.raises(IntegrityError):  # a layout-2 file read as layout 1
            quant.decode(tensors, scheme, n_layers=2, shape=(1, 3, 80, 64),
                         dtype=torch.float32, layout=1)
        with pytest.raises(IntegrityError, match="layout 7"):
            quant.decode(tensors, scheme, n_layers=2, shape=(1, 3, 80, 64),
                         dtype=torch.float32, layout=7)


# -- through the store and the model ---------------------------------------------------------
FACTS = [f"The user's locker {i} holds a {c} {t}." for i, (c, t) in enumerate(
    [(c, t) for c in ("red", "blue", "green") for t in ("kite", "lamp", "violin", "teapot")])]
QUESTION = "What does locker 5 hold?"


def _rewrite_as_layout1(store: ActivationStore, block: ActivationBlock, llm) -> dict:
    """What a memvault before layout 2 wrote: one tensor per layer, int64 ids, and an entry
    without a ``layout`` field. Returns the tensors written."""
    import hashlib

    import torch
    from safetensors.torch import save

    loaded = store.load(llm, block)
    directory = store.root / block.fingerprint.key
    tensors = {"input_ids": torch.tensor(block.token_ids, dtype=torch.int64)}
    tensors.update(quant_v1.encode(loaded.kv, block.quant))
    data = save(tensors, metadata={"format": "1", "hash": block.hash,
                                   "fingerprint": block.fingerprint.key, "quant": block.quant})
    (directory / f"{block.hash}.safetensors").write_bytes(data)
    entry = block.to_dict()
    del entry["layout"]
    entry["file_sha256"] = hashlib.sha256(data).hexdigest()
    (directory / f"{block.hash}.json").write_text(json.dumps(entry))
    return tensors


@pytest.mark.slow
def test_vault_chat_answers_from_int8_and_int4_blocks_as_from_fp16(local_llm, tmp_path: Path
                                                                   ) -> None:
    from memvault.chat import default_activation_store

    answers, per_token = {}, {}
    for scheme in quant.SCHEMES:
        db = tmp_path / f"{scheme}.db"
        with Vault(db, embedder="hash", settings=Settings(path=db, kv_quant=scheme)) as vault:
            for fact in FACTS:
                vault.add(fact, kind="fact", user_id="ann")
            built = vault.chat(QUESTION, user_id="ann", llm=local_llm, k=0, max_tokens=12)
            assert built.activation == "built"
            store = default_activation_store(vault)
            block = store.entry(local_llm.fingerprint, built.block)
            assert (block.quant, block.layout) == (scheme, quant.LAYOUT)
            path = store.root / block.fingerprint.key / f"{block.hash}.safetensors"
            per_token[scheme] = path.stat().st_size / block.n_tokens
        with Vault(db, embedder="hash", settings=Settings(path=db, kv_quant=scheme)) as vault:
            used = vault.chat(QUESTION, user_id="ann", llm=local_llm, k=0, max_tokens=12)
            assert used.activation == "used" and used.block == built.block  # read from disk
            assert used.answer == built.answer
            answers[scheme] = used.answer
    assert answers["int8"] == answers["fp16"] and answers["int4"] == answers["fp16"]
    assert per_token["int8"] <= 0.52 * per_token["fp16"]
    assert per_token["int4"] <= 0.30 * per_token["fp16"]


@pytest.mark.slow
def test_layout1_blocks_still_load_and_unknown_layouts_are_refused(local_llm, tmp_path: Path
                                                                   ) -> None:
    import torch

    from memvault.activation.tier import system_messages
    from memvault.types import MemoryItem

    items = [MemoryItem(id=f"m{i}", kind="fact", user_id="ann", text=f)
             for i, f in enumerate(FACTS)]
    built = build_block(local_llm, system_messages(items), items=items)
    for scheme in ("int8", "int4"):
        store = ActivationStore(tmp_path / scheme, quant=scheme, max_loaded=0)
        block = store.save(built)
        written = _rewrite_as_layout1(store, block, local_llm)
        old = store.entry(block.fingerprint, block.hash)
        assert old.layout == 1 and old.quant == scheme
        loaded = store.load(local_llm, old)
        want = quant_v1.decode(written, scheme, n_layers=len(built.kv),
                               shape=tuple(built.kv[0][0].shape), dtype=torch.float32)
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
                   for a, b in zip(loaded.kv, want))
        ids = local_llm.encode_chat([*system_messages(items),
                                     {"role": "user", "content": QUESTION}])
        assert loaded.matches_prefix(ids)
        assert len(local_llm.generate_ids(ids, max_tokens=2,
                                          cache=loaded.fresh_cache(local_llm))) == 2
        # an entry from a newer memvault: refused with a message, listed as bad
        path = store.root / block.fingerprint.key / f"{block.hash}.json"
        path.write_text(json.dumps({**old.to_dict(), "layout": 3}))
        with pytest.raises(IntegrityError, match="layout 3"):
            store.entry(block.fingerprint, block.hash)
        blocks, bad = store.scan()
        assert blocks == [] and bad[0]["code"] == IntegrityError.code
