"""The OpenAI-compatible HTTP client against the scripted server: real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time

import pytest

from memvault.errors import ConfigurationError, ModelError
from memvault.models import LLM, get_llm
from memvault.models.openai_http import OpenAIChatLLM
from memvault.models.scripted import Reply, ScriptedLLMServer

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server():
    with ScriptedLLMServer() as s:
        yield s


def test_completion_round_trip_and_request_shape(server: ScriptedLLMServer) -> None:
    server.push("hi there")
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    with server.llm() as llm:
        assert isinstance(llm, LLM)
        assert llm.complete(HELLO, max_tokens=7, json_schema=schema) == "hi there"
    sent = server.requests[0]
    assert sent["model"] == "scripted"
    assert sent["messages"] == HELLO
    assert sent["max_tokens"] == 7 and sent["temperature"] == 0.0
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == schema


def test_no_response_format_without_schema(server: ScriptedLLMServer) -> None:
    server.push("ok")
    with server.llm() as llm:
        llm.complete(HELLO)
    assert "response_format" not in server.requests[0]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_transient_statuses_then_succeeds(server: ScriptedLLMServer, status: int) -> None:
    server.push(Reply.error(status), Reply.error(status), "finally")
    with server.llm(retries=2) as llm:
        assert llm.complete(HELLO) == "finally"
    assert len(server.requests) == 3


def test_gives_up_after_retries_with_model_error(server: ScriptedLLMServer) -> None:
    server.push(*[Reply.error(500)] * 5)
    with server.llm(retries=2) as llm, pytest.raises(ModelError) as err:
        llm.complete(HELLO)
    assert "3 attempt" in err.value.message and err.value.code == "model_error"
    assert len(server.requests) == 3 and server.pending == 2


def test_client_errors_are_not_retried(server: ScriptedLLMServer) -> None:
    server.push(Reply.error(400, "bad model"), "never sent")
    with server.llm(retries=3) as llm, pytest.raises(ModelError, match="HTTP 400.*bad model"):
        llm.complete(HELLO)
    assert len(server.requests) == 1


def test_backoff_honours_short_retry_after(server: ScriptedLLMServer) -> None:
    server.push(Reply.error(429, headers={"Retry-After": "0.25"}), "ok")
    waits: list[float] = []
    llm = OpenAIChatLLM(server.base_url, "m", backoff=5.0, sleep=waits.append)
    assert llm.complete(HELLO) == "ok"
    assert waits == [0.25]  # the server's hint, not 5 s of exponential backoff
    server.push(Reply.error(503), Reply.error(503), "ok")
    waits.clear()
    assert llm.complete(HELLO) == "ok"
    assert waits == [5.0, 10.0]
    llm.close()


def test_timeout_is_retried_then_reported(server: ScriptedLLMServer) -> None:
    server.push(Reply.slow(1.0, "late"), "quick")
    with server.llm(timeout=0.2, retries=1) as llm:
        started = time.perf_counter()
        assert llm.complete(HELLO) == "quick"
        assert time.perf_counter() - started < 0.9  # did not wait for the slow reply
    server.push(Reply.slow(1.0, "late"))
    with server.llm(timeout=0.2, retries=0) as llm, pytest.raises(ModelError, match="timed out"):
        llm.complete(HELLO)


@pytest.mark.parametrize("reply", [
    Reply.malformed(),  # truncated JSON body
    Reply(raw="<html>gateway</html>"),
    Reply(raw=json.dumps({"choices": []})),
    Reply(raw=json.dumps({"choices": [{"message": {"content": 42}}]})),
])
def test_malformed_bodies_are_model_errors(server: ScriptedLLMServer, reply: Reply) -> None:
    server.push(reply)
    with server.llm(retries=0) as llm, pytest.raises(ModelError):
        llm.complete(HELLO)


def test_connection_refused_is_model_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OpenAIChatLLM(f"http://127.0.0.1:{port}/v1", "m", retries=1, backoff=0.0)
    with pytest.raises(ModelError, match="2 attempt.*transport"):
        llm.complete(HELLO)
    llm.close()


def test_function_script_sees_the_request_and_exhaustion_is_visible() -> None:
    def echo(body: dict) -> str:
        return body["messages"][-1]["content"].upper()

    with ScriptedLLMServer(echo) as s, s.llm() as llm:
        assert llm.complete(HELLO) == "HELLO"
    with ScriptedLLMServer(["one"]) as s, s.llm(retries=0) as llm:
        assert llm.complete(HELLO) == "one"
        with pytest.raises(ModelError, match="exhausted"):
            llm.complete(HELLO)


def test_api_key_is_sent_as_bearer_token() -> None:
    seen: list[str] = []

    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    llm = OpenAIChatLLM("http://llm.invalid/v1", "m", api_key="sk-test",
                        transport=httpx.MockTransport(handler))
    assert llm.complete(HELLO) == "ok" and seen == ["Bearer sk-test"]


def test_get_llm_specs(server: ScriptedLLMServer) -> None:
    assert get_llm(None) is None and get_llm("none") is None and get_llm("") is None
    server.push("via spec")
    llm = get_llm(f"openai:{server.base_url}#tiny", retries=0)
    assert isinstance(llm, OpenAIChatLLM) and llm.model == "tiny"
    assert llm.complete(HELLO) == "via spec"
    assert get_llm(llm) is llm
    assert get_llm("ollama:llama3").base_url == "http://127.0.0.1:11434/v1"
    for bad in ("openai:http://x/v1", "gpt-9", "openai:ftp://x#m"):
        with pytest.raises(ConfigurationError):
            get_llm(bad)


def test_llm_setting_comes_from_the_edge() -> None:
    from memvault.settings import Settings

    assert Settings().llm is None  # default: rule-based reading
    assert Settings.from_env({"MEMVAULT_LLM": "ollama:llama3"}).llm == "ollama:llama3"
    assert Settings.from_env({"MEMVAULT_LLM": "x"}, llm="none").llm == "none"
