#!/usr/bin/env python3
"""Check that the README's benchmark tables say what the committed results files say.

A figure typed by hand drifts from the run it came from (a "previous run" nobody kept, a
build time from another index). So a README table whose numbers come from a benchmark
carries a marker comment right above it naming its results file(s) and one template per
body row; this script renders the templates from the JSON and fails on any difference:

    <!-- figures: benchmarks/results/core.json
    | HNSW, efSearch {sizes.100000.hnsw_params.ef_search} | {sizes.100000.index.p50_ms:.2f} ms |
    -->
    | measure | p50 |
    |---|---|
    | HNSW, efSearch 256 | 1.06 ms |

Several files: ``<!-- figures: core=benchmarks/results/core.json pg=benchmarks/results/pg.json``
and every path starts with its alias (``{core.sizes.10000.index.p50_ms}``). A placeholder
is ``{expression}`` or ``{expression:format-spec}``: JSON paths (dots between keys, list
indexes as numbers, a key with other characters in single quotes: ``search.'ef_search=40,threads=4'``), numbers, ``+ - * /`` with spaces around the minus, parentheses and
``min(...)``/``max(...)``; ``{{`` and ``}}`` are literal braces. The format spec is
Python's (``.2f``, ``,.0f``, ``.1%``); without one the value is printed as ``str()``.
Tables without a marker are not checked (new tables stay free until someone marks them).

``--write`` replaces each marked table's body with the rendered rows (after a new run).
Exit 0 when every marked table matches, 1 on a mismatch, 2 on a broken marker.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

MARKER = re.compile(r"<!--\s*figures:\s*(?P<files>[^\n]*)\n(?P<rows>.*?)-->", re.S)
_SEG = r"(?:[\w\-]+|'[^']*')"
TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?(?![\w.]))|(?P<path>(?:[A-Za-z0-9_][\w\-]*|'[^']*')"
                   r"(?:\." + _SEG + r")*)|(?P<op>[-+*/(),]))")
MAX_EXPR = 400
MAX_DEPTH = 32


class FigureError(Exception):
    """A marker that cannot be rendered (missing file, missing key, bad expression)."""


def _segments(path: str) -> list[str]:
    return [q or w for q, w in re.findall(r"'([^']*)'|([\w\-]+)", path)]


def _lookup(data: Any, path: str) -> Any:
    cur = data
    for part in _segments(path):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise FigureError(f"no key {part!r} in path {path!r}")
    return cur


class _Expr:
    """Recursive descent over + - * / and min/max calls; nothing is eval()ed."""

    def __init__(self, text: str, roots: dict[str, Any]) -> None:
        if len(text) > MAX_EXPR:
            raise FigureError(f"expression longer than {MAX_EXPR} characters")
        self.toks: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise FigureError(f"cannot read {text[pos:]!r} in {text!r}")
            kind = m.lastgroup or ""
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.roots = roots
        self.text = text

    def value(self) -> Any:
        v = self._sum(0)
        if self.i != len(self.toks):
            raise FigureError(f"unexpected {self.toks[self.i][1]!r} in {self.text!r}")
        return v

    def _peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def _sum(self, depth: int) -> Any:
        v = self._prod(depth)
        while self._peek() in ("+", "-"):
            op = self.toks[self.i][1]
            self.i += 1
            w = self._prod(depth)
            v = v + w if op == "+" else v - w
        return v

    def _prod(self, depth: int) -> Any:
        v = self._atom(depth)
        while self._peek() in ("*", "/"):
            op = self.toks[self.i][1]
            self.i += 1
            w = self._atom(depth)
            v = v * w if op == "*" else v / w
        return v

    def _atom(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise FigureError("expression nested too deeply")
        if self.i >= len(self.toks):
            raise FigureError(f"expression ends early: {self.text!r}")
        kind, tok = self.toks[self.i]
        self.i += 1
        if tok == "(":
            v = self._sum(depth + 1)
            self._expect(")")
            return v
        if kind == "num":
            return float(tok) if "." in tok else int(tok)
        if kind == "path" and tok in ("min", "max") and self._peek() == "(":
            self.i += 1
            args = [self._sum(depth + 1)]
            while self._peek() == ",":
                self.i += 1
                args.append(self._sum(depth + 1))
            self._expect(")")
            return min(args) if tok == "min" else max(args)
        if kind == "path":
            if "" in self.roots:
                return _lookup(self.roots[""], tok)
            head = _segments(tok)[0]
            if head not in self.roots:
                raise FigureError(f"unknown file alias {head!r} in {tok!r}")
            return _lookup(self.roots[head], tok[len(head) + 1:]) if tok != head else self.roots[head]
        raise FigureError(f"unexpected {tok!r} in {self.text!r}")

    def _expect(self, tok: str) -> None:
        if self._peek() != tok:
            raise FigureError(f"expected {tok!r} in {self.text!r}")
        self.i += 1


def render(template: str, roots: dict[str, Any]) -> str:
    """One row template with every placeholder replaced by its formatted value."""
    out: list[str] = []
    i = 0
    while i < len(template):
        if template.startswith("{{", i) or template.startswith("}}", i):
            out.append(template[i])
            i += 2
            continue
        if template[i] == "{":
            end = template.find("}", i)
            if end < 0:
                raise FigureError(f"unclosed placeholder in {template!r}")
            body = template[i + 1:end]
            expr, _, spec = body.rpartition(":") if ":" in body else (body, "", "")
            value = _Expr(expr, roots).value()
            try:
                out.append(format(value, spec) if spec else str(value))
            except (ValueError, TypeError) as exc:
                raise FigureError(f"format {spec!r} does not fit {value!r}: {exc}") from exc
            i = end + 1
            continue
        out.append(template[i])
        i += 1
    return "".join(out)


def _norm(row: str) -> str:
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    return " | ".join(cells)


def _load_roots(spec: str, root: Path) -> dict[str, Any]:
    roots: dict[str, Any] = {}
    for item in spec.split():
        alias, _, rel = item.rpartition("=")
        path = (root / rel).resolve()
        if root.resolve() not in path.parents or "results" not in path.parts:
            raise FigureError(f"{rel}: a marker names files under benchmarks/results/ only")
        if not path.is_file():
            raise FigureError(f"{rel}: no such results file")
        try:
            roots[alias] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise FigureError(f"{rel}: not JSON ({exc})") from exc
    if not roots:
        raise FigureError("a figures marker names no results file")
    if "" in roots and len(roots) > 1:
        raise FigureError("with several files every one needs an alias (name=path)")
    return roots


def _table_after(lines: list[str], start: int) -> tuple[int, int]:
    """Line range [body_start, body_end) of the table right after line ``start``."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i + 1 >= len(lines) or not lines[i].lstrip().startswith("|") \
            or not re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]):
        raise FigureError(f"line {start + 1}: a figures marker must be followed by a table")
    j = i + 2
    while j < len(lines) and lines[j].lstrip().startswith("|"):
        j += 1
    return i + 2, j


