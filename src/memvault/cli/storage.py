"""``memvault migrate-store SRC DST``: copy a whole store between SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sys

import click

from ..errors import MemvaultError


@click.command("migrate-store")
@click.argument("src")
@click.argument("dst")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def migrate_store(src: str, dst: str, as_json: bool) -> None:
    """Copy every row of SRC into the empty store DST and verify counts and checksums.

    SRC and DST are SQLite file paths or postgresql:// DSNs. Every version, link, access
    statistic, audit event and the vault's identity move; ids, versions and validity
    times are kept. DST must be new or empty; on any mismatch it should be discarded.
    """
    from tqdm import tqdm

    from ..storage import open_store
    from ..storage.migrate import copy_store

    try:
        source, target = open_store(src), open_store(dst)
        try:
            with tqdm(unit=" rows", file=sys.stderr, disable=as_json or not sys.stderr.isatty(),
                      leave=False) as bar:
                report = copy_store(source, target, progress=lambda table, n: bar.update(n))
        finally:
            source.close()
            target.close()
    except MemvaultError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report, default=str))
        return
    counts = ", ".join(f"{k} {v}" for k, v in report["counts"].items())
    click.echo(f"copied {counts} in {report['seconds']:.2f} s; checksums match")
