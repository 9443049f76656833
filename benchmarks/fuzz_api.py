#!/usr/bin/env python
"""Fuzz the REST API with schemathesis against its own OpenAPI schema, over real HTTP.

    python benchmarks/fuzz_api.py --requests 1200 --out benchmarks/results

Starts the app (a hash-embedder vault in a temporary directory, one API key) with
:class:`~memvault.server.serve.BackgroundServer` on 127.0.0.1, loads ``/openapi.json``
from it with ``schemathesis.openapi.from_url`` and, for every operation, draws cases from
``operation.as_strategy()`` in positive and negative mode (Hypothesis ``@given``; seeded,
no example database) and sends each with ``Case.call`` (requests, real sockets).

Most requests carry the valid key; about 1 in 10 carries none and 1 in 20 a well-formed
but unknown one. Half of the positive cases on ``/v1/memories/{id}...`` get the id of a
memory that exists, so the happy paths are reached, not only 404s.

Every response is checked with schemathesis' ``not_a_server_error`` and
``response_schema_conformance`` plus our own ``error_body``: a 4xx body is a JSON object
with string ``code`` and ``message``. Server-side tracebacks (the app's crash handler and
uvicorn's) are captured. Writes ``fuzz.json`` and ``fuzz.md`` to ``--out``; exits 1 if a
check failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from memvault import Vault
from memvault.governance import KeyStore
from memvault.models.base import HashEmbedder
from memvault.server.app import create_app
from memvault.server.serve import BackgroundServer

BAD_KEY = "mv_000000000000_" + "x" * 43


def error_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answer is a JSON object with string ``code`` and ``message``."""
    if 400 <= response.status_code < 500:
        try:
            body = json.loads(response.content)
        except ValueError:
            raise AssertionError(f"{response.status_code} body is not JSON: "
                                 f"{response.content[:200]!r}") from None
        if not (isinstance(body, dict) and isinstance(body.get("code"), str)
                and isinstance(body.get("message"), str)):
            raise AssertionError(f"{response.status_code} body lacks string code/message: "
                                 f"{body!r:.300}")
    return None


CHECKS = [not_a_server_error, response_schema_conformance]


@dataclass
class Report:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    per_operation: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    per_auth: Counter = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    server_errors_logged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        ops = {}
        for op, c in sorted(self.per_operation.items()):
            ops[op] = {"requests": sum(v for k, v in c.items() if isinstance(k, int)),
                       "2xx": sum(v for k, v in c.items() if isinstance(k, int) and k < 300),
                       "4xx": sum(v for k, v in c.items()
                                  if isinstance(k, int) and 400 <= k < 500),
                       "5xx": sum(v for k, v in c.items() if isinstance(k, int) and k >= 500),
                       "positive": c["mode:positive"], "negative": c["mode:negative"],
                       "statuses": {str(k): v for k, v in sorted(
                           (k, v) for k, v in c.items() if isinstance(k, int))}}
        return {"requests": self.requests,
                "2xx": sum(v for k, v in self.statuses.items() if k < 300),
                "4xx": sum(v for k, v in self.statuses.items() if 400 <= k < 500),
                "5xx": sum(v for k, v in self.statuses.items() if k >= 500),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "auth": dict(self.per_auth), "operations": ops,
                "failures": self.failures, "skipped": self.skipped,
                "server_errors_logged": self.server_errors_logged}


