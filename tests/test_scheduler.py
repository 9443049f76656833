"""The scheduler on a real SQLite vault: heat-driven promotion/demotion through the tier
protocols, distillation queueing, one full pass of every job, the background thread, and
the CLI. The tiers here record calls: the real activation/LoRA engines live elsewhere."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

import pytest
from click.testing import CliRunner

from memvault import Vault
from memvault.cli import cli
from memvault.errors import ConfigurationError, InvalidInput, ModelError
from memvault.scheduler import (ActivationTier, CheckedActivationTier, HeatConfig,
                                ManagedParametricTier, ParametricTier, PlacementConfig,
                                Scheduler, SchedulerConfig, for_vault)
from memvault.types import MemoryItem, utcnow

U = "maya"
ONLY_PLACEMENT = dict(forget=None, link=None, consolidate=None)


class Activation:
    def __init__(self) -> None:
        self.blocks: dict[str, list[str]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail = False

    def promote(self, scope: Any, items: Sequence[MemoryItem]) -> str:
        if self.fail:
            raise ModelError("could not build the KV cache")
        block_id = f"block-{len(self.calls)}"
        self.blocks[block_id] = [i.id for i in items]
        self.calls.append(("promote", block_id))
        return block_id

    def demote(self, block_id: str) -> None:
        del self.blocks[block_id]
        self.calls.append(("demote", block_id))


class Parametric:
    def __init__(self) -> None:
        self.jobs: list[tuple[dict[str, Any], list[str]]] = []

    def queue(self, scope: Any, items: Sequence[MemoryItem]) -> str:
        self.jobs.append((dict(scope), [i.id for i in items]))
        return f"job-{len(self.jobs)}"


def read(vault: Vault, item: MemoryItem, times: int) -> None:
    for _ in range(times):
        vault.get(item.id)
    vault.flush()


def test_tiers_satisfy_the_protocols() -> None:
    assert isinstance(Activation(), ActivationTier)
    assert isinstance(Parametric(), ParametricTier)


def test_hottest_memories_are_promoted_kept_rebuilt_and_demoted(vault: Vault) -> None:
    items = vault.add_many([f"memory number {i} about Maya" for i in range(5)], user_id=U)
    vault.add("someone else's hot memory", user_id="other")
    for item, n in zip(items, (4, 3, 2, 0, 0)):
        read(vault, item, n)
    tier = Activation()
    sched = Scheduler(SchedulerConfig(**ONLY_PLACEMENT,
                                      placement=PlacementConfig(promote_top=2)),
                      activation=tier)
    report = sched.run_once(vault)
    (block_id, members), = tier.blocks.items()
    assert members == [items[0].id, items[1].id]  # hottest first, other owners apart
    assert report.hottest[0]["id"] == items[0].id
    (event,) = vault.audit(action="promote")
    assert event.details["block_id"] == block_id and event.details["items"] == members
    assert event.details["scope"] == {"user_id": U, "agent_id": None, "cube_id": None}

    sched.run_once(vault)  # nothing changed: the block stays
    assert tier.calls == [("promote", block_id)]

    vault.update(items[1].id, "memory number 1 about Maya, corrected")
    sched.run_once(vault)  # a member has a new version: rebuild, then drop the old block
    assert [c[0] for c in tier.calls] == ["promote", "promote", "demote"]
    assert list(tier.blocks) == [tier.calls[1][1]]
    (demoted,) = vault.audit(action="demote")
    assert demoted.details["reason"] == "replaced" and demoted.details["block_id"] == block_id

    sched.run_once(vault, now=utcnow() + timedelta(days=60))  # everything went cold
    assert tier.blocks == {}
    assert vault.audit(action="demote")[-1].details["reason"] == "nothing hot"
    sched.run_once(vault, now=utcnow() + timedelta(days=61))
    assert len(vault.audit(action="demote")) == 2  # no block, nothing to demote


def test_stable_hot_memories_are_queued_for_distillation_once(vault: Vault) -> None:
    fact = vault.add("Maya is vegetarian", kind="fact", user_id=U)
    turn = vault.add("I had salad", kind="turn", user_id=U)
    rare = vault.add("Maya runs on Sundays", kind="fact", user_id=U)
    read(vault, fact, 5)
    read(vault, turn, 5)
    read(vault, rare, 4)
    tier = Parametric()
    config = SchedulerConfig(**ONLY_PLACEMENT, heat=HeatConfig(half_life_days=30),
                             placement=PlacementConfig(distill_stable_days=1,
                                                       distill_min_access=5,
                                                       distill_min_heat=1.5))
    sched = Scheduler(config, parametric=tier)
    sched.run_once(vault, now=utcnow() + timedelta(hours=12))
    assert tier.jobs == []  # hot, but not stable for a day yet
    later = utcnow() + timedelta(days=2)
    sched.run_once(vault, now=later)
    assert tier.jobs == [({"user_id": U, "agent_id": None, "cube_id": None}, [fact.id])]
    (event,) = vault.audit(action="queue_distill")
    assert event.details["items"] == [fact.id] and event.details["job"] == "job-1"
    sched.run_once(vault, now=later)
    assert len(tier.jobs) == 1  # queued once per version ...
    vault.update(fact.id, "Maya is vegan")
    sched.run_once(vault, now=later)
    assert tier.jobs[1][1] == [fact.id]  # ... and again when the memory changed


def test_a_failing_tier_is_reported_and_audits_nothing(vault: Vault) -> None:
    item = vault.add("Maya's hot memory", user_id=U)
    read(vault, item, 3)
    tier = Activation()
    tier.fail = True
    report = Scheduler(SchedulerConfig(link=None, consolidate=None),
                       activation=tier).run_once(vault)
    assert report.steps["placement"]["errors"][0].startswith("activation")
    assert "model_error" in report.steps["placement"]["errors"][0]
    assert vault.audit(action="promote") == []
    assert "forget" in report.steps  # the other jobs ran
    tier.fail = False
    Scheduler(SchedulerConfig(**ONLY_PLACEMENT), activation=tier).run_once(vault)
    assert len(tier.blocks) == 1  # and the next pass succeeds


def test_one_pass_runs_every_job_and_audits_every_move(vault: Vault) -> None:
    vault.add_messages([{"role": "user", "name": "Maya", "content": "I moved to Lisbon."},
                        {"role": "user", "name": "Bob", "content": "Lisbon suits you."}],
                       user_id=U, session_id="s1")
    vault.add("Maya's new flat in Lisbon has a balcony", kind="fact", user_id=U)
    expired = vault.add("door code 1234 today", user_id=U,
                        expires_at=utcnow() + timedelta(minutes=1))
    seq = vault.store.last_change()
    report = Scheduler().run_once(vault, now=utcnow() + timedelta(minutes=5))
    doc = report.to_dict()
    assert doc["forget"]["archived"] == 1 and vault.get(expired.id).status == "archived"
    assert doc["link"]["links"].get("entity", 0) >= 1
    assert doc["consolidate"]["created"] == {"session": 1}
    assert json.loads(json.dumps(doc)) == doc  # the report is JSON-ready
    actions = {e.action for e in vault.audit(after=seq, limit=1000)}
    assert {"archive", "link", "add"} <= actions
    second = Scheduler().run_once(vault, now=utcnow() + timedelta(minutes=6))
    assert second.steps["link"]["links"] == {} and not second.steps["consolidate"]["created"]


def test_background_thread_runs_passes_until_stopped(vault: Vault) -> None:
    item = vault.add("Maya's hot memory", user_id=U)
    read(vault, item, 3)
    tier = Activation()
    sched = Scheduler(SchedulerConfig(interval=0.05), activation=tier).start(vault)
    try:
        with pytest.raises(ConfigurationError):
            sched.start(vault)
        deadline = time.monotonic() + 20
        while sched.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sched.runs >= 2 and sched.last_error is None
        assert len(tier.blocks) == 1
    finally:
        sched.stop()
    assert not sched.running
    runs = sched.runs
    time.sleep(0.2)
    assert sched.runs == runs
    with pytest.raises(InvalidInput):
        SchedulerConfig(interval=0)


def test_cli_forget_consolidate_and_run_once(db_path: Path) -> None:
    with Vault(db_path, embedder="hash") as v:
        v.add_messages([{"role": "user", "content": "Ana visited Porto."},
                        {"role": "user", "content": "Porto was sunny."}],
                       user_id=U, session_id="s1")
        gone = v.add("expired note", user_id=U, expires_at=utcnow() - timedelta(seconds=1))
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(cli, ["--db", str(db_path), "--embedder", "hash", *args])
        assert result.exit_code == 0, result.output
        return result

    dry = json.loads(run("forget", "--dry-run", "--json").output)
    assert dry["dry_run"] and [d["item_id"] for d in dry["decisions"]] == [gone.id]
    assert "would archive 1" in run("forget", "--dry-run").output
    assert json.loads(run("--json", "forget").output)["archived"] == 1
    cons = json.loads(run("consolidate", "--json").output)
    assert cons["created"] == {"session": 1}
    assert "checked 0 sessions" in run("consolidate").output
    once = json.loads(run("scheduler", "run-once", "--json").output)
    assert once["items"] == 3 and "placement" in once  # 2 turns + 1 summary
    assert "active memories" in run("scheduler", "run-once", "--no-forget").output
    bad = runner.invoke(cli, ["--db", str(db_path), "--embedder", "hash-64", "forget"])
    assert bad.exit_code == 2 and "configuration_error" in bad.output


class CheckedActivation(Activation):
    """Also answers ``current``: False once a block went out of date outside the store."""

    def __init__(self) -> None:
        super().__init__()
        self.outdated: set[str] = set()

    def current(self, scope: Any, block_id: str) -> bool:
        return block_id not in self.outdated


class ManagedParametric(Parametric):
    """Jobs finish when the test says so; ``collect`` reports them, ``drop`` records."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[dict[str, Any]] = []
        self.dropped: list[dict[str, Any]] = []
        self.timeouts: list[float | None] = []

    def collect(self, timeout: float | None = 0.0) -> list[dict[str, Any]]:
        self.timeouts.append(timeout)
        out, self.finished = self.finished, []
        return out

    def drop(self, scope: Any) -> str | None:
        self.dropped.append(dict(scope))
        return "lora:maya:1"


