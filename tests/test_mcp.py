"""``memvault mcp`` through the official MCP SDK client, over real transports.

The server runs in a subprocess: over stdio it is spawned by ``mcp.client.stdio``; over
streamable HTTP it listens on a free port of 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from memvault.governance.principals import KeyStore  # noqa: E402
from memvault.vault import Vault  # noqa: E402

TOOLS = {"memory_add": ["text"], "memory_search": ["query"], "memory_get": ["id"],
         "memory_update": ["id"], "memory_delete": ["id"], "memory_restore": ["id"],
         "memory_history": ["id"]}


def server_argv() -> list[str]:
    """``memvault mcp``: the console script, else the same command through ``-m``."""
    script = Path(sys.executable).with_name("memvault")
    if script.exists():
        return [str(script), "mcp"]
    return [sys.executable, "-m", "memvault", "mcp"]


@pytest.fixture()
def vault_setup(tmp_path: Path) -> dict[str, Any]:
    """A vault with a key for user alice and one memory of user bob's."""
    db = tmp_path / "vault.db"
    with Vault(db, embedder="hash") as vault:
        bob = vault.add("Bob's locker code is 4711", user_id="bob")
    with KeyStore.for_vault(db) as keys:
        token = keys.create("alice-agent", "alice")
    return {"db": str(db), "token": token, "bob_id": bob.id, "tmp": tmp_path}


def _child_env() -> dict[str, str]:
    """The SDK's default environment for a spawned server, plus PYTHONPATH, so that the
    server runs the code under test (not whatever memvault is installed)."""
    from mcp.client.stdio import get_default_environment

    env = get_default_environment()
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    # the text content carries the same JSON for clients that ignore structured content
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error(result: Any) -> dict[str, Any]:
    assert result.is_error
    body = result.structured_content
    assert body is not None and set(body) >= {"code", "message"}
    text = result.content[0].text
    assert text == f"error [{body['code']}]: {body['message']}"
    assert "Traceback" not in text
    return body


