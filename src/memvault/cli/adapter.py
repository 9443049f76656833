"""``memvault adapter distill|list|ask|delete``: parametric memory on the command line.

A thin face over :mod:`memvault.parametric`. Adapters live in ``<db>.adapters/``
next to a SQLite vault (what ``memvault cube dump`` ships as ``parametric/``) unless
``--dir`` says otherwise; only ``distill`` opens the vault (for its memories). ``distill`` trains on the bundled local model in a background
job with a progress bar; Ctrl-C cancels it and saves nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInput
from ._common import App, global_options, pass_app

__all__ = ["adapter"]


def adapter_store(app: App, directory: str | None) -> Any:
    """The adapters of ``--dir``, else the ones beside the vault file (found from the
    settings: listing or using adapters does not open the vault)."""
    from ..parametric.adapters import AdapterStore
    from .._sidecars import dirs_beside

    if directory:
        return AdapterStore(Path(directory))
    settings = app.settings()
    root = dirs_beside(None if settings.store else Path(settings.path))["parametric"]
    if root is None:
        raise InvalidInput("this vault is not a SQLite file: pass --dir for the adapters")
    return AdapterStore(root)


def _dir_option(f: Any) -> Any:
    return click.option("--dir", "directory", type=click.Path(file_okay=False),
                        help="Adapters directory (default: <db>.adapters).")(f)


def _describe(a: Any) -> dict[str, Any]:
    training = a.meta.get("training", {})
    return {"name": a.name, "key": a.key, "sources": len(a.sources), "bytes": a.size_bytes,
            "model": a.fingerprint.key, "steps": training.get("steps"),
            "seconds": training.get("seconds"), "final_loss": training.get("final_loss"),
            "created_at": a.meta.get("created_at"),
            "retention": (a.meta.get("retention") or {}).get("general")}


@click.group()
def adapter() -> None:
    """Parametric memory: LoRA adapters distilled from memories (bundled local model)."""


@adapter.command("distill")
@click.argument("name")
@click.option("--user", "user_id", metavar="ID", help="Only this user's memories.")
@click.option("--agent", "agent_id", metavar="ID", help="Only this agent's memories.")
@click.option("--cube", "cube_id", metavar="ID", help="Only memories with this cube_id.")
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@click.option("--limit", type=int, default=200, show_default=True,
              help="At most this many memories (newest first).")
@click.option("--steps", type=int, default=60, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--rank", type=int, default=8, show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an adapter with this name.")
@click.option("--retention/--no-retention", default=True, show_default=True,
              help="Measure general-knowledge retention after training (minutes the "
                   "first time; chat refuses an adapter without it).")
@_dir_option
@global_options
@pass_app
def distill_cmd(app: App, name: str, kinds: tuple[str, ...], limit: int,
                directory: str | None, overwrite: bool, retention: bool, user_id: str | None,
                agent_id: str | None, cube_id: str | None, **options: Any) -> None:
    """Train adapter NAME on the active memories of a scope and save it."""
    from ..models.local import load_local_llm
    from ..parametric.distill import start_distill

    vault = app.vault()
    store = adapter_store(app, directory)
    page = vault.list(user_id=user_id, agent_id=agent_id, cube_id=cube_id, limit=limit,
                      filters={"kind": list(kinds)} if kinds else None)
    llm = load_local_llm()
    job = start_distill(store, llm, page.items, name, overwrite=overwrite,
                        progress=None if app.as_json else "tqdm", retention=retention,
                        gate_embedder=vault.embedder, **options)
    try:
        saved = job.result()
    except KeyboardInterrupt:
        job.cancel()
        job.wait()
        raise click.Abort() from None
    doc = _describe(saved)
    app.out(f"distilled {doc['sources']} memories into adapter {name} "
            f"({doc['steps']} steps, {doc['seconds']:.0f} s, loss "
            f"{doc['final_loss']:.3f}, {doc['bytes'] / 2**20:.1f} MiB) in {store.root}", doc)


@adapter.command("list")
@_dir_option
@global_options
@pass_app
def list_cmd(app: App, directory: str | None) -> None:
    """The adapters in the directory."""
    docs = [_describe(a) for a in adapter_store(app, directory).list()]
    human = "\n".join(f"{d['name']:<24} {d['sources']:>5} memories  {d['bytes'] / 2**20:6.1f} MiB"
                      f"  {d['key']}" for d in docs) or "no adapters"
    app.out(human, docs)


@adapter.command("ask")
@click.argument("name")
@click.argument("question")
@click.option("--compare", is_flag=True, help="Also answer with the base model.")
@click.option("--max-tokens", type=int, default=64, show_default=True)
@_dir_option
@global_options
@pass_app
def ask_cmd(app: App, name: str, question: str, compare: bool, max_tokens: int,
            directory: str | None) -> None:
    """Answer QUESTION with adapter NAME switched on (no retrieval: the weights only)."""
    from ..models.local import load_local_llm

    handle = adapter_store(app, directory).get(name)
    llm = load_local_llm()
    messages = [{"role": "user", "content": question}]
    with handle.active(llm):
        doc: dict[str, Any] = {"adapter": handle.key,
                               "answer": llm.complete(messages, max_tokens=max_tokens)}
    if compare:
        doc["base_answer"] = llm.complete(messages, max_tokens=max_tokens)
    human = doc["answer"] + (f"\n(base model: {doc['base_answer']})" if compare else "")
    app.out(human, doc)


@adapter.command("delete")
@click.argument("name")
@_dir_option
@global_options
@pass_app
def delete_cmd(app: App, name: str, directory: str | None) -> None:
    """Remove adapter NAME's files."""
    adapter_store(app, directory).delete(name)
    app.out(f"deleted adapter {name}", {"deleted": name})
