"""``memvault bench ...``: evaluations run through the public Vault API."""

from __future__ import annotations

import time

import click


@click.group()
def bench() -> None:
    """Evaluations and benchmarks (results: JSON + markdown + PNG)."""


@bench.command("locomo")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", default="benchmarks/results", show_default=True,
              help="Directory for locomo.json, locomo.md and locomo.png.")
@click.option("--embedder", default="minilm", show_default=True)
@click.option("--limit", type=int, help="Only the first N conversations (smoke runs).")
@click.option("--variant", "variants", multiple=True,
              help="Only these variants (repeatable); default: all baselines and ablations.")
def locomo_cmd(path: str, out: str, embedder: str, limit: int | None,
               variants: tuple[str, ...]) -> None:
    """Evidence recall@k on a LoCoMo file (the data is not shipped: pass its path)."""
    from ..evaluation.runner import VARIANTS, markdown, run

    chosen = [v for v in VARIANTS if not variants or v.name in variants]
    if not chosen:
        raise click.BadParameter(f"known variants: {', '.join(v.name for v in VARIANTS)}")
    started = time.perf_counter()
    report = run(path, out, embedder=embedder, variants=chosen, limit=limit)
    click.echo(markdown(report))
    click.echo(f"wrote {out}/locomo.json, locomo.md, locomo.png in "
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