def test_stdio_round_trip(vault_setup: dict[str, Any]) -> None:
    s = vault_setup
    params = StdioServerParameters(
        command=server_argv()[0],
        args=[*server_argv()[1:], "--transport", "stdio", "--db", s["db"],
              "--embedder", "hash", "--key", s["token"]],
        cwd=str(s["tmp"]), env=_child_env())
    errlog_path = s["tmp"] / "server.err"

    async def main() -> None:
        with errlog_path.open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                listed = (await session.list_tools()).tools
                by_name = {t.name: t for t in listed}
                assert set(TOOLS) <= set(by_name)
                for name, required in TOOLS.items():
                    tool = by_name[name]
                    assert tool.description
                    assert tool.input_schema["type"] == "object"
                    assert sorted(tool.input_schema.get("required", [])) == sorted(required)
                    assert "user_id" not in tool.input_schema["properties"]
                assert by_name["memory_search"].annotations.read_only_hint is True
                assert by_name["memory_delete"].annotations.destructive_hint is True

                added = data(await session.call_tool("memory_add", {
                    "text": "Alice adopted a beagle named Pixel", "kind": "fact",
                    "tags": ["pets"], "metadata": {"source": "chat"}}))
                mid = added["id"]
                assert added["user_id"] == "alice" and added["kind"] == "fact"
                assert added["tags"] == ["pets"] and added["metadata"] == {"source": "chat"}

                found = data(await session.call_tool("memory_search",
                                                     {"query": "beagle Pixel", "k": 5}))
                assert found["query"] == "beagle Pixel"
                assert [h["item"]["id"] for h in found["hits"]] == [mid]  # not bob's
                assert isinstance(found["hits"][0]["score"], float)
                none = data(await session.call_tool("memory_search", {
                    "query": "beagle", "kinds": ["preference"]}))
                assert none["hits"] == []

                got = data(await session.call_tool("memory_get", {"id": mid}))
                assert got["text"] == "Alice adopted a beagle named Pixel"

                updated = data(await session.call_tool("memory_update", {
                    "id": mid, "text": "Alice adopted a beagle named Pixel and a cat",
                    "reason": "new pet"}))
                assert updated["version"] == 2 and updated["id"] == mid

                hist = data(await session.call_tool("memory_history", {"id": mid}))
                assert hist["id"] == mid
                assert [v["version"] for v in hist["versions"]] == [1, 2]
                assert hist["versions"][0]["text"] == "Alice adopted a beagle named Pixel"

                deleted = data(await session.call_tool("memory_delete", {"id": mid}))
                assert deleted["status"] == "deleted"
                gone = data(await session.call_tool("memory_search", {"query": "beagle"}))
                assert gone["hits"] == []
                restored = data(await session.call_tool("memory_restore", {"id": mid}))
                assert restored["status"] == "active"

                # errors: stable code + message, never a traceback
                bad = error(await session.call_tool("memory_add", {"text": ""}))
                assert bad["code"] == "invalid_input"
                bad = error(await session.call_tool("memory_search", {"query": "x", "k": 0}))
                assert bad["code"] == "invalid_input"
                assert error(await session.call_tool(
                    "memory_get", {"id": "no-such-id"}))["code"] == "not_found"
                for name, args in (("memory_get", {}), ("memory_update", {"text": "mine"}),
                                   ("memory_delete", {}), ("memory_history", {})):
                    body = error(await session.call_tool(name, {"id": s["bob_id"], **args}))
                    assert body["code"] == "not_found", (name, body)
                    assert "4711" not in body["message"]
                # revoking the key takes effect on the next call
                with KeyStore.for_vault(s["db"]) as keys:
                    keys.revoke(s["token"].split("_")[1])
                assert error(await session.call_tool(
                    "memory_get", {"id": mid}))["code"] == "unauthorized"

    try:
        anyio.run(main)
    except BaseException:
        print(errlog_path.read_text(), file=sys.stderr)
        raise
    with Vault(s["db"], embedder="hash") as vault:  # what the server wrote is in the vault
        hits = vault.search("beagle", user_id="alice")
        assert [h.item.version for h in hits] == [4]  # add, update, delete, restore


def test_schema_violation_is_a_tool_error(vault_setup: dict[str, Any]) -> None:
    """Arguments the JSON schema refuses never reach the vault (SDK-formatted error)."""
    from mcp import Client

    from memvault.governance.principals import Principal
    from memvault.governance.scope import ScopedVault
    from memvault.server.mcp import build_mcp

    async def main(vault: Vault) -> None:
        async with Client(build_mcp(ScopedVault(vault, Principal("p", "alice")))) as client:
            result = await client.call_tool("memory_search", {"query": "x", "k": "many"})
            assert result.is_error and "validation error" in result.content[0].text
            body = error(await client.call_tool("memory_add", {"text": "x",
                                                               "importance": 7}))
            assert body["code"] == "invalid_input"

    with Vault(vault_setup["db"], embedder="hash") as vault:
        anyio.run(main, vault)


