"""``memvault cube dump|load|inspect|compose|migrate``: the MemCube format on the command line.

A thin face over :mod:`memvault.cube`, with the options, errors and output of
:mod:`memvault.cli._common`. ``dump`` reads an existing vault; ``load`` creates the vault
if there is none (with the cube's embedder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import App, global_options, json_option, pass_app

__all__ = ["cube"]


def _counts(manifest: dict[str, Any]) -> str:
    c = manifest.get("plaintext", {}).get("counts", {})
    files = sum(1 for e in manifest["files"] if e["path"] != "plaintext.sqlite")
    return (f"{manifest.get('plaintext', {}).get('items', '?')} memories, "
            f"{c.get('versions', '?')} versions, {c.get('links', '?')} links, "
            f"{c.get('audit', '?')} audit events, {files} activation/parametric files")


@click.group()
def cube() -> None:
    """MemCubes: dump, load, inspect, compose and migrate portable memory directories."""


@cube.command("dump")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--user", "user_id", metavar="ID", help="Only this user's memories.")
@click.option("--agent", "agent_id", metavar="ID", help="Only this agent's memories.")
@click.option("--session", "session_id", metavar="ID", help="Only this session's memories.")
@click.option("--cube", "cube_id", metavar="ID", help="Only memories with this cube_id.")
@click.option("--name", metavar="ID", help="The cube's id (default: --cube or a new id).")
@click.option("--owner", metavar="NAME", help="Owner recorded in the manifest.")
@click.option("--activation", "activation_dir", type=click.Path(file_okay=False, exists=True),
              help="Activation directory (default for a whole-vault dump: <db>.activation).")
@click.option("--parametric", "parametric_dir", type=click.Path(file_okay=False, exists=True),
              help="Adapters directory (default for a whole-vault dump: <db>.adapters).")
@global_options
@pass_app
def dump_cmd(app: App, out: str, **options: Any) -> None:
    """Write the memories of one scope (default: all) to the new cube directory OUT."""
    from ..cube.transfer import dump

    manifest = dump(app.vault(), out, **options)
    app.out(f"wrote cube {manifest['cube_id']} to {out}: {_counts(manifest)}", manifest)


@cube.command("load")
@click.argument("path", type=click.Path(file_okay=False, exists=True))
@click.option("--on-conflict", type=click.Choice(["fail", "ours", "theirs", "keep-both"]),
              default="fail", show_default=True,
              help="Same id, different history: refuse, keep the vault's, put the cube's "
                   "on top, or keep both (the cube's under a derived id).")
@click.option("--activation", "activation_dir", type=click.Path(file_okay=False),
              help="Where activation files go (default: <db>.activation).")
@click.option("--parametric", "parametric_dir", type=click.Path(file_okay=False),
              help="Where adapter files go (default: <db>.adapters).")
@global_options
@pass_app
def load_cmd(app: App, path: str, on_conflict: str, activation_dir: str | None,
             parametric_dir: str | None) -> None:
    """Verify the cube at PATH (checksums, format, files) and import it into the vault."""
    from ..cube.format import read_manifest
    from ..cube.transfer import load

    settings = app.settings()
    if settings.embedder is None and not settings.store and not settings.path.exists():
        # a vault made by this load takes the cube's embedder (an existing one keeps its own)
        settings = settings.replace(embedder=read_manifest(Path(path))["embedder"]["id"])
    report = load(app.vault_for_write(settings), path, on_conflict=on_conflict,
                  activation_dir=activation_dir, parametric_dir=parametric_dir)
    outcome = ", ".join(f"{k} {v}" for k, v in report.items()
                        if isinstance(v, int) and k not in ("items",) and v)
    rejected = report.get("rejected_files") or []
    note = f"; {len(rejected)} activation file(s) rejected (see --json)" if rejected else ""
    app.out(f"loaded cube {report['cube_id']}: {report['items']} memories "
            f"({outcome or 'nothing new'}){note}", report)


@cube.command("inspect")
@click.argument("path", type=click.Path(file_okay=False, exists=True))
@click.option("--no-verify", is_flag=True, help="Only read the manifest; skip checksums.")
@json_option
@pass_app
def inspect_cmd(app: App, path: str, no_verify: bool) -> None:
    """Show a cube's manifest summary; verifies every file unless --no-verify."""
    from ..cube.transfer import inspect

    info = inspect(path, check=not no_verify)
    emb = info["embedder"]
    lines = [f"cube       {info['cube_id']}  (format {info['format_version']}, "
             f"{'verified' if info['verified'] else 'NOT verified'})",
             f"owner      {info.get('owner')}   scope {info.get('scope') or 'whole vault'}",
             f"embedder   {emb['id']} ({emb['dim']}-d)",
             f"contents   {_counts(info)}",
             "bytes      " + ", ".join(f"{k} {v:,}" for k, v in info["bytes"].items()),
             f"updated    {info.get('updated_at')}"]
    app.out("\n".join(lines), info)


@cube.command("compose")
@click.argument("a", type=click.Path(file_okay=False, exists=True))
@click.argument("b", type=click.Path(file_okay=False, exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--name", metavar="ID", help="The new cube's id (default: a new id).")
@click.option("--owner", metavar="NAME", help="Owner recorded in the manifest.")
@json_option
@pass_app
def compose_cmd(app: App, a: str, b: str, out: str, name: str | None,
                owner: str | None) -> None:
    """Write the union of cubes A and B to OUT (diverged ids: the later writer wins)."""
    from ..cube.compose import compose

    manifest = compose(a, b, out, cube_id=name, owner=owner)
    conflicts = len(manifest["provenance"]["conflicts"])
    app.out(f"wrote cube {manifest['cube_id']} to {out}: {_counts(manifest)}; "
            f"{conflicts} conflict(s) kept both ways", manifest)


@cube.command("migrate")
@click.argument("path", type=click.Path(file_okay=False, exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--to", "to", required=True, metavar="EMBEDDER",
              help="The new embedder: minilm or hash[-DIM].")
@json_option
@pass_app
def migrate_cmd(app: App, path: str, out: str, to: str) -> None:
    """Re-embed the cube at PATH with another embedder into OUT; verified, nothing lost."""
    from ..cube.compose import migrate

    manifest = migrate(path, out, to)
    app.out(f"wrote cube {manifest['cube_id']} to {out} embedded with "
            f"{manifest['embedder']['id']}: {_counts(manifest)}; checksums match", manifest)
