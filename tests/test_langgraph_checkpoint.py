"""MemvaultSaver: LangGraph's official conformance suite (langgraph-checkpoint-conformance),
the refusal of pickled payloads, and a real graph that survives SIGKILL between steps."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (BASE_CAPABILITIES,
                                                           EXTENDED_CAPABILITIES)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from memvault import ConfigurationError, IntegrityError, Vault
from memvault.integrations.langgraph import MemvaultSaver, SafeSerializer

SRC = Path(__file__).resolve().parent.parent / "src"


def test_the_official_conformance_suite_passes_every_capability(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault.db", embedder="hash")
    counter = iter(range(100))

    @checkpointer_test(name="MemvaultSaver")
    async def memvault_saver():
        # a fresh file per capability suite, next to a real vault
        saver = MemvaultSaver(vault, path=tmp_path / f"cp{next(counter)}.sqlite")
        yield saver
        saver.close()

    try:
        report = asyncio.run(validate(memvault_saver))
    finally:
        vault.close()
    report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert failures == {}
    assert report.passed_all_base()
    claimed = {c.value for c in BASE_CAPABILITIES | EXTENDED_CAPABILITIES}
    assert {n for n, r in report.results.items() if r.passed} == claimed
    assert sum(r.tests_passed for r in report.results.values()) >= 80


def test_checkpoints_live_beside_the_vault_with_its_durability(tmp_path: Path) -> None:
    with Vault(tmp_path / "vault.db", embedder="hash") as vault:
        saver = MemvaultSaver(vault)
        assert saver.path == tmp_path / "vault.db.langgraph.sqlite"
        assert saver._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert saver._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        saver.close()


def _stored_config(saver: MemvaultSaver) -> dict:
    from langgraph.checkpoint.base import empty_checkpoint

    cp = empty_checkpoint()
    cp["channel_values"] = {"messages": ["hello"]}
    cp["channel_versions"] = {"messages": saver.get_next_version(None, None)}
    return saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, cp,
                     {"source": "input", "step": -1}, cp["channel_versions"])


def test_a_pickled_payload_on_disk_is_refused_not_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    saver = MemvaultSaver(path=tmp_path / "cp.sqlite")
    config = _stored_config(saver)
    assert saver.get_tuple(config).checkpoint["channel_values"] == {"messages": ["hello"]}

    class Boom:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    evil = pickle.dumps(Boom())
    db = sqlite3.connect(tmp_path / "cp.sqlite")
    db.execute("UPDATE blobs SET type='pickle', blob=?", (evil,))
    db.commit()
    db.close()
    with pytest.raises(IntegrityError, match="never unpickles"):
        saver.get_tuple(config)
    assert not marker.exists()
    # and the writes table too
    saver.put_writes(config, [("ch", {"a": 1})], "task-1")
    db = sqlite3.connect(tmp_path / "cp.sqlite")
    db.execute("UPDATE blobs SET type='msgpack', blob=?", (b"\x91\x01",))
    db.execute("UPDATE writes SET type='pickle', value=?", (evil,))
    db.commit()
    db.close()
    with pytest.raises(IntegrityError):
        saver.get_tuple(config)
    assert not marker.exists()
    saver.close()


def test_a_serializer_that_may_unpickle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        MemvaultSaver(path=tmp_path / "cp.sqlite", serde=JsonPlusSerializer(pickle_fallback=True))
    serde = SafeSerializer()
    assert serde.pickle_fallback is False
    with pytest.raises(Exception):
        serde.dumps_typed(object())  # no pickle fallback for what msgpack cannot encode


def test_msgpack_does_not_call_arbitrary_importables(tmp_path: Path) -> None:
    """A msgpack extension naming os.system must not run it."""
    import ormsgpack

    from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_POS_ARGS

    marker = tmp_path / "ran"
    payload = ormsgpack.packb(ormsgpack.Ext(EXT_CONSTRUCTOR_POS_ARGS, ormsgpack.packb(
        ("os", "system", [f"touch {marker}"]))))
    value = SafeSerializer().loads_typed(("msgpack", payload))
    assert not marker.exists()
    assert value != 0  # os.system's return value would be 0


_GRAPH = textwrap.dedent('''
    import sys, time
    from typing import TypedDict
    from langgraph.graph import StateGraph, START, END
    from memvault import Vault
    from memvault.integrations.langgraph import MemvaultSaver

    db, thread, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    STEPS = 5

    class State(TypedDict):
        log: list[str]
        total: int

    def make(i):
        def step(state):
            print(f"enter {i}", flush=True)
            if mode == "hang" and i == 3:
                time.sleep(600)  # killed here: steps 0..2 are checkpointed
            return {"log": state["log"] + [f"step{i}:{state['total']}"],
                    "total": state["total"] * 3 + i}
        return step

    builder = StateGraph(State)
    for i in range(STEPS):
        builder.add_node(f"s{i}", make(i))
    builder.add_edge(START, "s0")
    for i in range(STEPS - 1):
        builder.add_edge(f"s{i}", f"s{i + 1}")
    builder.add_edge(f"s{STEPS - 1}", END)
    vault = Vault(db, embedder="hash")
    saver = MemvaultSaver(vault)
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": thread}}
    if mode == "resume":
        state = graph.get_state(config)
        print("resume-from", list(state.next), flush=True)
        out = graph.invoke(None, config, durability="sync")
    else:
        out = graph.invoke({"log": [], "total": 1}, config, durability="sync")
    import json
    print("FINAL " + json.dumps(out), flush=True)
''')


def _run(script: Path, *args: str, timeout: float = 120) -> str:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_graph_killed_between_steps_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    script = tmp_path / "graph.py"
    script.write_text(_GRAPH)
    reference = _run(script, str(tmp_path / "ref.db"), "t", "straight")
    expected = json.loads(reference.split("FINAL ", 1)[1])

    db = str(tmp_path / "crash.db")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen([sys.executable, str(script), db, "t", "hang"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        for line in child.stdout:  # type: ignore[union-attr]
            seen.append(line.strip())
            if line.strip() == "enter 3":
                break
        assert seen[-1] == "enter 3", (seen, child.stderr.read())  # type: ignore[union-attr]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL

    resumed = _run(script, db, "t", "resume")
    assert "resume-from ['s3']" in resumed
    assert "enter 0" not in resumed and "enter 2" not in resumed  # not run again
    assert json.loads(resumed.split("FINAL ", 1)[1]) == expected
    assert [entry.split(":")[0] for entry in expected["log"]] == [f"step{i}" for i in range(5)]
