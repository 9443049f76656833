"""``memvault bench ...``: evaluations run through the public Vault API."""

from __future__ import annotations

import re
import time

import click


@click.group()
def bench() -> None:
    """Evaluations and benchmarks (results: JSON + markdown + PNG)."""


@bench.command("locomo")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", default="benchmarks/results", show_default=True,
              help="Directory for <name>.json, <name>.md and <name>.png.")
@click.option("--name", default="locomo", show_default=True, help="Report file name.")
@click.option("--embedder", default="minilm", show_default=True)
@click.option("--limit", type=int, help="Only the first N conversations (smoke runs).")
@click.option("--variant", "variants", multiple=True,
              help="Only these variants (repeatable); default: all baselines and ablations.")
@click.option("--ingest", "ingest", multiple=True, type=click.Choice(["turns", "fine"]),
              help="turns: add_messages (default); fine: remember(fine), rules only. "
                   "Repeatable: each mode is a suite.")
def locomo_cmd(paths: tuple[str, ...], out: str, name: str, embedder: str,
               limit: int | None, variants: tuple[str, ...], ingest: tuple[str, ...]) -> None:
    """Evidence recall@k, MRR and hit@1 on LoCoMo-format files (LoCoMo itself is not
    shipped: pass its path; `memvault bench generate` writes more). Several files, or
    ingest modes, are suites: the report checks the default rule across them."""
    from ..evaluation.runner import VARIANTS, markdown, run_suites

    chosen = [v for v in VARIANTS if not variants or v.name in variants]
    if not chosen:
        raise click.BadParameter(f"known variants: {', '.join(v.name for v in VARIANTS)}")
    if not re.fullmatch(r"[\w.-]{1,64}", name):
        raise click.BadParameter("letters, digits, '.', '_' or '-' only", param_hint="--name")
    started = time.perf_counter()
    report = run_suites(list(paths), out, name=name, embedder=embedder, variants=chosen,
                        limit=limit, ingest=ingest or ("turns",))
    click.echo(markdown(report))
    click.echo(f"wrote {out}/{name}.json, {name}.md, {name}.png in "
               f"{time.perf_counter() - started:.0f} s")


@bench.command("generate")
@click.option("--seed", type=int, required=True, help="Same seed, same file.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="JSON file to write (LoCoMo's format).")
@click.option("--conversations", type=int, default=4, show_default=True)
@click.option("--sessions", type=int, default=20, show_default=True,
              help="Sessions per conversation.")
def generate_cmd(seed: int, out: str, conversations: int, sessions: int) -> None:
    """Write a generated chat suite (changing facts, distractors, LongMemEval-style
    questions) that `memvault bench locomo` scores."""
    from ..errors import InvalidInput
    from ..evaluation.generate import write

    try:  # a bad option is a MemvaultError: the group prints it on one line, exit 2
        counts = write(out, seed, conversations=conversations, sessions=sessions)
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc}") from exc
    click.echo(f"wrote {out}: {counts['conversations']} conversations, {counts['turns']} "
               f"turns, {counts['questions']} questions (seed {seed})")