class _Capture(logging.Handler):
    """Keeps the tracebacks the server logs (crash handler, uvicorn)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


class Served:
    """A hash-embedder vault in ``path`` served on 127.0.0.1 with one key."""

    def __init__(self, path: Path) -> None:
        self.vault = Vault(path / "vault.db", embedder=HashEmbedder(256))
        self.keys = KeyStore.for_vault(path / "vault.db")
        self.token = self.keys.create("fuzzer", "fuzz-user")
        self.server = BackgroundServer(create_app(self.vault, self.keys)).start()
        self.url = self.server.url

    def close(self) -> None:
        self.server.stop()
        self.keys.close()
        self.vault.close()


class _Ids:
    """Ids of memories that exist, replenished when purged."""

    def __init__(self, session: requests.Session, url: str, token: str, rng: random.Random,
                 n: int = 20) -> None:
        self.session, self.url, self.rng = session, url, rng
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ids: list[str] = []
        for _ in range(n):
            self.new()

    def new(self) -> None:
        r = self.session.post(f"{self.url}/v1/memories", headers=self.headers, timeout=30,
                              json={"text": f"seed memory {self.rng.random()}",
                                    "tags": ["seed"], "metadata": {"n": len(self.ids)}})
        if r.status_code == 201:
            self.ids.append(r.json()["id"])

    def pick(self) -> str | None:
        return self.rng.choice(self.ids) if self.ids else None

    def purged(self, id_: str) -> None:
        if id_ in self.ids:
            self.ids.remove(id_)
            self.new()


def fuzz(url: str, token: str, requests_target: int, *, seed: int = 0,
         negative_share: float = 0.4, log: Any = None) -> Report:
    """Send about ``requests_target`` generated requests to the server at ``url``."""
    warnings.filterwarnings("ignore")
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    rng = random.Random(seed)
    session = requests.Session()
    ids = _Ids(session, url, token, rng)
    report = Report()
    exhausted: set[str] = set()
    # Rounds over every operation (a new seed each) until the target is met: an
    # operation with nothing to vary (GET /v1/health) runs out of distinct cases early.
    for round_ in range(20):
        left = requests_target - report.requests
        if left <= 0:
            break
        live = [op for op in ops if f"{op.method.upper()} {op.path}" not in exhausted] \
            if round_ else ops
        per_op = max(2, -(-left // max(1, len(live))))
        budget = {GenerationMode.POSITIVE: max(1, round(per_op * (1 - negative_share))),
                  GenerationMode.NEGATIVE: max(1, round(per_op * negative_share))}
        for op in live:
            label = f"{op.method.upper()} {op.path}"
            spent = 0
            for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):
                # what negative mode could not use goes to positive cases
                n = budget[mode] + (budget[GenerationMode.NEGATIVE] - spent
                                    if mode is GenerationMode.POSITIVE else 0)
                before = report.requests
                try:
                    _run(op, label, mode, n, url, token, session, rng, ids, report,
                         seed + round_)
                except Exception as exc:  # schemathesis cannot generate this mode here
                    if round_ == 0:
                        report.skipped.append({"operation": label, "mode": mode.value,
                                               "reason": f"{type(exc).__name__}: {exc}"[:300]})
                spent = report.requests - before
                if log:
                    log(f"round {round_} {label:40s} {mode.value:8s} {spent:4d} requests")
            if sum(v for k, v in report.per_operation[label].items()
                   if isinstance(k, int)) < (round_ + 1) * 2:
                exhausted.add(label)
    session.close()
    return report


def _run(op: Any, label: str, mode: GenerationMode, n: int, url: str, token: str,
         session: requests.Session, rng: random.Random, ids: _Ids, report: Report,
         seed: int) -> None:
    sent = 0

    @hypothesis.seed(seed)
    @hypothesis.settings(max_examples=n, database=None, deadline=None, derandomize=False,
                         phases=[Phase.explicit, Phase.generate], verbosity=Verbosity.quiet,
                         suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        nonlocal sent
        if sent >= n:
            return
        sent += 1
        roll = rng.random()
        generated = {k: v for k, v in (case.headers or {}).items()
                     if k.lower() == "authorization"}
        if generated and mode is GenerationMode.NEGATIVE and roll < 0.5:
            headers = {}  # keep the malformed Authorization schemathesis generated
        else:
            if case.headers:
                case.headers = {k: v for k, v in case.headers.items()
                                if k.lower() != "authorization"}
            headers = {} if 0.85 <= roll < 0.95 else {
                "Authorization": f"Bearer {BAD_KEY if roll >= 0.95 else token}"}
        real_id = None
        if (mode is GenerationMode.POSITIVE and "{id}" in op.path and ids.ids
                and rng.random() < 0.5):
            real_id = ids.pick()
            case.path_parameters = {**(case.path_parameters or {}), "id": real_id}
        try:
            response = case.call(base_url=url, session=session, headers=headers, timeout=60)
        except Exception as exc:  # transport failure: the server hung up or crashed
            report.failures.append({"operation": label, "mode": mode.value, "auth": "?",
                                    "check": "transport", "status": None,
                                    "message": f"{type(exc).__name__}: {exc}"[:500]})
            return
        status = response.status_code
        sent_auth = response.request.headers.get("Authorization")
        auth = ("none" if sent_auth is None else "valid" if sent_auth == f"Bearer {token}"
                else "bad")
        report.requests += 1
        report.statuses[status] += 1
        report.per_operation[label][status] += 1
        report.per_operation[label][f"mode:{mode.value}"] += 1
        report.per_auth[auth] += 1
        if real_id and label.endswith("/purge") and status == 200:
            ids.purged(real_id)
        problems = []
        try:
            case.validate_response(response, checks=CHECKS, headers=headers,
                                   transport_kwargs={"base_url": url})
        except Exception as exc:
            for f in getattr(exc, "exceptions", [exc]):
                problems.append((getattr(f, "title", type(f).__name__), str(f)))
        try:
            error_body(None, response, case)
        except AssertionError as exc:
            problems.append(("error_body", str(exc)))
        for check, message in problems:
            report.failures.append({
                "operation": label, "mode": mode.value, "auth": auth, "check": check,
                "status": status, "message": message[:800],
                "request": {"method": response.request.method, "url": response.request.url,
                            "body": _text(response.request.body)},
                "response": response.text[:500]})

    one()


def _text(body: Any) -> str | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body[:500].decode("utf-8", "replace")
    return str(body)[:500]


def _markdown(doc: dict[str, Any]) -> str:
    lines = ["# REST API fuzz (schemathesis)", "",
             f"schemathesis {doc['env']['schemathesis']}, hypothesis "
             f"{doc['env']['hypothesis']}, Python {doc['env']['python']}; "
             f"seed {doc['seed']}; {doc['seconds']} s; real HTTP on 127.0.0.1.", "",
             f"**{doc['requests']} requests**: {doc['2xx']} 2xx, {doc['4xx']} 4xx, "
             f"**{doc['5xx']} 5xx**; {len(doc['failures'])} check failures; "
             f"{len(doc['server_errors_logged'])} server tracebacks logged.", "",
             f"Auth: {doc['auth']}. Statuses: {doc['statuses']}.", "",
             "| operation | requests | positive | negative | 2xx | 4xx | 5xx | statuses |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for op, c in doc["operations"].items():
        lines.append(f"| `{op}` | {c['requests']} | {c['positive']} | {c['negative']} | "
                     f"{c['2xx']} | {c['4xx']} | {c['5xx']} | "
                     + ", ".join(f"{k}: {v}" for k, v in c["statuses"].items()) + " |")
    lines += ["", "## Failures", ""]
    if not doc["failures"]:
        lines.append("None.")
    for f in doc["failures"][:50]:
        lines.append(f"- `{f['operation']}` ({f['mode']}, key {f['auth']}): {f['check']}, "
                     f"status {f['status']}: {f['message'][:300]!r}")
    if doc["skipped"]:
        lines += ["", "## Not generated", ""]
        lines += [f"- `{s['operation']}` {s['mode']}: {s['reason'][:200]}"
                  for s in doc["skipped"]]
    lines += ["", "Checks: schemathesis `not_a_server_error`, `response_schema_conformance`; "
                  "ours: every 4xx body is JSON with string `code` and `message`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1200, help="about this many in total")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    capture = _Capture()
    for name in ("memvault.server", "uvicorn.error", "uvicorn"):
        logging.getLogger(name).addHandler(capture)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memvault-fuzz-") as tmp:
        served = Served(Path(tmp))
        try:
            report = fuzz(served.url, served.token, args.requests, seed=args.seed,
                          log=lambda s: print(s, flush=True))
        finally:
            served.close()
    report.server_errors_logged = capture.records[:50]
    doc = report.to_dict()
    doc.update({"seed": args.seed, "target": args.requests,
                "seconds": round(time.perf_counter() - started, 1),
                "env": {"schemathesis": schemathesis.__version__,
                        "hypothesis": hypothesis.__version__,
                        "python": platform.python_version(), "platform": platform.platform()}})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "fuzz.md").write_text(_markdown(doc))
    print(f"{doc['requests']} requests: 2xx {doc['2xx']}, 4xx {doc['4xx']}, 5xx {doc['5xx']}; "
          f"{len(doc['failures'])} failures; {doc['seconds']} s")
    for f in doc["failures"][:20]:
        print(f"  {f['operation']} {f['mode']} {f['check']} {f['status']}: {f['message'][:200]}")
    return 1 if doc["failures"] or doc["5xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