def check(readme: Path, root: Path, write: bool = False) -> list[str]:
    """Problems found (empty when every marked table matches its results files)."""
    text = readme.read_text()
    lines = text.split("\n")
    problems: list[str] = []
    edits: list[tuple[int, int, list[str]]] = []
    for m in MARKER.finditer(text):
        line_no = text.count("\n", 0, m.start()) + 1
        where = f"{readme.name}:{line_no}"
        try:
            roots = _load_roots(m.group("files"), root)
            templates = [t for t in m.group("rows").split("\n") if t.strip()]
            expected = [render(t, roots) for t in templates]
            end_line = text.count("\n", 0, m.end())
            body_start, body_end = _table_after(lines, end_line + 1)
        except FigureError as exc:
            raise FigureError(f"{where}: {exc}") from exc
        actual = lines[body_start:body_end]
        if [_norm(r) for r in actual] != [_norm(r) for r in expected]:
            if write:
                edits.append((body_start, body_end, expected))
                continue
            problems.append(f"{where}: table differs from {m.group('files').strip()}")
            for k in range(max(len(actual), len(expected))):
                a = actual[k] if k < len(actual) else "(missing)"
                e = expected[k] if k < len(expected) else "(extra row)"
                if k >= len(actual) or k >= len(expected) or _norm(a) != _norm(e):
                    problems.append(f"  README:   {a}\n  expected: {e}")
    for start, end, rows in reversed(edits):
        lines[start:end] = rows
    if edits:
        readme.write_text("\n".join(lines))
    return problems


def marked_tables(readme: Path) -> int:
    """How many tables carry a figures marker (so a test can see the check checks)."""
    return len(MARKER.findall(readme.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parents[1] / "README.md")
    parser.add_argument("--root", type=Path, default=None,
                        help="where results paths start (default: the README's directory)")
    parser.add_argument("--write", action="store_true", help="rewrite marked tables from the JSON")
    args = parser.parse_args(argv)
    root = args.root or args.readme.resolve().parent
    try:
        problems = check(args.readme, root, write=args.write)
    except (FigureError, OSError) as exc:
        print(f"check_readme_figures: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    n = marked_tables(args.readme)
    if problems:
        print(f"check_readme_figures: {len([p for p in problems if not p.startswith(' ')])} "
              f"of {n} marked tables differ from their results files")
        return 1
    print(f"check_readme_figures: {n} marked tables match their results files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
