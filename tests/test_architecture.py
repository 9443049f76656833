"""The shape of the house: imports point down, each concept has its home, the faces share
one interface. These fail when a change quietly bends the layout back."""

from __future__ import annotations

import ast
import inspect
import pathlib
import sys

import pytest

import memvault
from memvault.api import VaultAPI

SRC = pathlib.Path(memvault.__file__).parent


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for f in SRC.rglob("*.py"):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    return skip


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, function-level imports included (they
    run too), ``if TYPE_CHECKING:`` blocks not (they never run)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix
                           for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != mod and target.startswith("memvault"):
                    edges[mod].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), leaving out a
    package whose ``__init__`` re-exports its own submodules (not a design cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            top = min(comp, key=len)
            if len(comp) > 1 and not all(c == top or c.startswith(top + ".") for c in comp):
                found.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in list(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The checker itself: a two-module circle and a three-module one are reported; a
    package re-exporting its own submodule is not."""
    edges = {"memvault.a": {"memvault.b"}, "memvault.b": {"memvault.a"},
             "memvault.x": {"memvault.y"}, "memvault.y": {"memvault.z"},
             "memvault.z": {"memvault.x"}, "memvault.p": {"memvault.p.q"},
             "memvault.p.q": {"memvault.p"}}
    assert sorted(cycles(edges)) == [["memvault.a", "memvault.b"],
                                     ["memvault.x", "memvault.y", "memvault.z"]]


def test_the_vault_imports_no_feature_built_on_it() -> None:
    """The facade depends on storage, index, retrieval, models, the guard; the reader,
    chat, scheduler, cube transfer, governance and the faces receive the vault."""
    edges = import_graph()
    above = ("memvault.reader", "memvault.chat", "memvault.scheduler", "memvault.cube",
             "memvault.governance", "memvault.server", "memvault.cli", "memvault.client",
             "memvault.activation", "memvault.parametric", "memvault.evaluation",
             "memvault.integrations")
    reached, todo = set(), ["memvault.vault"]
    while todo:  # everything vault.py pulls in, transitively
        for dep in edges[todo.pop()]:
            if dep not in reached:
                reached.add(dep)
                todo.append(dep)
    assert sorted(m for m in reached if m.startswith(above)) == []


def test_homes_for_the_memory_kinds_and_the_guard() -> None:
    for home in ("plaintext", "activation", "parametric", "guard", "cube", "cli"):
        assert (SRC / home / "__init__.py").is_file(), home
    import memvault.activation as activation
    import memvault.guard as guard
    import memvault.parametric as parametric

    assert activation.ActivationStore.__module__ == "memvault.activation.blocks"
    assert parametric.AdapterStore.__module__ == "memvault.parametric.adapters"
    assert guard.InjectionGuard.__module__ == "memvault.guard.screen"
    # the cube package is the portable format only
    cube_modules = {p.stem for p in (SRC / "cube").glob("*.py")}
    assert cube_modules <= {"__init__", "format", "transfer", "plaintext", "merge", "compose"}


def test_only_the_cli_imports_click() -> None:
    offenders = []
    for mod, path in _modules().items():
        if mod == "memvault.cli" or mod.startswith("memvault.cli."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "click" or n.startswith("click.") for n in names):
                offenders.append(mod)
    assert offenders == []


def _api_members() -> list[str]:
    return sorted(n for n, v in vars(VaultAPI).items()
                  if callable(v) and not n.startswith("_"))


def _implementations() -> list[type]:
    from memvault.client import RemoteVault
    from memvault.governance import ScopedVault

    return [memvault.Vault, ScopedVault, RemoteVault]


@pytest.mark.parametrize("cls", _implementations(), ids=lambda c: c.__name__)
def test_every_vault_declares_and_implements_the_protocol(cls: type) -> None:
    assert VaultAPI in cls.__mro__
    for name in _api_members():
        # implemented by the class itself, not inherited as the Protocol's empty stub
        owner = next(k for k in cls.__mro__ if name in vars(k))
        assert owner is not VaultAPI, f"{cls.__name__}.{name} is missing"
        want = inspect.signature(getattr(VaultAPI, name))
        got = inspect.signature(getattr(cls, name))
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == \
               [(p.name, p.kind, p.default) for p in want.parameters.values()], \
               f"{cls.__name__}.{name}{got} differs from VaultAPI.{name}{want}"


def test_library_reads_no_environment() -> None:
    """Settings are read at the edge (cli/, server/serve) and passed down."""
    offenders = []
    for mod, path in _modules().items():
        if mod.startswith(("memvault.cli", "memvault.server.serve")):
            continue
        text = path.read_text(encoding="utf-8")
        if "os.environ" in text or "getenv(" in text:
            offenders.append(mod)
    assert offenders == []