def test_a_block_the_tier_calls_outdated_is_rebuilt(vault: Vault) -> None:
    item = vault.add("Maya's hot memory", user_id=U)
    read(vault, item, 3)
    tier = CheckedActivation()
    assert isinstance(tier, CheckedActivationTier) and not isinstance(Activation(),
                                                                       CheckedActivationTier)
    sched = Scheduler(SchedulerConfig(**ONLY_PLACEMENT), activation=tier)
    sched.run_once(vault)
    sched.run_once(vault)
    (first,) = tier.blocks
    tier.outdated.add(first)  # e.g. the scope's adapter was re-distilled
    sched.run_once(vault)
    assert [c[0] for c in tier.calls] == ["promote", "promote", "demote"]
    assert list(tier.blocks) != [first] and len(tier.blocks) == 1
    assert vault.audit(action="demote")[-1].details["reason"] == "replaced"


def test_distillation_is_collected_redone_on_change_and_dropped(vault: Vault) -> None:
    facts = [vault.add(f"Maya fact {n}", kind="fact", user_id=U) for n in range(2)]
    for fact in facts:
        read(vault, fact, 5)
    tier = ManagedParametric()
    assert isinstance(tier, ManagedParametricTier)
    config = SchedulerConfig(**ONLY_PLACEMENT, placement=PlacementConfig(distill_stable_days=0))
    sched = Scheduler(config, parametric=tier)
    scope = {"user_id": U, "agent_id": None, "cube_id": None}
    with pytest.raises(InvalidInput):
        sched.run_once(vault, wait=-1)

    sched.run_once(vault, wait=True)
    assert tier.timeouts == [None]  # wait=True: until the queued jobs are done
    assert sorted(tier.jobs[0][1]) == sorted(f.id for f in facts)
    tier.finished = [{"job": "job-1", "scope": scope, "items": [facts[0].id], "key": "k1"},
                     {"job": "job-0", "scope": scope, "items": [], "error": "model_error: x"},
                     {"job": "job-9", "scope": scope, "items": [], "error": "conflict: c",
                      "superseded": True}]
    report = sched.run_once(vault)
    assert tier.timeouts[-1] == 0.0 and len(tier.jobs) == 1  # nothing new to queue
    assert [d["job"] for d in report.steps["placement"]["distilled"]] == ["job-1", "job-0",
                                                                         "job-9"]
    assert len(report.steps["placement"]["errors"]) == 1  # superseded is not a failure
    assert vault.audit(action="distill_superseded")[0].details["job"] == "job-9"
    assert vault.audit(action="distilled")[0].details["key"] == "k1"
    assert vault.audit(action="distill_failed")[0].details["error"] == "model_error: x"
    assert "model_error: x" in report.steps["placement"]["errors"][0]

    vault.delete(facts[1].id)  # its text must leave the weights: re-distil the rest
    sched.run_once(vault)
    assert tier.jobs[1] == (scope, [facts[0].id])
    assert vault.audit(action="queue_distill")[-1].details["changed"] == [facts[1].id]
    sched.run_once(vault)
    assert len(tier.jobs) == 2  # once

    vault.delete(facts[0].id)  # nothing left: the adapter goes
    report = sched.run_once(vault)
    assert tier.dropped == [scope] and len(tier.jobs) == 2
    (event,) = [e for e in vault.audit(action="demote") if e.details["tier"] == "parametric"]
    assert event.details["adapter"] == "lora:maya:1" and event.details["items"] == [facts[0].id]
    sched.run_once(vault)
    assert len(tier.dropped) == 1


def test_for_vault_attaches_tiers_only_for_a_local_model(vault: Vault) -> None:
    from memvault.models.scripted import ScriptedLLMServer
    from memvault.models import get_llm

    assert for_vault(vault).activation is None and for_vault(vault).parametric is None
    with ScriptedLLMServer(default="summary") as server:
        llm = get_llm(f"openai:{server.base_url}#{server.model}")
        sched = for_vault(vault, llm)
        assert sched.llm is llm and sched.activation is None and sched.parametric is None


def test_cli_scheduler_start_runs_passes(db_path: Path) -> None:
    with Vault(db_path, embedder="hash") as v:
        v.add("Maya's note", user_id=U)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "--embedder", "hash", "scheduler",
                                      "start", "--interval", "0.01", "--passes", "2", "--json"])
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.output.splitlines()]
    assert len(docs) == 2 and all(d["items"] == 1 for d in docs)
    human = CliRunner().invoke(cli, ["--db", str(db_path), "--embedder", "hash", "scheduler",
                                     "start", "--passes", "1", "--no-forget"])
    assert human.exit_code == 0 and "pass over 1 active memories" in human.output
