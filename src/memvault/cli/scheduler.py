"""``memvault forget``, ``memvault consolidate``, ``memvault scheduler run-once|start|status``.

They take ``--db``/``--embedder``/``--json`` before or after the command name like every
command, work on an existing vault only, and print a short human summary or the JSON
report.
"""

from __future__ import annotations

import time
from typing import Any

import click

from ._common import App, global_options, pass_app

__all__ = ["forget_command", "consolidate_command", "scheduler", "status_command"]


def _llm(name: str) -> Any:
    if name == "none":
        return None
    from ..models.local import load_local_llm

    return load_local_llm()


_LLM_OPTION = click.option("--llm", type=click.Choice(["none", "local"]), default="none",
                           show_default=True,
                           help="Summariser: extractive, or the bundled SmolLM2 (slow load).")


def _forget_line(doc: dict[str, Any]) -> str:
    verb = "would archive" if doc["dry_run"] else "archived"
    lines = [f"{verb} {doc['archived']}, {'would purge' if doc['dry_run'] else 'purged'} "
             f"{doc['purged']}, skipped {len(doc['skipped'])}"]
    lines += [f"  {d['action']:<7} {d['item_id']}  {d['reason']}" for d in doc["decisions"]]
    return "\n".join(lines)


@click.command("forget")
@click.option("--dry-run", is_flag=True, help="Show what would be archived/purged; change nothing.")
@click.option("--grace-days", type=click.FloatRange(0), default=30.0, show_default=True,
              help="Days an archived memory is kept before it is purged.")
@click.option("--no-purge", is_flag=True, help="Archive only; never purge.")
@click.option("--no-cold", is_flag=True, help="Archive expired memories only, not cold ones.")
@global_options
@pass_app
def forget_command(app: App, dry_run: bool, grace_days: float, no_purge: bool,
                   no_cold: bool) -> None:
    """Archive expired and cold memories; purge what forget archived GRACE-DAYS ago."""
    from ..scheduler.forget import ForgetPolicy, forget

    policy = ForgetPolicy(purge_after_days=None if no_purge else grace_days,
                          cold_heat_below=None if no_cold else ForgetPolicy().cold_heat_below)
    vault = app.vault()
    doc = forget(vault, policy, dry_run=dry_run).to_dict()
    app.out(lambda: _forget_line(doc), doc)


def _consolidate_line(doc: dict[str, Any]) -> str:
    fmt = lambda c: ", ".join(f"{n} {k}" for k, n in sorted(c.items())) or "none"  # noqa: E731
    return (f"checked {doc['sessions_checked']} sessions, {doc['topics_checked']} topics; "
            f"created {fmt(doc['created'])}; rewritten {fmt(doc['rewritten'])}; "
            f"links +{doc['links_added']} -{doc['links_removed']}"
            + (f"; {len(doc['fallbacks'])} extractive fallbacks" if doc["fallbacks"] else ""))


@click.command("consolidate")
@click.option("--full", is_flag=True, help="Re-check every session, not only changed ones.")
@click.option("--no-topics", is_flag=True, help="Session summaries only.")
@_LLM_OPTION
@global_options
@pass_app
def consolidate_command(app: App, full: bool, no_topics: bool, llm: str) -> None:
    """Summarise sessions that changed into summary memories (and topics above them)."""
    from ..scheduler.consolidate import ConsolidateConfig, consolidate

    config = ConsolidateConfig(topics=not no_topics)
    vault = app.vault()
    doc = consolidate(vault, _llm(llm), config, full=full).to_dict()
    app.out(lambda: _consolidate_line(doc), doc)


@click.group()
def scheduler() -> None:
    """The lifecycle scheduler (heat, forgetting, links, consolidation, tiers)."""


_TIERS_OPTION = click.option(
    "--tiers", is_flag=True,
    help="Drive the activation and LoRA tiers with the bundled SmolLM2 (slow load): "
         "promote hot memories into <db>.activation/, distil stable ones into "
         "<db>.adapters/ (the places chat reads).")
_STEPS_OPTION = click.option("--distill-steps", type=click.IntRange(1, 100_000), default=60,
                             show_default=True, help="Training steps per distillation.")


def _scheduler(llm: str, tiers: bool, steps: int, config: Any, vault: Any) -> Any:
    from ..scheduler.scheduler import Scheduler
    from ..scheduler.wiring import for_vault

    if tiers:
        return for_vault(vault, _llm("local"), config, steps=steps)
    return Scheduler(config, llm=_llm(llm))


