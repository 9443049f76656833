"""The README's marked benchmark tables match the committed results files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_readme_figures.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_readme_tables_match_results() -> None:
    out = _run()
    assert out.returncode == 0, out.stdout + out.stderr
    # the check must actually check something: the core, PostgreSQL and guard tables
    assert int(out.stdout.split("check_readme_figures: ")[1].split()[0]) >= 23


def _fake_repo(tmp_path: Path, row: str, value: float = 1.234) -> Path:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "x.json").write_text(
        json.dumps({"a": {"p50_ms": value, "n": 100000}, "s": {"k=1,t=4": {"recall@10": 0.5}}}))
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n\n<!-- figures: benchmarks/results/x.json\n"
        "| {a.n:,} | {a.p50_ms:.2f} ms | {a.p50_ms * 2:.1f} | {s.'k=1,t=4'.'recall@10':.0%} |\n-->\n"
        "| n | p50 | twice | recall |\n|---|---|---|---|\n" + row + "\n\n| free | table |\n|---|---|\n| 9 | 9 |\n")
    return readme


def test_a_changed_figure_fails_and_write_repairs(tmp_path: Path) -> None:
    readme = _fake_repo(tmp_path, "| 100,000 | 1.23 ms | 2.5 | 50% |")
    assert _run("--readme", str(readme)).returncode == 0
    readme = _fake_repo(tmp_path / "b", "| 100,000 | 0.72 ms | 2.5 | 50% |")
    out = _run("--readme", str(readme))
    assert out.returncode == 1 and "0.72 ms" in out.stdout and "1.23 ms" in out.stdout
    assert _run("--readme", str(readme), "--write").returncode == 0
    assert "| 100,000 | 1.23 ms | 2.5 | 50% |" in readme.read_text()
    assert "| 9 | 9 |" in readme.read_text()  # unmarked tables are left alone
    assert _run("--readme", str(readme)).returncode == 0


def test_broken_markers_are_a_clear_error(tmp_path: Path) -> None:
    readme = _fake_repo(tmp_path, "| 1 | 2 | 3 | 4 |")
    readme.write_text(readme.read_text().replace("{a.n:,}", "{a.missing}"))
    out = _run("--readme", str(readme))
    assert out.returncode == 2 and "missing" in out.stderr and "Traceback" not in out.stderr
    readme.write_text(readme.read_text().replace("x.json", "nope.json"))
    out = _run("--readme", str(readme))
    assert out.returncode == 2 and "no such results file" in out.stderr
    readme.write_text(readme.read_text().replace("{a.missing}", "{__import__('os')}").replace("nope.json", "x.json"))
    out = _run("--readme", str(readme))
    assert out.returncode == 2 and "__import__" in out.stderr and "Traceback" not in out.stderr
