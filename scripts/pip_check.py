"""`pip check` for a memvault venv, knowing which packages we install without dependencies.

Why: the model-weight packages pinned in requirements/*.txt are installed with --no-deps
on purpose (their declared dependencies, sentence-transformers, an Orange add-on,
llama-cpp-python, are never imported), so plain `pip check` always reports them. This
runs `pip check` in the venv of PYTHON and fails on anything else: a missing dependency
of any other package, a version conflict, or a model package that is not ours.

    python scripts/pip_check.py [PYTHON]     # default: the interpreter running this
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"
_MISSING = re.compile(r"^(\S+) \S+ requires (\S+), which is not installed\.$")


def no_deps_packages() -> set[str]:
    """Normalised names of the packages the requirements files pin (installed --no-deps)."""
    names = set()
    for path in REQUIREMENTS.glob("*.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "-")):
                names.add(_norm(line.split("==", 1)[0]))
    return names


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check(python: str) -> tuple[list[str], list[str]]:
    """(lines accepted as known, lines that are problems) of `pip check` in that venv."""
    out = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    ours = no_deps_packages()
    known, problems = [], []
    for line in (out.stdout + out.stderr).splitlines():
        line = line.strip()
        if not line or line.startswith("No broken requirements"):
            continue
        m = _MISSING.match(line)
        (known if m and _norm(m.group(1)) in ours else problems).append(line)
    if out.returncode != 0 and not known and not problems:
        problems.append(f"pip check exited {out.returncode} with no output")
    return known, problems


def main() -> int:
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    known, problems = check(python)
    for line in known:
        print(f"pip check: expected (installed --no-deps on purpose): {line}")
    for line in problems:
        print(f"pip check: PROBLEM: {line}")
    print(f"pip check: {'clean' if not problems else f'{len(problems)} problem(s)'} "
          f"apart from {len(known)} declared dependencies of weight-only packages")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
