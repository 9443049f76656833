#!/usr/bin/env python
"""Run the schemathesis CLI with every check against a live ``memvault serve``.

    python benchmarks/schemathesis_all.py --max-examples 30 --out benchmarks/results
    (make fuzz-schema)

Starts ``memvault serve`` (a subprocess on a free port of 127.0.0.1, a hash-embedder vault
in a temporary directory) with one API key, then runs

    schemathesis run http://127.0.0.1:PORT/openapi.json --checks all \\
        -H "Authorization: Bearer KEY" --max-examples N --seed S --generation-deterministic

as its own subprocess (the ecosystem's own client: every phase, every check, including
``positive_data_acceptance`` (ST202: a request the schema allows must not get 422) and
``allow_header_conformance`` (ST205)), with ``benchmarks/schemathesis.toml`` (which says
why two rules are tuned: the grant interval, a cross-field rule; and DELETE of a memory
being a restorable tombstone). NUL characters are not generated: every string refuses
them and the schema says so except inside free JSON (metadata). Writes the totals
schemathesis reports and the command to ``schemathesis.json`` / ``schemathesis.md`` in
``--out``; exits 1 if it found anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


from _results import wait_healthy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memvault(args: list[str], env: dict[str, str], **kwargs: Any) -> Any:
    return subprocess.run([sys.executable, "-m", "memvault", *args], env=env,
                          capture_output=True, text=True, timeout=120, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--log", type=Path, help="Also write schemathesis' whole output here.")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memvault-st-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_")}
    env.update(MEMVAULT_EMBEDDER="hash", HOME=str(tmp))
    db = tmp / "vault.db"
    made = _memvault(["--db", str(db), "--json", "keys", "create", "schemathesis",
                      "--user", "st-user"], env)
    if made.returncode != 0:
        print(made.stderr, file=sys.stderr)
        return 2
    token = json.loads(made.stdout)["token"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "memvault", "--db", str(db), "serve",
                               "--port", str(port), "--log-level", "warning"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if not wait_healthy(url, server):
            print("the server did not start", file=sys.stderr)
            return 2
        config = Path(__file__).with_name("schemathesis.toml")
        command = [str(Path(sys.executable).with_name("schemathesis")),
                   "--config-file", str(config), "run",
                   f"{url}/openapi.json", "--checks", "all", "-H",
                   f"Authorization: Bearer {token}", "--max-examples", str(args.max_examples),
                   "--seed", str(args.seed), "--generation-deterministic", "--no-color",
                   # NUL is refused in every string (PostgreSQL cannot store it); the schema
                   # says so where it can, not inside free JSON (metadata, provenance)
                   "--generation-allow-x00", "false",
                   "--report", "ndjson", "--report-dir", str(tmp / "report")]
        started = time.monotonic()
        run = subprocess.run(command, capture_output=True, text=True, timeout=3600,
                             env={**os.environ, "COLUMNS": "200"})
        seconds = time.monotonic() - started
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    output = run.stdout + run.stderr
    if args.log:
        args.log.write_text(output.replace(token, "KEY"))
    summary = _summary(output)
    shown = " ".join(c if "Bearer" not in c else "Authorization: Bearer KEY" for c in command)
    shown = shown.replace(url, "http://127.0.0.1:PORT").replace(str(tmp / "report"), "REPORTS")
    shown = shown.replace(str(Path(__file__).parent) + "/", "benchmarks/")
    shown = shown.replace(str(Path(sys.executable).parent) + "/", ".venv/bin/")
    doc = {"command": shown, "exit_code": run.returncode, "seconds": round(seconds, 1),
           **summary, "max_examples": args.max_examples, "seed": args.seed}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "schemathesis.json").write_text(json.dumps(doc, indent=2) + "\n")
    tail = "\n".join(output.strip().splitlines()[-60:])
    (args.out / "schemathesis.md").write_text(
        "# schemathesis, every check, against `memvault serve`\n\n"
        f"`{shown}`\n\n"
        f"- exit code: {run.returncode} (0: no findings)\n"
        f"- test cases: {summary.get('test_cases')}, operations: {summary.get('operations')}\n"
        f"- failures: {summary.get('failures')}\n- time: {seconds:.0f} s\n\n"
        "Last lines of its output:\n\n```\n" + tail + "\n```\n")
    print(tail)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if run.returncode == 0 else 1


def _summary(output: str) -> dict[str, Any]:
    """The totals from schemathesis' summary lines."""
    out: dict[str, Any] = {}
    m = re.search(r"API Operations:\s+(\d+) selected / (\d+) total", output)
    if m:
        out["operations"] = int(m.group(1))
    m = re.search(r"(\d+) generated, (\d+) found \d+ unique failures|(\d+) generated, (\d+) passed",
                  output)
    if m:
        out["test_cases"] = int(m.group(1) or m.group(3))
    m = re.search(r"Test cases:\s+(\d+) generated", output)
    if m:
        out["test_cases"] = int(m.group(1))
    m = re.search(r"(\d+) unique failures", output)
    passed = re.search(r"\d+ generated, \d+ passed", output)
    out["failures"] = int(m.group(1)) if m else (0 if passed else None)
    codes = sorted(set(re.findall(r"\b(ST\d{3})\b", output)))
    out["failure_codes"] = codes
    return out


if __name__ == "__main__":
    sys.exit(main())