def test_add_dedup_option(vault_setup: dict[str, Any]) -> None:
    """memory_add takes Vault.add's dedup policy: noop answers the memory already stored,
    version writes its next version, off (the default) stores a second one; any other
    value is refused by the schema and nothing is written."""
    from mcp import Client

    from memvault.governance.principals import Principal
    from memvault.governance.scope import ScopedVault
    from memvault.server.mcp import build_mcp

    text = "Alice's passport expires in June 2031"

    async def main(vault: Vault) -> None:
        async with Client(build_mcp(ScopedVault(vault, Principal("p", "alice")))) as client:
            schema = {t.name: t for t in (await client.list_tools()).tools}[
                "memory_add"].input_schema
            assert schema["properties"]["dedup"]["enum"] == ["off", "noop", "version"]
            assert schema["properties"]["dedup"]["default"] == "off"
            assert "dedup" not in schema.get("required", [])

            first = data(await client.call_tool("memory_add", {"text": text, "kind": "fact"}))
            same = data(await client.call_tool("memory_add", {"text": text, "kind": "fact",
                                                              "dedup": "noop"}))
            assert same["id"] == first["id"] and same["version"] == 1
            again = data(await client.call_tool("memory_add", {
                "text": text + ".", "kind": "fact", "dedup": "version"}))
            assert again["id"] == first["id"] and again["version"] == 2
            assert again["text"] == text + "."
            other_kind = data(await client.call_tool("memory_add", {
                "text": text, "kind": "note", "dedup": "noop"}))
            assert other_kind["id"] != first["id"]  # only the same kind is a duplicate
            plain = data(await client.call_tool("memory_add", {"text": text, "kind": "fact"}))
            assert plain["id"] != first["id"]  # off: stored anyway

            bad = await client.call_tool("memory_add", {"text": "x", "dedup": "merge"})
            assert bad.is_error and "validation error" in bad.content[0].text
            assert "Traceback" not in bad.content[0].text

    with Vault(vault_setup["db"], embedder="hash") as vault:
        anyio.run(main, vault)
        kept = vault.list(user_id="alice", limit=10).items
        assert sorted(i.text for i in kept) == sorted([text + ".", text, text])
        assert sorted(i.version for i in kept) == [1, 1, 2]  # nothing from the refused call


def _run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "MEMVAULT_API_KEY"}
    full_env.update(env or {})
    return subprocess.run([*server_argv(), *args], capture_output=True, text=True,
                          timeout=60, env=full_env, stdin=subprocess.DEVNULL)


def test_missing_or_bad_key_exits_2(vault_setup: dict[str, Any]) -> None:
    db = vault_setup["db"]
    for args, env in (([], None), (["--key", "mv_000000000000_" + "A" * 43], None),
                      ([], {"MEMVAULT_API_KEY": "not-a-key"})):
        proc = _run_cli(["--db", db, "--embedder", "hash", *args], env)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error [unauthorized]: "), proc.stderr
        assert "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(proc: subprocess.Popen, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server did not listen on port {port} within {timeout} s")


def test_streamable_http_needs_a_key_on_every_request(vault_setup: dict[str, Any]) -> None:
    """Over HTTP there is no server-wide key: each request brings its own (401 without),
    each tool call acts as the principal of the key on its request, and a revoked key
    stops working on the next request."""
    import httpx
    import httpx2

    s = vault_setup
    with KeyStore.for_vault(s["db"]) as keys:
        bob_token = keys.create("bob-agent", "bob")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    errlog_path = s["tmp"] / "http.err"
    env = {k: v for k, v in os.environ.items()} | {"MEMVAULT_API_KEY": s["token"]}
    with errlog_path.open("w") as errlog:
        proc = subprocess.Popen(
            [*server_argv(), "--transport", "http", "--host", "127.0.0.1", "--port", str(port),
             "--db", s["db"], "--embedder", "hash"],  # $MEMVAULT_API_KEY is not used
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errlog)
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "probe", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    try:
        _wait_for_port(proc, port)
        for headers in ({}, {"Authorization": "Bearer mv_000000000000_" + "A" * 43},
                        {"Authorization": f"Basic {s['token']}"}):
            r = httpx.post(url, json=init, headers={**accept, **headers}, timeout=10)
            assert r.status_code == 401 and r.json()["code"] == "unauthorized", r.text
            assert r.headers["www-authenticate"] == "Bearer"

        async def session_of(token: str, work: Any) -> Any:
            client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                        timeout=30)
            async with client, streamable_http_client(url, http_client=client) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

        async def alice(session: Any) -> str:
            names = {t.name for t in (await session.list_tools()).tools}
            assert set(TOOLS) <= names
            added = data(await session.call_tool(
                "memory_add", {"text": "Alice's favourite tea is genmaicha"}))
            assert added["user_id"] == "alice"
            found = data(await session.call_tool("memory_search", {"query": "genmaicha"}))
            assert [h["item"]["id"] for h in found["hits"]] == [added["id"]]
            assert error(await session.call_tool("memory_get", {"id": s["bob_id"]}))["code"] \
                == "not_found"
            return added["id"]

        async def bob(session: Any) -> None:
            mine = data(await session.call_tool("memory_get", {"id": s["bob_id"]}))
            assert mine["user_id"] == "bob"
            assert error(await session.call_tool("memory_get", {"id": alice_id}))["code"] \
                == "not_found"
            found = data(await session.call_tool("memory_search", {"query": "genmaicha"}))
            assert {h["item"]["user_id"] for h in found["hits"]} == {"bob"}

        alice_id = anyio.run(session_of, s["token"], alice)
        anyio.run(session_of, bob_token, bob)
        with KeyStore.for_vault(s["db"]) as keys:
            keys.revoke(s["token"].split("_")[1])
        r = httpx.post(url, json=init, headers={**accept, "Authorization": f"Bearer {s['token']}"},
                       timeout=10)
        assert r.status_code == 401
    except BaseException:
        proc.kill()
        proc.wait(10)
        print(errlog_path.read_text(), file=sys.stderr)
        raise
    proc.terminate()  # SIGTERM: the server shuts down and closes the vault
    assert proc.wait(20) == 0, errlog_path.read_text()
    assert "Traceback" not in errlog_path.read_text()
    with Vault(s["db"], embedder="hash") as vault:  # acted as alice, audited as alice-agent
        assert vault.get(alice_id).provenance["actor"] == "alice-agent"


