"""Activation memory: precomputed KV caches of a block of memory text, for one model.

A block is a short list of chat messages (memvault renders the scope's profile and hottest
facts as the system message) run once through the model. Its KV cache is then injected as
the generation ``cache`` when a prompt *starts with exactly those tokens*, so generation skips
the prefill of the block: time-to-first-token falls from seconds to a fraction of a second.

On disk (the ``activation/`` part of a MemCube)::

    <root>/<fingerprint.key>/<block-hash>.safetensors   keys/values (fp16, int8 or int4:
                                                        :mod:`.quant`, in the entry's
                                                        ``layout``) + input ids
    <root>/<fingerprint.key>/<block-hash>.json          the block index entry (below)
    <root>/<fingerprint.key>/names.json                 {block name: block hash}

The index entry records the model fingerprint, the prefix messages and token ids, the
memories the block was rendered from (id, version, content hash), the adapter it was
computed under, the file's sha256 and the creation time. Only safetensors and JSON are
read back, never pickle, so a cube from elsewhere is safe to load.

Rules: a block built for another fingerprint is refused (:class:`ModelError`); a file whose
checksum or shapes disagree with its entry is refused (:class:`IntegrityError`); every use
gets its own copy (generation grows the cache in place); a block is stale as soon as one of
its memories has a newer version or is no longer active (:func:`stale_ids`).

Entries may arrive in a MemCube from elsewhere, so they are read bounded (size, nesting)
and checked whole (:func:`check_entry`: every field, the content address, the directory it
sits in). A MemCube load installs only entries that pass; listing (:meth:`ActivationStore.scan`)
skips and reports one that does not, so a single bad file never breaks the listing for
everyone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .. import _validate as check
from .._files import sha256_file
from ..errors import IntegrityError, InvalidInput, ModelError, NotFound, StorageError
from ..models.llm import Message
from ..models.local import LocalLLM, ModelFingerprint
from ..storage.base import RecordStore, RowQuery
from ..types import MemoryItem, utcnow
from . import quant as kvq
from .pager import Pager

if TYPE_CHECKING:
    import torch

__all__ = ["ActivationBlock", "ActivationStore", "BlockEntry", "LoadedBlock", "build_block",
           "entries_for", "live_adapter", "stale_ids", "check_entry", "check_names",
           "parse_index_file", "NAMES", "MAX_INDEX_BYTES"]

FORMAT_VERSION = 1
_HASH_CHARS = 32
NAMES = "names.json"
#: An index file (entry or name map) is JSON of a few KB; anything this large is not one.
MAX_INDEX_BYTES = 16 * 1024 * 1024
_MAX_DEPTH = 8  # entries nest 3 levels (object > items list > item object)
_MAX_ITEMS = 10_000  # memories, messages or names in one index file
_MAX_TOKENS = 1_000_000


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """One memory a block was rendered from, as it was then."""

    id: str
    version: int
    content_sha256: str


def entries_for(items: Iterable[MemoryItem]) -> tuple[BlockEntry, ...]:
    return tuple(BlockEntry(i.id, i.version, hashlib.sha256(i.text.encode()).hexdigest())
                 for i in items)


@dataclass(frozen=True, slots=True)
class ActivationBlock:
    """The index entry of one cached block (everything but the tensors)."""

    hash: str
    fingerprint: ModelFingerprint
    messages: tuple[dict[str, str], ...]
    token_ids: tuple[int, ...]
    entries: tuple[BlockEntry, ...] = ()
    adapter: str | None = None
    created_at: str = ""
    file_sha256: str = ""
    #: How the file stores the keys/values (:data:`memvault.activation.quant.SCHEMES`).
    quant: str = "fp16"
    #: The file's tensor layout (:data:`memvault.activation.quant.LAYOUTS`); entries
    #: written before layouts were recorded are layout 1.
    layout: int = 1

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def item_ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "hash": self.hash,
                "fingerprint": self.fingerprint.to_dict(), "messages": list(self.messages),
                "token_ids": list(self.token_ids), "n_tokens": self.n_tokens,
                "items": [{"id": e.id, "version": e.version, "content_sha256": e.content_sha256}
                          for e in self.entries],
                "adapter": self.adapter, "created_at": self.created_at,
                "file_sha256": self.file_sha256, "quant": self.quant, "layout": self.layout}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ActivationBlock":
        if not isinstance(data, Mapping):
            raise IntegrityError("bad activation block entry: not a JSON object")
        try:
            if len(data.get("token_ids") or ()) > _MAX_TOKENS or \
                    len(data.get("items") or ()) > _MAX_ITEMS or \
                    len(data.get("messages") or ()) > _MAX_ITEMS:
                raise IntegrityError("bad activation block entry: implausibly many tokens, "
                                     "items or messages")
            if int(data["format"]) != FORMAT_VERSION:
                raise IntegrityError(f"activation block format {data['format']} is not "
                                     f"supported (expected {FORMAT_VERSION})")
            block = cls(
                hash=str(data["hash"]), fingerprint=ModelFingerprint.from_dict(data["fingerprint"]),
                messages=tuple({"role": str(m["role"]), "content": str(m["content"])}
                               for m in data["messages"]),
                token_ids=tuple(int(t) for t in data["token_ids"]),
                entries=tuple(BlockEntry(check.item_id(e["id"]), int(e["version"]),
                                         str(e["content_sha256"])) for e in data["items"]),
                adapter=None if data.get("adapter") is None else str(data["adapter"]),
                created_at=str(data.get("created_at", "")),
                file_sha256=str(data.get("file_sha256", "")),
                quant=str(data.get("quant", "fp16")),
                layout=kvq.check_layout(data.get("layout", 1), "activation block entry"))
        except (KeyError, TypeError, ValueError, ModelError) as exc:
            raise IntegrityError(f"bad activation block entry: {exc}") from exc
        if block.quant not in kvq.SCHEMES:
            raise IntegrityError(f"bad activation block entry: quant {block.quant[:20]!r}")
        if len(block.hash) != _HASH_CHARS or not block.hash.isalnum() or not block.hash.isascii():
            raise IntegrityError(f"bad activation block entry: hash {block.hash[:40]!r}")
        if block.hash != block_hash(block.fingerprint, block.token_ids, block.adapter):
            raise IntegrityError(f"activation block {block.hash}: hash does not match content")
        return block


def block_hash(fingerprint: ModelFingerprint, token_ids: Sequence[int],
               adapter: str | None) -> str:
    """Content address: the same tokens through the same model (and adapter) = same cache."""
    raw = json.dumps([fingerprint.key, adapter, list(token_ids)], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:_HASH_CHARS]


def parse_index_file(data: bytes, what: str) -> Any:
    """An index file's JSON, bounded in size and nesting (IntegrityError otherwise)."""
    return check.parse_json(data, max_depth=_MAX_DEPTH, max_bytes=MAX_INDEX_BYTES, what=what,
                            error=IntegrityError)


