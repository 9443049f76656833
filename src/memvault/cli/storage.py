"""``memvault migrate-store SRC DST``: copy a whole store between SQLite and PostgreSQL."""

from __future__ import annotations

import click

from ._common import App, json_option, pass_app, progress_bar

__all__ = ["migrate_store"]


@click.command("migrate-store")
@click.argument("src")
@click.argument("dst")
@json_option
@pass_app
def migrate_store(app: App, src: str, dst: str) -> None:
    """Copy every row of SRC into the empty store DST and verify counts and checksums.

    SRC and DST are SQLite file paths or postgresql:// DSNs. Every version, link, access
    statistic, audit event and the vault's identity move; ids, versions and validity
    times are kept. DST must be new or empty; on any mismatch it should be discarded.
    """
    from ..storage import open_store
    from ..storage.migrate import copy_store

    source = open_store(src)
    try:
        target = open_store(dst)
        try:
            with progress_bar(app, unit=" rows") as bar:
                report = copy_store(source, target, progress=lambda table, n: bar.update(n))
        finally:
            target.close()
    finally:
        source.close()
    counts = ", ".join(f"{k} {v}" for k, v in report["counts"].items())
    app.out(f"copied {counts} in {report['seconds']:.2f} s; checksums match", report)