def test_remember_and_chat_tools(vault_setup: dict[str, Any]) -> None:
    """memory_remember always; memory_chat only with an LLM (a scripted OpenAI-compatible
    server over real HTTP), which answers from the caller's memories only."""
    from mcp import Client

    from memvault.governance.principals import Principal
    from memvault.governance.scope import ScopedVault
    from memvault.models.scripted import ScriptedLLMServer
    from memvault.server.mcp import MODEL_TOOL_NAMES, TOOL_NAMES, build_mcp

    async def without_llm(scoped: ScopedVault) -> None:
        async with Client(build_mcp(scoped)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == set(TOOL_NAMES) and "memory_chat" not in names
            body = error(await client.call_tool("memory_remember", {
                "messages": [{"role": "user", "content": "I live in Oslo"}], "mode": "fine"}))
            assert body["code"] == "model_unavailable"
            fast = data(await client.call_tool("memory_remember", {
                "messages": [{"role": "user", "content": "My dog is called Pixel"}],
                "session_id": "s1"}))
            assert fast["mode"] == "fast" and len(fast["turns"]) == 1
            assert fast["turns"][0]["user_id"] == "alice"
            assert fast["turns"][0]["session_id"] == "s1"

    async def with_llm(scoped: ScopedVault, llm: Any) -> None:
        async with Client(build_mcp(scoped, llm=llm)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == set(TOOL_NAMES) | set(MODEL_TOOL_NAMES)
            answer = data(await client.call_tool("memory_chat", {
                "query": "What is my dog called?", "remember": True}))
            assert answer["answer"] == "Your dog is Pixel."
            texts = [h["item"]["text"] for h in answer["memories"]]
            assert "My dog is called Pixel" in texts
            assert all(h["item"]["user_id"] == "alice" for h in answer["memories"])
            assert len(answer["remembered"]) == 2
            assert error(await client.call_tool("memory_chat", {"query": ""}))["code"] == \
                "invalid_input"

    with Vault(vault_setup["db"], embedder="hash") as vault, \
            ScriptedLLMServer(default="Your dog is Pixel.") as scripted:
        scoped = ScopedVault(vault, Principal("p", "alice"))
        anyio.run(without_llm, scoped)
        anyio.run(with_llm, scoped, scripted.llm())
        prompt = json.dumps(scripted.requests[0]["messages"])
        assert "Pixel" in prompt and "4711" not in prompt  # bob's memory never reaches it