def check_entry(doc: Any, directory: str, filename: str) -> ActivationBlock:
    """The block an index entry describes, if it may sit at ``<directory>/<filename>``:
    well formed, its hash its content address, its model the directory's and its name
    ``<hash>.json``. IntegrityError says what is wrong."""
    block = ActivationBlock.from_dict(doc)
    if block.fingerprint.key != directory or f"{block.hash}.json" != filename:
        raise IntegrityError(f"activation block entry {directory}/{filename} does not belong "
                             f"there (block {block.hash} of model {block.fingerprint.key})")
    return block


def check_names(doc: Any) -> dict[str, str]:
    """A ``names.json`` map: ``{name: block hash}``, names short strings."""
    if not isinstance(doc, dict) or len(doc) > _MAX_ITEMS:
        raise IntegrityError("activation name map is not an object of names")
    for name, value in doc.items():
        if not 0 < len(name) <= 256 or not isinstance(value, str) or \
                len(value) != _HASH_CHARS or not value.isalnum() or not value.isascii():
            raise IntegrityError(f"activation name map: bad entry {name[:60]!r}")
    return dict(doc)


@dataclass(slots=True)
class LoadedBlock:
    """A block with its keys/values in memory. Never hand ``kv`` to generation directly:
    :meth:`fresh_cache` makes the copy that generation may grow."""

    block: ActivationBlock
    kv: list[tuple["torch.Tensor", "torch.Tensor"]] = field(repr=False)

    def fresh_cache(self, llm: LocalLLM) -> Any:
        """A new ``DynamicCache`` holding copies of the block's keys/values."""
        from transformers import DynamicCache

        _check_fingerprint(llm, self.block)
        # DynamicCache fills its layers with torch.cat, i.e. copies: check, don't copy twice
        cache = DynamicCache(ddp_cache_data=self.kv, config=llm.model.config)
        if any(layer.keys.data_ptr() == k.data_ptr() or layer.values.data_ptr() == v.data_ptr()
               for layer, (k, v) in zip(cache.layers, self.kv)):
            cache = DynamicCache(ddp_cache_data=[(k.clone(), v.clone()) for k, v in self.kv],
                                 config=llm.model.config)
        return cache

    def matches_prefix(self, input_ids: "torch.Tensor") -> bool:
        """True when ``input_ids`` (1 x n) starts with the block's tokens and goes past them."""
        n = self.block.n_tokens
        return (input_ids.shape[-1] > n
                and input_ids[0, :n].tolist() == list(self.block.token_ids))

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size()
                   for k, v in self.kv)


