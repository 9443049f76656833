"""A scripted long-horizon agent: the fake LLM of the working-memory end-to-end test and
benchmark (``tests/test_working_e2e.py``, ``benchmarks/bench_working.py``).

It builds a small multi-file Python package, ``calclib``, one step at a time through the
``task_*``/``file_*`` tools only. Each step sees nothing but the context the store
assembles for it (instruction, task path, the file lines it reads, at most
``budget_tokens``), and what it writes is derived from that context: function ``j``
calls function ``j-1`` by the name it *reads* back from the file, the package's
``__init__`` lists what the module tasks' results say. A wrong or stale context would
therefore produce different files.

Every write is precise and replayable: a function lives at fixed lines of its module and
is written by line range, tasks are created by key, a replayed push/pop is a no-op; so
an agent killed at any point resumes from the store (``task_next``) and ends with the
same files as an uninterrupted run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

__all__ = ["ScriptedBuilder", "StepRecord", "HEAD_LINES", "FN_LINES"]

Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
HEAD_LINES = 3
FN_LINES = 4
_DEF = re.compile(r"^def (\w+)\(", re.M)


@dataclass
class StepRecord:
    task: str
    context_tokens: int
    all_files_tokens: int


@dataclass
class ScriptedBuilder:
    """Builds ``calclib`` with ``modules`` modules of ``functions`` functions each:
    ``modules * (functions + 3) + 3`` steps (a header, the functions, a review and a
    test file per module; the package ``__init__``, a README and the root)."""

    call: Call
    workspace: str = "calclib"
    modules: int = 6
    functions: int = 6
    budget_tokens: int = 2000
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return self.modules * (self.functions + 3) + 3

    async def tool(self, name: str, **args: Any) -> dict[str, Any]:
        return await self.call(name, {"workspace": self.workspace, **args})

    async def plan(self) -> None:
        """Create the task tree (idempotent: a replay after a crash adds nothing)."""
        add = self.tool
        await add("task_add", title="Build the calclib package", key="root")
        for m in range(self.modules):
            mod = f"m{m}"
            await add("task_add", title=f"Write module calclib/{mod}.py", key=mod,
                      parent="root")
            await add("task_add", title=f"Header of {mod}", key=f"{mod}-head", parent=mod)
            for j in range(self.functions):
                await add("task_add", title=f"Function {j} of {mod}", key=f"{mod}-f{j}",
                          parent=mod, deps=[f"{mod}-head" if j == 0 else f"{mod}-f{j - 1}"])
            await add("task_add", title=f"Tests for {mod}", key=f"{mod}-test", parent="root",
                      deps=[mod])
        mods = [f"m{m}" for m in range(self.modules)]
        await add("task_add", title="Package __init__", key="init", parent="root", deps=mods)
        await add("task_add", title="README", key="readme", parent="root", deps=["init"])

    async def run(self, max_steps: int = 10_000) -> int:
        """Plan, then do steps until nothing is ready; returns the steps done here."""
        await self.plan()
        done = 0
        while done < max_steps:
            ready = (await self.tool("task_next", limit=1))["tasks"]
            if not ready:
                return done
            await self.step(ready[0]["key"])
            done += 1
        return done

    # -- one step -------------------------------------------------------------------------
    async def step(self, key: str) -> None:
        instruction = f"Carry out task {key}"
        await self.tool("task_push", instruction=instruction, task=key)
        reads = await self._reads(key)
        ctx = await self.tool("task_context", task=key, reads=reads,
                              budget_tokens=self.budget_tokens)
        files = (await self.tool("file_list"))["files"]
        self.steps.append(StepRecord(key, ctx["tokens"],
                                     sum(-(-f["bytes"] // 4) for f in files)))
        result = await self._act(key, ctx["text"])
        # pop, then done: killed in between, the replay pushes and redoes the same step
        await self.tool("task_pop", result=result, expect=instruction)
        await self.tool("task_done", key=key, result=result)

    async def _lines(self, path: str) -> int:
        found = (await self.tool("file_list", prefix=path))["files"]
        return next((f["lines"] for f in found if f["path"] == path), 0)

    async def _reads(self, key: str) -> list[Any]:
        """The precise reads a step needs: the previous function, a module's header."""
        m = re.fullmatch(r"(m\d+)-f(\d+)", key)
        if m and int(m.group(2)) > 0:
            start = HEAD_LINES + (int(m.group(2)) - 1) * FN_LINES + 1
            return [[f"calclib/{m.group(1)}.py", start, start + FN_LINES - 1]]
        m = re.fullmatch(r"(m\d+)(-test)?", key)
        if m:
            n = await self._lines(f"calclib/{m.group(1)}.py")
            return [[f"calclib/{m.group(1)}.py", max(1, n - FN_LINES + 1), n]]
        return []

    async def _write(self, path: str, start: int, lines: list[str]) -> None:
        """Lines ``start``.. of ``path``: replaced if there, else inserted (replayable)."""
        have = await self._lines(path)
        end = start + len(lines) - 1
        text = "".join(line + "\n" for line in lines)
        await self.tool("file_write", path=path, content=text, start=start,
                        end=end if have >= end else (have if have >= start else None))

    async def _act(self, key: str, context: str) -> str:
        """The scripted "LLM": what to write, from the context text alone."""
        if m := re.fullmatch(r"(m\d+)-head", key):
            mod = m.group(1)
            await self._write(f"calclib/{mod}.py", 1, [
                f'"""calclib.{mod}: written one function per step."""',
                "from __future__ import annotations", ""])
            return f"calclib/{mod}.py started"
        if m := re.fullmatch(r"(m\d+)-f(\d+)", key):
            mod, j = m.group(1), int(m.group(2))
            name = f"{mod}_f{j}"
            if j == 0:
                body = f"    return x * {int(mod[1:]) + 2}"
            else:
                previous = _DEF.findall(context)[-1]  # read back from the file
                body = f"    return {previous}(x) + {j}"
            await self._write(f"calclib/{mod}.py", HEAD_LINES + j * FN_LINES + 1, [
                f"def {name}(x: int) -> int:", f'    """Step {j} of {mod}."""', body, ""])
            return name
        if m := re.fullmatch(r"m\d+", key):
            last = _DEF.findall(context)[-1]
            return f"{key} exports {last}"
        if m := re.fullmatch(r"(m\d+)-test", key):
            mod = m.group(1)
            last = _DEF.findall(context)[-1]
            await self._write(f"tests/test_{mod}.py", 1, [
                f"from calclib.{mod} import {last}", "", "",
                f"def test_{last}() -> None:", f"    assert {last}(0) == "
                f"{sum(range(self.functions))}", ""])
            return f"tests/test_{mod}.py"
        if key == "init":
            exported = re.findall(r"(m\d+) gave: m\d+ exports (\w+)", context)
            lines = ['"""calclib: built by a scripted agent, step by step."""']
            lines += [f"from .{mod} import {fn}" for mod, fn in sorted(exported)]
            lines += ["", "__all__ = [" + ", ".join(f'"{fn}"' for _, fn in sorted(exported))
                      + "]"]
            await self._write("calclib/__init__.py", 1, lines)
            return f"{len(exported)} exports"
        if key == "readme":
            await self._write("README.md", 1, ["# calclib", "", context.splitlines()[-1]])
            return "README.md"
        return "all done"
