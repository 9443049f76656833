"""Working memory end to end (issue 27): an MCP client (the official SDK, streamable
HTTP) drives a scripted agent that builds a multi-file Python package over 40+ steps,
each seeing at most 2,000 tokens; the server is SIGKILLed at random tool calls and
restarted, and the run resumes from the store and ends with exactly the files of an
uninterrupted run, which also import and pass their own tests."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from memvault.governance.principals import KeyStore  # noqa: E402
from memvault.vault import Vault  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("working_e2e", ROOT / "benchmarks" /
                                               "working_e2e.py")
assert _spec is not None and _spec.loader is not None
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)


def _vault(path: Path) -> str:
    with Vault(path, embedder="hash"):
        pass
    with KeyStore.for_vault(path) as keys:
        return keys.create("builder", "dev", "agent-1")


@pytest.mark.slow
def test_killed_and_resumed_run_builds_the_same_package(tmp_path: Path) -> None:
    clean_db, crash_db = tmp_path / "clean.db", tmp_path / "crash.db"
    clean = e2e.run_build(clean_db, _vault(clean_db), kills=0)
    crashed = e2e.run_build(crash_db, _vault(crash_db), kills=4, seed=7)

    assert clean["planned_steps"] >= 40
    assert len({s.task for s in clean["steps"]}) == clean["planned_steps"]
    assert crashed["kills"] == 4 and crashed["server_starts"] >= 5
    assert crashed["files"] == clean["files"]  # the same files, byte for byte
    assert sorted(clean["files"]) == ["README.md", "calclib/__init__.py"] + \
        [f"calclib/m{i}.py" for i in range(6)] + [f"tests/test_m{i}.py" for i in range(6)]
    # each step saw at most its budget, and less than every file at once would be
    assert max(s.context_tokens for s in clean["steps"]) <= 2000
    assert max(s.context_tokens for s in clean["steps"]) < \
        clean["steps"][-1].all_files_tokens

    # the package the agent wrote works: import it and run the tests it wrote
    out = tmp_path / "pkg"
    for path, content in clean["files"].items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(content)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests"], cwd=out, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(out), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and "6 passed" in run.stdout, run.stdout + run.stderr
    sys.path.insert(0, str(out))
    try:
        import calclib  # type: ignore[import-not-found]

        assert calclib.m0_f5(1) == 2 + sum(range(6))
        assert len(calclib.__all__) == 6
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == "calclib" or n.startswith("calclib.")]:
            del sys.modules[name]