def build_block(llm: LocalLLM, messages: Sequence[Message], *,
                items: Iterable[MemoryItem] = (), adapter: str | None = None) -> LoadedBlock:
    """Run ``messages`` (the prompt prefix, no generation prompt) through the model once.

    ``items`` are the memories the messages were rendered from (for invalidation);
    ``adapter`` names the adapter on while building (its cache differs from the base
    model's); default: the LoRA adapter switched on in ``llm`` now, if any.
    """
    if not messages:
        raise InvalidInput("an activation block needs at least one message")
    msgs = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in messages)
    adapter = adapter if adapter is not None else live_adapter(llm)
    ids = llm.encode_chat(msgs, add_generation_prompt=False)
    cache = llm.prefill(ids)
    kv = [(layer.keys.detach().clone(), layer.values.detach().clone())
          for layer in cache.layers]
    token_ids = tuple(int(t) for t in ids[0].tolist())
    block = ActivationBlock(hash=block_hash(llm.fingerprint, token_ids, adapter),
                            fingerprint=llm.fingerprint, messages=msgs, token_ids=token_ids,
                            entries=entries_for(items), adapter=adapter,
                            created_at=utcnow().isoformat())
    return LoadedBlock(block, kv)


def live_adapter(llm: LocalLLM) -> str | None:
    """Key of the LoRA adapter switched on in ``llm`` right now (None: the base model).
    A KV cache depends on it as much as on the base weights."""
    from ..parametric.runtime import adapter_state

    return adapter_state(llm)


def stale_ids(block: ActivationBlock, store: RecordStore) -> list[str]:
    """Ids of the block's memories that changed (newer version, other text) or are gone
    (deleted, archived, quarantined, purged). Empty: the block is still valid."""
    if not block.entries:
        return []
    ids = block.item_ids
    rows = store.select(RowQuery(ids=ids, statuses=None, limit=len(ids)))
    current = {r.item.id: r.item for r in rows}
    stale = []
    for entry in block.entries:
        item = current.get(entry.id)
        if (item is None or item.status != "active" or item.version != entry.version
                or hashlib.sha256(item.text.encode()).hexdigest() != entry.content_sha256):
            stale.append(entry.id)
    return stale


