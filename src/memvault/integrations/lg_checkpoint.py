"""LangGraph checkpoints beside a memvault vault: :class:`MemvaultSaver`.

A thread's short-term state (every checkpoint of a LangGraph run, the pending writes of
its tasks, the channel values) is kept in ``<vault db>.langgraph.sqlite``, a SQLite file
next to the vault's, opened with the vault's durability: WAL, and ``synchronous=FULL``
when the vault's ``durability`` is ``"full"`` (the default), so a checkpoint that
``put`` returned survives ``kill -9`` and power loss. Each ``put``/``put_writes`` is one
transaction.

Why a file of its own and not memories: a checkpoint is an opaque, often large blob
written at every step of every run. As memories they would be embedded and indexed for
search that nobody runs on them, and every step would queue behind the vault's own
writers; beside the vault they cost one small transaction and leave the memory store to
memories. Long-term knowledge belongs in :class:`~memvault.integrations.lg_store.
MemvaultStore`, which *is* memories.

Nothing here unpickles. Payloads are encoded by LangGraph's ``JsonPlusSerializer``
configured by :class:`SafeSerializer`: no pickle fallback when writing, a stored payload
of any type but msgpack/json/bytes/null is refused with
:class:`~memvault.errors.IntegrityError` when reading, and msgpack revives only
LangGraph's safe types plus the ones the compiled graph's state declares (its
``with_allowlist``), never arbitrary importable callables.

Supported: every base capability of ``langgraph-checkpoint-conformance`` (put,
put_writes, get_tuple, list, delete_thread) and the extended ones (delete_for_runs,
copy_thread, prune), sync and async. PostgreSQL vaults are not supported yet: pass
``path=`` to keep checkpoints in a SQLite file of your choice.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (WRITES_IDX_MAP, BaseCheckpointSaver, ChannelVersions,
                                       Checkpoint, CheckpointMetadata, CheckpointTuple,
                                       get_checkpoint_id, get_checkpoint_metadata)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from ..errors import ConfigurationError, IntegrityError, InvalidInput, StorageError

__all__ = ["MemvaultSaver", "SafeSerializer"]

_SCHEMA = 1
_DDL = (
    """CREATE TABLE IF NOT EXISTS checkpoints (
        thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
        parent_checkpoint_id TEXT, run_id TEXT,
        type TEXT NOT NULL, checkpoint BLOB NOT NULL,
        metadata_type TEXT NOT NULL, metadata BLOB NOT NULL,
        versions TEXT NOT NULL,              -- JSON {channel: version}: which blobs it uses
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id))""",
    "CREATE INDEX IF NOT EXISTS checkpoints_run ON checkpoints(run_id)",
    """CREATE TABLE IF NOT EXISTS blobs (
        thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, channel TEXT NOT NULL,
        version TEXT NOT NULL, type TEXT NOT NULL, blob BLOB,
        PRIMARY KEY (thread_id, checkpoint_ns, channel, version))""",
    """CREATE TABLE IF NOT EXISTS writes (
        thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL, task_path TEXT NOT NULL, idx INTEGER NOT NULL,
        channel TEXT NOT NULL, type TEXT NOT NULL, value BLOB,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx))""",
)
#: The serde types a stored payload may have; anything else (pickle above all) is refused.
READABLE_TYPES = frozenset({"null", "bytes", "bytearray", "msgpack", "json"})
_MAX_ID = 1024


class SafeSerializer(JsonPlusSerializer):
    """LangGraph's serializer with every path to code execution closed: no pickle either
    way, no JSON constructors outside LangGraph's safe list, strict msgpack (LangGraph's
    safe types plus ``allowed_msgpack_modules`` and what a graph adds with
    ``with_allowlist``)."""

    def __init__(self, *, allowed_msgpack_modules: Sequence[tuple[str, ...] | type] = ()
                 ) -> None:
        super().__init__(pickle_fallback=False, allowed_json_modules=None,
                         allowed_msgpack_modules=tuple(allowed_msgpack_modules) or None)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_ = data[0]
        if type_ not in READABLE_TYPES:
            raise IntegrityError(f"refused a stored checkpoint payload of type {type_!r}: "
                                 "memvault never unpickles or runs stored code",
                                 payload_type=str(type_))
        return super().loads_typed(data)


class MemvaultSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpoints next to ``vault`` (a :class:`~memvault.Vault` on SQLite), or
    in the SQLite file ``path``. ``durability`` defaults to the vault's (``"full"``).
    ``serde`` defaults to :class:`SafeSerializer`; one that may unpickle is refused."""

    def __init__(self, vault: Any = None, *, path: str | Path | None = None,
                 durability: str | None = None, serde: SafeSerializer | None = None,
                 busy_timeout: float = 30.0) -> None:
        if serde is not None and (not isinstance(serde, SafeSerializer) or
                                  getattr(serde, "pickle_fallback", False)):
            raise ConfigurationError("MemvaultSaver needs a SafeSerializer: it never unpickles")
        super().__init__(serde=serde or SafeSerializer())
        settings = getattr(vault, "settings", None)
        if path is None:
            if settings is None:
                raise ConfigurationError("MemvaultSaver needs a Vault (with settings) or path=")
            if getattr(settings, "store", None):
                raise ConfigurationError("checkpoints of a PostgreSQL vault are not supported "
                                         "yet: pass path= for a SQLite file")
            db = Path(settings.path)
            path = db.with_name(db.name + ".langgraph.sqlite")
        durability = durability or getattr(settings, "durability", None) or "full"
        if durability not in ("full", "normal"):
            raise ConfigurationError("durability must be 'full' or 'normal'")
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=busy_timeout,
                                       isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={durability.upper()}")
            with self._tx() as db:
                if db.execute("PRAGMA user_version").fetchone()[0] > _SCHEMA:
                    raise ConfigurationError(f"{self.path} was written by a newer memvault")
                for ddl in _DDL:
                    db.execute(ddl)
                db.execute(f"PRAGMA user_version={_SCHEMA}")
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open checkpoints at {self.path}: {exc}") from exc

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "MemvaultSaver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), or a rollback."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"checkpoint store {self.path}: {exc}") from exc

    def _rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"checkpoint store {self.path}: {exc}") from exc

    # -- writes ---------------------------------------------------------------------------
    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        thread_id, ns, parent = _where(config)
        cp = dict(checkpoint)
        values: dict[str, Any] = cp.pop("channel_values", {}) or {}
        cp_type, cp_blob = self.serde.dumps_typed(cp)
        meta = get_checkpoint_metadata(config, metadata)
        meta_type, meta_blob = self.serde.dumps_typed(meta)
        versions = json.dumps({k: str(v) for k, v in checkpoint["channel_versions"].items()})
        blobs = [(thread_id, ns, k, str(v),
                  *(self.serde.dumps_typed(values[k]) if k in values else ("empty", b"")))
                 for k, v in new_versions.items()]
        run_id = meta.get("run_id")
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO blobs VALUES (?,?,?,?,?,?)", blobs)
            db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (thread_id, ns, _id(checkpoint["id"]), parent,
                        run_id if isinstance(run_id, str) else None,
                        cp_type, cp_blob, meta_type, meta_blob, versions))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                 "checkpoint_id": checkpoint["id"]}}

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        thread_id, ns, checkpoint_id = _where(config)
        if checkpoint_id is None:
            raise InvalidInput("put_writes needs a checkpoint_id in the config",
                               field="checkpoint_id")
        rows = []
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            rows.append((idx < 0, (thread_id, ns, checkpoint_id, task_id, task_path, idx,
                                   channel, *self.serde.dumps_typed(value))))
        with self._tx() as db:
            for special, row in rows:  # special writes replace, regular ones never do
                verb = "INSERT OR REPLACE" if special else "INSERT OR IGNORE"
                db.execute(f"{verb} INTO writes VALUES (?,?,?,?,?,?,?,?,?)", row)

    def delete_thread(self, thread_id: str) -> None:
        with self._tx() as db:
            for table in ("checkpoints", "blobs", "writes"):
                db.execute(f"DELETE FROM {table} WHERE thread_id = ?", (str(thread_id),))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        run_ids = [str(r) for r in run_ids]
        if not run_ids:
            return
        with self._tx() as db:
            marks = ",".join("?" * len(run_ids))
            doomed = db.execute("SELECT thread_id, checkpoint_ns, checkpoint_id FROM "
                                f"checkpoints WHERE run_id IN ({marks})", run_ids).fetchall()
            self._drop(db, doomed)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        src, dst = str(source_thread_id), str(target_thread_id)
        with self._tx() as db:
            for table, cols in (("checkpoints", "checkpoint_ns, checkpoint_id, "
                                 "parent_checkpoint_id, run_id, type, checkpoint, "
                                 "metadata_type, metadata, versions"),
                                ("blobs", "checkpoint_ns, channel, version, type, blob"),
                                ("writes", "checkpoint_ns, checkpoint_id, task_id, task_path, "
                                 "idx, channel, type, value")):
                db.execute(f"INSERT OR REPLACE INTO {table} (thread_id, {cols}) "
                           f"SELECT ?, {cols} FROM {table} WHERE thread_id = ?", (dst, src))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: only the newest checkpoint of each namespace stays (with its
        writes and the channel values it uses); ``delete``: the threads are removed."""
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInput("strategy must be 'keep_latest' or 'delete'", field="strategy")
        for thread_id in [str(t) for t in thread_ids]:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            with self._tx() as db:
                rows = db.execute("SELECT thread_id, checkpoint_ns, checkpoint_id FROM "
                                  "checkpoints WHERE thread_id = ? ORDER BY checkpoint_ns, "
                                  "checkpoint_id DESC", (thread_id,)).fetchall()
                latest: set[str] = set()
                doomed = []
                for row in rows:
                    if row[1] in latest:
                        doomed.append(row)
                    latest.add(row[1])
                self._drop(db, doomed)

    def _drop(self, db: sqlite3.Connection, doomed: Sequence[tuple[str, str, str]]) -> None:
        """Delete checkpoints with their writes, then the channel values that no remaining
        checkpoint of their thread and namespace uses."""
        for key in doomed:
            db.execute("DELETE FROM checkpoints WHERE thread_id=? AND checkpoint_ns=? AND "
                       "checkpoint_id=?", key)
            db.execute("DELETE FROM writes WHERE thread_id=? AND checkpoint_ns=? AND "
                       "checkpoint_id=?", key)
        for thread_id, ns in {(t, n) for t, n, _ in doomed}:
            used = {(ch, v) for (versions,) in db.execute(
                "SELECT versions FROM checkpoints WHERE thread_id=? AND checkpoint_ns=?",
                (thread_id, ns)) for ch, v in json.loads(versions).items()}
            for ch, v in db.execute("SELECT channel, version FROM blobs WHERE thread_id=? "
                                    "AND checkpoint_ns=?", (thread_id, ns)).fetchall():
                if (ch, v) not in used:
                    db.execute("DELETE FROM blobs WHERE thread_id=? AND checkpoint_ns=? AND "
                               "channel=? AND version=?", (thread_id, ns, ch, v))

    # -- reads ----------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = _where(config)
        sql = "SELECT * FROM checkpoints WHERE thread_id=? AND checkpoint_ns=?"
        args: list[Any] = [thread_id, ns]
        if checkpoint_id is not None:
            sql += " AND checkpoint_id=?"
            args.append(checkpoint_id)
        rows = self._rows(sql + " ORDER BY checkpoint_id DESC LIMIT 1", args)
        return self._tuple(rows[0]) if rows else None

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None
             ) -> Iterator[CheckpointTuple]:
        """Newest first; ``filter`` matches metadata keys by equality."""
        sql, args = "SELECT * FROM checkpoints WHERE 1=1", []
        if config:
            conf = config.get("configurable") or {}
            sql += " AND thread_id=?"
            args.append(str(conf["thread_id"]))
            if conf.get("checkpoint_ns") is not None:
                sql += " AND checkpoint_ns=?"
                args.append(str(conf["checkpoint_ns"]))
            if get_checkpoint_id(config):
                sql += " AND checkpoint_id=?"
                args.append(get_checkpoint_id(config))
        if before and (before_id := get_checkpoint_id(before)):
            sql += " AND checkpoint_id < ?"
            args.append(before_id)
        if limit is not None and limit <= 0:
            return
        left = limit
        for row in self._rows(sql + " ORDER BY thread_id, checkpoint_ns, checkpoint_id DESC",
                              args):
            if filter:
                meta = self.serde.loads_typed((row[7], row[8]))
                if not all(meta.get(k) == v for k, v in filter.items()):
                    continue
            yield self._tuple(row)
            if left is not None:
                left -= 1
                if left <= 0:
                    return

    def _tuple(self, row: tuple[Any, ...]) -> CheckpointTuple:
        (thread_id, ns, checkpoint_id, parent, _run, cp_type, cp_blob, meta_type, meta_blob,
         versions) = row
        checkpoint = self.serde.loads_typed((cp_type, cp_blob))
        values: dict[str, Any] = {}
        for channel, version in json.loads(versions).items():
            got = self._rows("SELECT type, blob FROM blobs WHERE thread_id=? AND "
                             "checkpoint_ns=? AND channel=? AND version=?",
                             (thread_id, ns, channel, version))
            if got and got[0][0] != "empty":
                values[channel] = self.serde.loads_typed((got[0][0], got[0][1]))
        writes = self._rows("SELECT task_id, channel, type, value FROM writes WHERE "
                            "thread_id=? AND checkpoint_ns=? AND checkpoint_id=? "
                            "ORDER BY task_path, task_id, idx", (thread_id, ns, checkpoint_id))
        here = {"thread_id": thread_id, "checkpoint_ns": ns}
        return CheckpointTuple(
            config={"configurable": {**here, "checkpoint_id": checkpoint_id}},
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self.serde.loads_typed((meta_type, meta_blob)),
            parent_config={"configurable": {**here, "checkpoint_id": parent}} if parent
            else None,
            pending_writes=[(task, channel, self.serde.loads_typed((t, v)))
                            for task, channel, t, v in writes])

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded counters (so versions compare as strings in the order they were
        made) with a random fraction, so two forks of one checkpoint never write the same
        version of a channel: the scheme of LangGraph's own savers."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- async: the same calls on a worker thread -------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None
                    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(lambda: list(self.list(
            config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


def _id(value: Any, field: str = "checkpoint_id") -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID or "\x00" in value:
        raise InvalidInput(f"{field} must be a non-empty string of at most {_MAX_ID} "
                           "characters", field=field)
    return value


def _where(config: RunnableConfig) -> tuple[str, str, str | None]:
    """(thread_id, checkpoint_ns, checkpoint_id or None) of a config, checked."""
    conf = (config or {}).get("configurable") if isinstance(config, dict) else None
    if not isinstance(conf, dict) or conf.get("thread_id") is None:
        raise InvalidInput("the config needs configurable.thread_id", field="thread_id")
    thread_id = _id(str(conf["thread_id"]), "thread_id")
    ns = conf.get("checkpoint_ns") or ""
    if not isinstance(ns, str) or len(ns) > _MAX_ID:
        raise InvalidInput("checkpoint_ns must be a short string", field="checkpoint_ns")
    checkpoint_id = conf.get("checkpoint_id")
    return thread_id, ns, None if checkpoint_id is None else _id(checkpoint_id)
