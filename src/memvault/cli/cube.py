"""``memvault cube dump|load|inspect|compose|migrate``: the MemCube format on the command line.

A thin face over :mod:`memvault.cube`. Like the rest of the CLI it reads settings at the
edge (:meth:`Settings.from_env`), accepts ``--db``/``--embedder``/``--json`` before the
command name (the root group keeps them) or after it, and a MemvaultError becomes
``error [<code>]: <message>`` with exit status 2 (done by the root group).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import click

__all__ = ["cube"]


def _root(ctx: click.Context, name: str) -> Any:
    return getattr(ctx.find_root().obj, name, None)


def _settings(ctx: click.Context, db: str | None, embedder: str | None) -> Any:
    from ..settings import Settings

    return Settings.from_env(os.environ, path=db or _root(ctx, "db"),
                             embedder=embedder or _root(ctx, "embedder"))


def _open_vault(ctx: click.Context, db: str | None, embedder: str | None) -> Any:
    from ..vault import Vault

    return Vault(settings=_settings(ctx, db, embedder))


def _vault_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--embedder", metavar="NAME",
                     help="minilm, mpnet or hash[-DIM]; default $MEMVAULT_EMBEDDER, else the "
                          "vault's own (minilm for a new one).")(f)
    return click.option("--db", metavar="PATH",
                        help="Vault file; default $MEMVAULT_PATH or ~/.memvault/vault.db.")(f)


def _json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine output (JSON).")(f)


def _out(ctx: click.Context, as_json: bool, human: str, doc: Any) -> None:
    if as_json or _root(ctx, "as_json"):
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
    else:
        click.echo(human)


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
@_vault_options
@_json_option
@click.pass_context
def dump_cmd(ctx: click.Context, out: str, db: str | None, embedder: str | None,
             as_json: bool, **options: Any) -> None:
    """Write the memories of one scope (default: all) to the new cube directory OUT."""
    from ..cube.transfer import dump

    with _open_vault(ctx, db, embedder) as vault:
        manifest = dump(vault, out, **options)
    _out(ctx, as_json, f"wrote cube {manifest['cube_id']} to {out}: {_counts(manifest)}",
         manifest)


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
@_vault_options
@_json_option
@click.pass_context
def load_cmd(ctx: click.Context, path: str, on_conflict: str, activation_dir: str | None,
             parametric_dir: str | None, db: str | None, embedder: str | None,
             as_json: bool) -> None:
    """Verify the cube at PATH (checksums, format, files) and import it into the vault."""
    from ..vault import Vault
    from ..cube.format import read_manifest
    from ..cube.transfer import load

    settings = _settings(ctx, db, embedder)
    if settings.embedder is None and not settings.store and not settings.path.exists():
        # a vault made by this load takes the cube's embedder (an existing one keeps its own)
        settings = settings.replace(embedder=read_manifest(Path(path))["embedder"]["id"])
    with Vault(settings=settings) as vault:
        report = load(vault, path, on_conflict=on_conflict, activation_dir=activation_dir,
                      parametric_dir=parametric_dir)
    outcome = ", ".join(f"{k} {v}" for k, v in report.items()
                        if isinstance(v, int) and k not in ("items",) and v)
    rejected = report.get("rejected_files") or []
    note = f"; {len(rejected)} activation file(s) rejected (see --json)" if rejected else ""
    _out(ctx, as_json, f"loaded cube {report['cube_id']}: {report['items']} memories "
                       f"({outcome or 'nothing new'}){note}", report)


@cube.command("inspect")
@click.argument("path", type=click.Path(file_okay=False, exists=True))
@click.option("--no-verify", is_flag=True, help="Only read the manifest; skip checksums.")
@_json_option
@click.pass_context
def inspect_cmd(ctx: click.Context, path: str, no_verify: bool, as_json: bool) -> None:
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
    _out(ctx, as_json, "\n".join(lines), info)


@cube.command("compose")
@click.argument("a", type=click.Path(file_okay=False, exists=True))
@click.argument("b", type=click.Path(file_okay=False, exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--name", metavar="ID", help="The new cube's id (default: a new id).")
@click.option("--owner", metavar="NAME", help="Owner recorded in the manifest.")
@_json_option
@click.pass_context
def compose_cmd(ctx: click.Context, a: str, b: str, out: str, name: str | None,
                owner: str | None, as_json: bool) -> None:
    """Write the union of cubes A and B to OUT (diverged ids: the later writer wins)."""
    from ..cube.compose import compose

    manifest = compose(a, b, out, cube_id=name, owner=owner)
    conflicts = len(manifest["provenance"]["conflicts"])
    _out(ctx, as_json, f"wrote cube {manifest['cube_id']} to {out}: {_counts(manifest)}; "
                       f"{conflicts} conflict(s) kept both ways", manifest)


@cube.command("migrate")
@click.argument("path", type=click.Path(file_okay=False, exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--to", "to", required=True, metavar="EMBEDDER",
              help="The new embedder: minilm or hash[-DIM].")
@_json_option
@click.pass_context
def migrate_cmd(ctx: click.Context, path: str, out: str, to: str, as_json: bool) -> None:
    """Re-embed the cube at PATH with another embedder into OUT; verified, nothing lost."""
    from ..cube.compose import migrate

    manifest = migrate(path, out, to)
    _out(ctx, as_json, f"wrote cube {manifest['cube_id']} to {out} embedded with "
                       f"{manifest['embedder']['id']}: {_counts(manifest)}; checksums match",
         manifest)
