"""Working memory end to end: the scripted agent (:mod:`memvault.working.demo`) builds
``calclib`` over MCP (the official SDK client, streamable HTTP) against ``memvault mcp``
in a subprocess, which is SIGKILLed at random tool calls and restarted; the agent
resumes from the store. Used by ``tests/test_working_e2e.py`` and ``make bench-working``.

The uninterrupted baseline is the same agent against a server that is never killed.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio

from memvault.working.demo import ScriptedBuilder

CALL_TIMEOUT = 60.0


class ServerDied(Exception):
    """The server was killed (on purpose) or the connection to it broke."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``memvault mcp --transport http`` for one key, (re)started on demand."""

    def __init__(self, db: Path, token: str, log: Path) -> None:
        self.db, self.token, self.log = db, token, log
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    def start(self) -> str:
        self.port = free_port()
        env = {**os.environ, "MEMVAULT_API_KEY": self.token}
        with self.log.open("a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "memvault", "mcp", "--transport", "http", "--host",
                 "127.0.0.1", "--port", str(self.port), "--db", str(self.db),
                 "--embedder", "hash"], env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err)
        self.starts += 1
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return f"http://127.0.0.1:{self.port}/mcp"
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the MCP server did not start")

    def kill(self, proc: subprocess.Popen | None = None) -> None:
        proc = proc or self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # it died between poll() and kill()
                pass
            proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def run_build(db: Path, token: str, *, kills: int = 0, seed: int = 0, modules: int = 6,
              functions: int = 6, budget_tokens: int = 2000) -> dict[str, Any]:
    """Build calclib through MCP; SIGKILL the server before ``kills`` random tool calls
    (half of them while the call is in flight). Returns the final files, per-step
    context sizes, tool-call latencies and how often the server was killed."""
    return anyio.run(_run, db, token, kills, seed, modules, functions, budget_tokens)


async def _run(db: Path, token: str, kills: int, seed: int, modules: int, functions: int,
               budget_tokens: int) -> dict[str, Any]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    rng = random.Random(seed)
    server = Server(db, token, db.with_suffix(".server.log"))
    planned = modules * (functions + 3) + 3
    calls_estimate = planned * 8 + planned  # ~8 calls a step, plus one plan
    kill_at = sorted(rng.sample(range(5, calls_estimate), kills)) if kills else []
    in_flight = {k for i, k in enumerate(kill_at) if i % 2}
    latencies: list[float] = []
    count = 0
    killed = 0
    session_ref: dict[str, Any] = {}
    pending = {"kill": False}  # a kill the loop has not restarted from yet

    async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        nonlocal count, killed
        count += 1
        if kill_at and count >= kill_at[0]:
            at = kill_at.pop(0)
            killed += 1
            pending["kill"] = True
            if at in in_flight:  # kill while the call runs: it may or may not commit
                threading.Timer(rng.uniform(0.0, 0.02), server.kill, [server.proc]).start()
            else:
                server.kill()
                raise ServerDied(name)
        started = time.perf_counter()
        try:
            with anyio.fail_after(CALL_TIMEOUT):
                result = await session_ref["s"].call_tool(name, args)
        except Exception as exc:  # the connection broke under the call
            raise ServerDied(name) from exc
        latencies.append(time.perf_counter() - started)
        if result.is_error:
            if server.proc is not None and server.proc.poll() is not None:
                raise ServerDied(name)
            raise RuntimeError(f"{name}{args} failed: {result.content[0].text}")
        return result.structured_content or {}

    agent = ScriptedBuilder(call, modules=modules, functions=functions,
                            budget_tokens=budget_tokens)
    restarts = 0
    finished = False
    try:
        while not finished:
            url = server.start()
            pending["kill"] = False
            try:
                # every MCP request over HTTP carries the key (the server checks it per
                # request, like REST)
                client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                            timeout=30)
                async with client, streamable_http_client(url, http_client=client) as (
                        read, write), ClientSession(read, write) as session:
                    await session.initialize()
                    session_ref["s"] = session
                    await agent.run()
                    files = await _files(call)
                    finished = True
            except* ServerDied:
                server.kill()
                restarts += 1
                if restarts > kills + 5:
                    raise RuntimeError("too many restarts")
            except* Exception as group:
                # the SDK's reader noticed the kill before our call did (a transport error)
                if pending["kill"] or (server.proc is not None and
                                       server.proc.poll() is not None):
                    server.kill()
                    restarts += 1
                else:
                    raise group.exceptions[0]
    finally:
        server.stop()
    return {"files": files, "steps": agent.steps, "latencies": latencies,
            "kills": killed, "restarts": restarts, "server_starts": server.starts,
            "planned_steps": agent.total_steps}


async def _files(call: Any) -> dict[str, str]:
    listed = (await call("file_list", {"workspace": "calclib"}))["files"]
    out = {}
    for f in listed:
        out[f["path"]] = (await call("file_read", {"workspace": "calclib",
                                                   "path": f["path"]}))["content"]
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