def _pass_lines(doc: dict[str, Any]) -> list[str]:
    lines = [f"pass over {doc['items']} active memories in {doc['seconds']:.2f} s"]
    if "forget" in doc:
        lines.append("forget: " + _forget_line(doc["forget"]).splitlines()[0])
    if "link" in doc:
        lines.append(f"link: {doc['link']['items']} new memories, links "
                     f"{doc['link']['links'] or 'none'}")
    if "consolidate" in doc:
        lines.append("consolidate: " + _consolidate_line(doc["consolidate"]))
    place = doc.get("placement", {})
    lines += [f"promoted {len(p['items'])} memories of {p['scope']} into block {p['block_id']}"
              for p in place.get("promoted", [])]
    lines += [f"demoted block {d['block_id']} of {d['scope']} ({d['reason']})"
              for d in place.get("demoted", [])]
    lines += [f"queued {len(q['items'])} memories of {q['scope']} for distillation"
              for q in place.get("queued", [])]
    lines += [f"distilled adapter {d.get('adapter')}: {d.get('key') or d.get('error')}"
              for d in place.get("distilled", [])]
    lines += [f"error: {e}" for e in place.get("errors", [])]
    lines += [f"  heat {h['heat']:.3f}  {h['id']}  {h['kind']}" for h in doc["hottest"][:5]]
    return lines


@scheduler.command("run-once")
@click.option("--no-forget", is_flag=True, help="Skip the forget policy.")
@_TIERS_OPTION
@_STEPS_OPTION
@_LLM_OPTION
@global_options
@pass_app
def run_once_command(app: App, no_forget: bool, tiers: bool, distill_steps: int,
                     llm: str) -> None:
    """One pass: heat, forget, link new memories, consolidate, placement decisions.

    Without --tiers no activation or LoRA engine is attached, so placement only reports
    heat. With --tiers the pass waits for the distillations it queued."""
    from ..scheduler.scheduler import SchedulerConfig

    config = SchedulerConfig(forget=None) if no_forget else SchedulerConfig()
    vault = app.vault()
    sched = _scheduler(llm, tiers, distill_steps, config, vault)
    doc = sched.run_once(vault, wait=tiers).to_dict()
    app.out(lambda: "\n".join(_pass_lines(doc)), doc)


@scheduler.command("start")
@click.option("--interval", type=click.FloatRange(0.01, 7 * 86_400), default=300.0,
              show_default=True, help="Seconds between passes.")
@click.option("--passes", type=click.IntRange(1), default=None,
              help="Stop after this many passes (default: until Ctrl-C).")
@click.option("--no-forget", is_flag=True, help="Skip the forget policy.")
@_TIERS_OPTION
@_STEPS_OPTION
@_LLM_OPTION
@global_options
@pass_app
def start_command(app: App, interval: float, passes: int | None, no_forget: bool,
                  tiers: bool, distill_steps: int, llm: str) -> None:
    """Run a pass every INTERVAL seconds in the foreground, one summary line per pass.

    Distillations run in the background between passes; each pass audits the ones that
    finished."""
    import dataclasses

    from ..scheduler.scheduler import SchedulerConfig

    config = SchedulerConfig(interval=interval)
    if no_forget:
        config = dataclasses.replace(config, forget=None)
    vault = app.vault()
    sched = _scheduler(llm, tiers, distill_steps, config, vault)
    done = 0
    try:
        while passes is None or done < passes:
            if done:
                time.sleep(interval)
            doc = sched.run_once(vault).to_dict()
            done += 1
            app.out(lambda: _pass_lines(doc)[0], doc)
    except KeyboardInterrupt:
        pass


def _status_lines(doc: dict[str, Any]) -> list[str]:
    mib = 1024 * 1024
    lines = [f"pager budget {doc['budget_bytes'] / mib:.0f} MiB for KV blocks and adapters "
             f"together; new blocks stored as {doc['kv_quant']}",
             f"policy: {doc['policy']}"]
    disk = doc.get("disk", {})
    for scheme, row in sorted(disk.get("blocks", {}).items()):
        per_token = row["bytes"] / row["tokens"] if row["tokens"] else 0
        lines.append(f"on disk: {row['blocks']} {scheme} blocks, {row['bytes'] / mib:.1f} MiB "
                     f"({per_token / 1024:.1f} KiB per token)")
    ad = disk.get("adapters", {"adapters": 0, "bytes": 0})
    lines.append(f"on disk: {ad['adapters']} adapters, {ad['bytes'] / mib:.1f} MiB")
    lines.append(f"resident in this process: {doc['resident_bytes'] / mib:.1f} MiB in "
                 f"{doc['pages']} pages (a server's residency: GET /v1/scheduler)")
    return lines


@scheduler.command("status")
@global_options
@pass_app
def status_command(app: App) -> None:
    """The RAM budget KV blocks and adapters share, how blocks are stored, and what is on
    disk to page in. Residency is per process: a running server reports its own."""
    from ..activation.tier import pager_status

    doc = pager_status(app.vault(), disk=True)
    app.out(lambda: "\n".join(_status_lines(doc)), doc)