def _check_fingerprint(llm: LocalLLM, block: ActivationBlock) -> None:
    if block.fingerprint != llm.fingerprint:
        raise ModelError(
            f"activation block {block.hash} was built for model {block.fingerprint.key} "
            f"({block.fingerprint.architecture}, {block.fingerprint.dtype}), not for "
            f"{llm.fingerprint.key}; rebuild it for this model",
            block=block.hash, block_fingerprint=block.fingerprint.to_dict(),
            model_fingerprint=llm.fingerprint.to_dict())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ActivationStore:
    """Activation blocks under one directory, and a few of them kept loaded in memory.

    A vault's blocks live next to its SQLite file, in ``<db>.activation/`` (see
    :meth:`memvault.Vault.chat`); a MemCube carries the same tree as ``activation/``.
    Writes are atomic (temp file + rename); concurrent writers of the same block write the
    same bytes, and the name map is last-writer-wins (a lost name only costs a rebuild).

    ``quant``: how new blocks are written (:mod:`.quant`; each block records its own, so
    older blocks of another scheme still load). ``pager``: when given, it owns which
    blocks stay in RAM (one budget with the adapters, :mod:`.pager`); without one, the
    ``max_loaded`` most recently used blocks stay. A file's checksum is verified on its
    first read; later page-ins memory-map it and read only the tensors.
    """

    def __init__(self, root: str | Path, *, max_loaded: int = 4, quant: str = "fp16",
                 pager: Pager | None = None) -> None:
        self.root = Path(root)
        self.max_loaded = max_loaded
        self.quant = kvq.check_scheme(quant)
        self.pager = pager
        self._loaded: OrderedDict[tuple[str, str], LoadedBlock] = OrderedDict()
        self._verified: dict[str, tuple[int, int, str]] = {}  # path -> size, mtime, sha
        self._lock = threading.RLock()

    def _dir(self, fingerprint: ModelFingerprint) -> Path:
        return self.root / fingerprint.key

    # -- writing -------------------------------------------------------------------------
    def save(self, loaded: LoadedBlock, *, name: str | None = None) -> ActivationBlock:
        """Write the block (in this store's ``quant``) + its JSON entry; optionally name it."""
        import torch
        from safetensors.torch import save

        block = loaded.block
        tensors: dict[str, torch.Tensor] = {"input_ids": torch.tensor(block.token_ids,
                                                                      dtype=torch.int32)}
        tensors.update(kvq.encode(loaded.kv, self.quant))
        data = save(tensors, metadata={"format": str(FORMAT_VERSION), "hash": block.hash,
                                       "fingerprint": block.fingerprint.key,
                                       "quant": self.quant, "layout": str(kvq.LAYOUT)})
        saved = dataclasses.replace(block, file_sha256=hashlib.sha256(data).hexdigest(),
                                    quant=self.quant, layout=kvq.LAYOUT)
        # kept loaded as the disk holds it (rounded, dequantized): same answers before and
        # after a restart
        k0 = loaded.kv[0][0]
        kv = kvq.decode(tensors, self.quant, n_layers=len(loaded.kv), shape=tuple(k0.shape),
                        dtype=k0.dtype, layout=kvq.LAYOUT)
        directory = self._dir(block.fingerprint)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _write_atomic(directory / f"{block.hash}.safetensors", data)
            _write_atomic(directory / f"{block.hash}.json",
                          json.dumps(saved.to_dict(), ensure_ascii=False).encode())
            if name is not None:
                with self._lock:
                    names = self._names(block.fingerprint)
                    names[name] = block.hash
                    _write_atomic(directory / "names.json", json.dumps(names).encode())
        except OSError as exc:
            raise StorageError(f"cannot write activation block {block.hash}: {exc}") from exc
        with self._lock:
            self._verified.pop(str(directory / f"{block.hash}.safetensors"), None)
            self._remember((block.fingerprint.key, block.hash), LoadedBlock(saved, kv))
        return saved

    def delete(self, block: ActivationBlock) -> None:
        """Remove a block's files, its name(s) and its loaded copy."""
        directory = self._dir(block.fingerprint)
        with self._lock:
            self._loaded.pop((block.fingerprint.key, block.hash), None)
            if self.pager is not None:
                self.pager.drop("block", (str(self.root), block.fingerprint.key, block.hash))
            names = self._names(block.fingerprint)
            kept = {n: h for n, h in names.items() if h != block.hash}
            try:
                if kept != names:
                    _write_atomic(directory / "names.json", json.dumps(kept).encode())
                for suffix in (".safetensors", ".json"):
                    (directory / f"{block.hash}{suffix}").unlink(missing_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot delete activation block {block.hash}: {exc}") from exc

    # -- reading -------------------------------------------------------------------------
    def _names(self, fingerprint: ModelFingerprint) -> dict[str, str]:
        path = self._dir(fingerprint) / NAMES
        return check_names(_read_json(path)) if path.is_file() else {}

    def names(self, fingerprint: ModelFingerprint) -> dict[str, str]:
        """``{block name: block hash}`` for one model (a copy)."""
        with self._lock:
            return self._names(fingerprint)

    def entry(self, fingerprint: ModelFingerprint, block_hash: str) -> ActivationBlock:
        """The index entry of one block, checked against the directory it sits in."""
        if not isinstance(block_hash, str) or not block_hash.isalnum():
            raise InvalidInput("a block hash is an alphanumeric string", field="block")
        path = self._dir(fingerprint) / f"{block_hash}.json"
        if not path.is_file():
            raise NotFound(f"no activation block {block_hash} for model {fingerprint.key}",
                           block=block_hash)
        block = ActivationBlock.from_dict(_read_json(path))
        if block.hash != block_hash or block.fingerprint.key != fingerprint.key:
            raise IntegrityError(f"activation block entry {path} does not belong here")
        return block

    def get(self, fingerprint: ModelFingerprint, name: str) -> ActivationBlock | None:
        """The block last saved under ``name`` for this model, or None."""
        block_hash = self._names(fingerprint).get(name)
        if block_hash is None:
            return None
        try:
            return self.entry(fingerprint, block_hash)
        except NotFound:
            return None

    def all_blocks(self) -> list[ActivationBlock]:
        """Every valid block under the root, whatever model it was built for (bad entries
        are skipped: :meth:`scan` reports them)."""
        return self.scan()[0]

    def scan(self) -> tuple[list[ActivationBlock], list[dict[str, str]]]:
        """Every valid block under the root, and ``{path, code, error}`` for each entry
        that is not one (unreadable, malformed, or in the wrong place). One bad file,
        e.g. loaded from a foreign cube, must not hide the others or fail the caller."""
        if not self.root.is_dir():
            return [], []
        out, bad = [], []
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in sorted(directory.glob("*.json")):
                if path.name == NAMES:
                    continue
                try:
                    out.append(check_entry(_read_json(path), directory.name, path.name))
                except (IntegrityError, NotFound) as exc:
                    bad.append({"path": f"{directory.name}/{path.name}", "code": exc.code,
                                "error": exc.message})
        return out, bad

    def prune(self, records: RecordStore) -> list[str]:
        """Delete every block one of whose memories changed or is gone (the scheduler's
        invalidation pass); returns the hashes deleted."""
        stale = [b for b in self.all_blocks() if stale_ids(b, records)]
        for block in stale:
            self.delete(block)
        return [b.hash for b in stale]

    def load(self, llm: LocalLLM, block: ActivationBlock) -> LoadedBlock:
        """The block's keys/values for ``llm``: refused if built for another model."""
        _check_fingerprint(llm, block)
        key = (block.fingerprint.key, block.hash)
        if self.pager is not None:
            def page_in() -> tuple[LoadedBlock, int]:
                loaded = LoadedBlock(block, self._read_tensors(llm, block))
                return loaded, loaded.nbytes

            return self.pager.get("block", (str(self.root), *key), page_in,
                                  valid=lambda lb: lb.block == block)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        loaded = LoadedBlock(block, self._read_tensors(llm, block))
        with self._lock:
            self._remember(key, loaded)
        return loaded

    def _read_tensors(self, llm: LocalLLM, block: ActivationBlock
                      ) -> list[tuple["torch.Tensor", "torch.Tensor"]]:
        path = self._dir(block.fingerprint) / f"{block.hash}.safetensors"
        return _check_tensors(llm, block, self._map(path, block))

    def _map(self, path: Path, block: ActivationBlock) -> dict[str, "torch.Tensor"]:
        """The file's tensors through a memory map (only the tensors are read), after its
        checksum was verified once for this size and modification time."""
        from safetensors import SafetensorError, safe_open

        try:
            st = path.stat()
            seen = self._verified.get(str(path))
            if seen != (st.st_size, st.st_mtime_ns, block.file_sha256):
                if sha256_file(path) != block.file_sha256:
                    raise IntegrityError(f"activation block file {path} fails its checksum",
                                         block=block.hash)
                self._verified[str(path)] = (st.st_size, st.st_mtime_ns, block.file_sha256)
            with safe_open(str(path), framework="pt") as fh:
                return {name: fh.get_tensor(name) for name in fh.keys()}
        except OSError as exc:
            raise NotFound(f"activation block file {path} is missing", block=block.hash) from exc
        except (SafetensorError, ValueError) as exc:
            raise IntegrityError(f"unreadable activation block file {path}: {exc}",
                                 block=block.hash) from exc

    def _remember(self, key: tuple[str, str], loaded: LoadedBlock) -> None:
        if self.pager is not None:
            self.pager.put("block", (str(self.root), *key), loaded, loaded.nbytes)
            return
        self._loaded[key] = loaded
        self._loaded.move_to_end(key)
        while len(self._loaded) > self.max_loaded:
            self._loaded.popitem(last=False)


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_INDEX_BYTES:
            raise IntegrityError(f"activation index file {path} is implausibly large")
        data = path.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"unreadable activation index file {path}: {exc}") from exc
    return parse_index_file(data, f"activation index file {path}")


def _check_tensors(llm: LocalLLM, block: ActivationBlock, tensors: Mapping[str, Any]
                   ) -> list[tuple["torch.Tensor", "torch.Tensor"]]:
    """Shapes must be what this model produces for this many tokens."""
    cfg = llm.model.config
    n_layers = int(cfg.num_hidden_layers)
    heads = int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    want = (1, heads, block.n_tokens, head_dim)
    ids = tensors.get("input_ids")
    if ids is None or ids.tolist() != list(block.token_ids):
        raise IntegrityError(f"activation block {block.hash}: token ids differ from its entry")
    return kvq.decode(tensors, block.quant, n_layers=n_layers, shape=want,
                      dtype=llm.model.dtype, what=f"activation block {block.hash}",
                      layout=block.layout)
