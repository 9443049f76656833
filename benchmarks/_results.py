"""Where every benchmark's results go: ``<out>/<name>.json`` plus ``<name>.md``."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Callable


def machine(load_start: float) -> dict[str, Any]:
    """Context a reader needs to judge the numbers (these machines are shared)."""
    return {"python": platform.python_version(), "load_start": round(load_start, 2),
            "load_end": round(os.getloadavg()[0], 2)}


def write(out: str | Path, name: str, result: dict[str, Any],
          markdown: Callable[[dict[str, Any]], str]) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / f"{name}.md").write_text(text)
    print(text)


def measure_table(title: str, rows: list[tuple[str, str, str]], env: dict[str, Any],
                  setup: str) -> str:
    """Markdown for the benchmarks that report one "measure | value | vs baseline" table,
    followed by the machine line (``setup`` says what was done before timing)."""
    out = [f"# {title}", "", "| measure | value | vs baseline |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    out += ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, load "
            f"{env['load_start']} -> {env['load_end']}; {setup}.", ""]
    return "\n".join(out)


def wait_healthy(url: str, server: Any, seconds: float = 60.0) -> bool:
    """Poll ``url``/v1/health until it answers 200 (True), or the server process exits or
    ``seconds`` pass (False): how the benchmarks that start `memvault serve` wait for it."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
