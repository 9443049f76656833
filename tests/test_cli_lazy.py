"""The command line answers at once: ``memvault --help`` imports no command module, a
by-id read imports neither the retrieval stack nor the faces, and the root group's
registry tells the truth about every command. Timing itself is a benchmark
(``make bench-cli``), not a test: these check what is imported, which is what costs."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import memvault
from memvault import Vault
from memvault.cli import COMMANDS, cli

CLI_DIR = Path(memvault.__file__).parent / "cli"
HEAVY = ("numpy", "faiss", "fastapi", "uvicorn", "mcp", "torch", "transformers", "tqdm",
         "memvault.retrieval.searcher", "memvault.guard.rules", "memvault.reader",
         "memvault.scheduler", "memvault.chat", "memvault.server", "memvault.governance")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(memvault.__file__).parents[1]),
                                         env.get("PYTHONPATH", "")])
    return env


def _modules_after(args: list[str]) -> tuple[list[str], str]:
    """Run ``memvault ARGS`` in a fresh interpreter; the modules it imported, its stdout."""
    script = ("import sys, json\n"
              "from memvault.cli import cli\n"
              f"cli.main({args!r}, prog_name='memvault', standalone_mode=False)\n"
              "sys.stdout.write('\\n@@' + json.dumps(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    out, _, mods = proc.stdout.rpartition("\n@@")
    return json.loads(mods), out


def _heavy(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_help_lists_every_command_and_imports_none() -> None:
    modules, out = _modules_after(["--help"])
    loaded = sorted(m for m in modules if m.startswith("memvault.cli.")
                    and m not in ("memvault.cli._common",))
    assert loaded == [], loaded
    assert _heavy(modules) == [] and "memvault.vault" not in modules
    for name, (_, _, line) in COMMANDS.items():
        assert f"  {name} " in out, name
        assert line.split()[0] in out


def test_a_by_id_read_loads_no_index_model_or_face(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with Vault(db, embedder="hash") as vault:
        item = vault.add("Maya adopted a dog called Rex")
    for args in (["--db", str(db), "get", item.id], ["--db", str(db), "history", item.id],
                 ["--db", str(db), "list"]):
        modules, out = _modules_after(args)
        assert "Rex" in out
        assert _heavy(modules) == [], (args, _heavy(modules))
        assert [m for m in modules if m.startswith("memvault.cli.")] == \
            ["memvault.cli._common", "memvault.cli._tables", "memvault.cli.reads"]
    # a search does load them: the check above would see an import if there were one
    modules, out = _modules_after(["--db", str(db), "search", "dog"])
    assert "Rex" in out and "faiss" in modules and "numpy" in modules


def test_the_default_embedder_is_named_not_loaded_for_a_read(tmp_path: Path) -> None:
    """Opening a MiniLM vault checks the embedder identity (its files must be there) but
    a by-id read never loads the weights, nor numpy."""
    db = tmp_path / "m.db"
    proc = subprocess.run([sys.executable, "-m", "memvault", "--db", str(db), "init"],
                          capture_output=True, text=True, env=_env(), timeout=120)
    if proc.returncode != 0 and "model" in proc.stderr:
        pytest.skip(f"MiniLM not installed: {proc.stderr.strip()}")
    assert proc.returncode == 0 and "all-minilm-l6-v2" in proc.stdout, proc.stderr
    modules, out = _modules_after(["--db", str(db), "list"])
    assert "memvault.models.minilm" in modules and "numpy" not in modules
    assert "no memories" in out


def test_the_registry_tells_the_truth() -> None:
    """Each entry names a click command of that name whose own short help is the line
    ``--help`` shows without importing it."""
    import click
    import importlib

    assert sorted(COMMANDS) == sorted(set(COMMANDS))
    for name, (module, attr, line) in COMMANDS.items():
        command = getattr(importlib.import_module(f"memvault.cli.{module}"), attr)
        assert isinstance(command, click.Command) and command.name == name, name
        assert command.get_short_help_str(200) == line, (name, command.get_short_help_str(200))
        assert cli.get_command(click.Context(cli), name) is command


def test_no_command_module_imports_the_cli_package() -> None:
    """Submodules import ``_common``, never ``memvault.cli`` itself (no cycle, and the
    root group stays free to import them lazily)."""
    offenders = []
    for path in CLI_DIR.glob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if (node.level == 1 and node.module is None) or node.module == "memvault.cli":
                    offenders.append(path.name)
            elif isinstance(node, ast.Import):
                offenders += [path.name for a in node.names if a.name == "memvault.cli"]
    assert offenders == []


def test_the_console_script_and_module_entry_points(tmp_path: Path) -> None:
    for argv in ([sys.executable, "-m", "memvault", "--version"],
                 [sys.executable, "-m", "memvault.cli", "--version"]):
        proc = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=60)
        assert proc.returncode == 0 and memvault.__version__ in proc.stdout, proc.stderr
