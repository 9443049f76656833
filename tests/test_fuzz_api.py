"""Schemathesis fuzzing of the REST API over real HTTP (the CI-sized version of
``benchmarks/fuzz_api.py``): ~250 generated requests, positive and negative, with a valid,
a missing or a bad key; no 5xx, responses match the schema, every 4xx body is
``{"code": str, "message": str, ...}``. Plus regressions for what the fuzzing found."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

pytest.importorskip("schemathesis")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fuzz_api", ROOT / "benchmarks" / "fuzz_api.py")
assert _spec and _spec.loader
fuzz_api = sys.modules.setdefault("fuzz_api", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fuzz_api)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    s = fuzz_api.Served(tmp_path_factory.mktemp("fuzz"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def http(served: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30,
                      headers={"Authorization": f"Bearer {served.token}"}) as c:
        yield c


def test_fuzz_no_server_errors(served: Any) -> None:
    report = fuzz_api.fuzz(served.url, served.token, 250, seed=1234)
    doc = report.to_dict()
    assert doc["requests"] >= 200
    assert doc["5xx"] == 0, doc["failures"]
    assert doc["failures"] == [], json.dumps(doc["failures"][:5], indent=1)
    assert doc["2xx"] > 0 and doc["4xx"] > 0
    assert doc["auth"].get("valid") and doc["auth"].get("none")
    schema = httpx.get(f"{served.url}/openapi.json").json()  # every operation was fuzzed
    assert len(doc["operations"]) == sum(len(ops) for ops in schema["paths"].values())


def _well_formed(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str)
    return body


# What JSON can carry but the vault cannot give back as JSON: refused before any write.
UNSAFE = [
    b'{"text": "x", "tags": ["\\ud800"]}',
    b'{"text": "x", "metadata": {"\\udfff": 1}}',
    b'{"text": "x", "metadata": {"a": ["\\ud800"]}}',
    b'{"text": "x", "metadata": {"a": NaN}}',
    b'{"text": "x", "provenance": {"a": -Infinity}}',
    b'{"text": "x", "importance": Infinity}',
]


@pytest.mark.parametrize("body", UNSAFE)
def test_unsafe_json_is_refused_before_writing(http: httpx.Client, body: bytes) -> None:
    before = http.get("/v1/count", params={"status": "any"}).json()["count"]
    r = http.post("/v1/memories", content=body, headers={"content-type": "application/json"})
    assert _well_formed(r, 422)["code"] == "invalid_input"
    assert http.get("/v1/count", params={"status": "any"}).json()["count"] == before


@pytest.mark.parametrize("method,path,kwargs", [
    ("POST", "/v1/search", {"json": {"query": "x", "filters": {"metadata": {"a": 10**30}}}}),
    ("POST", "/v1/search", {"content": b'{"query": "x", "filters": {"metadata": {"a": NaN}}}'}),
    ("POST", "/v1/search", {"content": b'{"query": "x", "filters": {"ids": ["\\ud800"]}}'}),
    ("GET", "/v1/memories", {"params": {"filters": '{"metadata": {"a": 100000000000000000000}}'}}),
    ("GET", "/v1/memories", {"params": {"filters": '{"metadata": {"a": NaN}}'}}),
    ("GET", "/v1/memories", {"params": {"filters": '{"tags": ["\\ud800"]}'}}),
    ("POST", "/v1/messages", {"content": b'{"messages": [{"content": "x", "extra": NaN}]}'}),
    ("POST", "/v1/messages", {"content": b'{"messages": [{"content": "x", "role": "\\ud800"}]}'}),
    ("PATCH", "/v1/memories/00000000-0000-7000-8000-000000000000",
     {"content": b'{"metadata": {"a": Infinity}}'}),
    ("POST", "/v1/memories/00000000-0000-7000-8000-000000000000/archive",
     {"content": b'{"reason": "\\ud800"}'}),
])
def test_unsafe_values_elsewhere_are_422(http: httpx.Client, method: str, path: str,
                                         kwargs: dict[str, Any]) -> None:
    if "content" in kwargs:
        kwargs = {**kwargs, "headers": {"content-type": "application/json"}}
    _well_formed(http.request(method, path, **kwargs), 422)


def test_links_refuse_non_finite_weights(http: httpx.Client) -> None:
    item = http.post("/v1/memories", json={"text": "linked"}).json()
    for weight in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"src": "%s", "dst": "%s", "weight": %s}' % (
            item["id"].encode(), item["id"].encode(), weight)
        r = http.post("/v1/links", content=body, headers={"content-type": "application/json"})
        _well_formed(r, 422)
    assert http.get(f"/v1/memories/{item['id']}").json()["links"] == []


def test_unstorable_values_are_refused_by_the_library_too(served: Any) -> None:
    """Surrogates and non-finite numbers cannot get in through another face either."""
    from memvault import InvalidInput

    with pytest.raises(InvalidInput):
        served.vault.add("stored elsewhere", user_id="fuzz-user", tags=["\ud800"])
    with pytest.raises(InvalidInput):
        served.vault.add("stored elsewhere", user_id="fuzz-user", metadata={"k\udfff": "v"})
    item = served.vault.add("stored elsewhere", user_id="fuzz-user")
    with pytest.raises(InvalidInput):
        served.vault.link(item.id, item.id, weight=float("inf"))
    served.vault.purge(item.id)


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"])
def test_times_at_the_edge_of_datetime_are_422(served: Any, value: str) -> None:
    with httpx.Client(base_url=served.url, timeout=30,  # a 500 closes the connection
                      headers={"Authorization": f"Bearer {served.token}"}) as c:
        r = c.post("/v1/memories", json={"text": "x", "event_time": value})
        assert r.status_code == 422, r.status_code
