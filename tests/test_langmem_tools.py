"""LangMem's memory tools (manage_memory, search_memory) on MemvaultStore, inside a real
LangGraph agent whose chat model is scripted (no network): what the agent remembers is a
memvault memory, versioned, found by memvault's search and confined to its user."""

from __future__ import annotations

import asyncio
import time
import warnings

import pytest


from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langmem import create_manage_memory_tool, create_search_memory_tool

from memvault import Vault
from memvault.integrations.langgraph import MemvaultStore

NS = ("memories", "{langgraph_user_id}")


class ScriptedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, replying from a script; tools are 'bound' by ignoring
    them, since the script already names the tool calls."""

    def bind_tools(self, tools, **kwargs):  # noqa: ANN001, ANN003
        return self


def _call(name: str, call_id: str, **args: object) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


def _agent(store: MemvaultStore, script: list[AIMessage]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent's move to langchain.agents
        from langgraph.prebuilt import create_react_agent

        return create_react_agent(
            ScriptedChatModel(messages=iter(script)),
            tools=[create_manage_memory_tool(namespace=NS), create_search_memory_tool(namespace=NS)],
            store=store)


def _user(name: str) -> dict:
    return {"configurable": {"langgraph_user_id": name}}


def _ask(agent, text: str, user: str) -> list:
    return agent.invoke({"messages": [{"role": "user", "content": text}]}, _user(user))["messages"]


def test_langmem_tools_create_search_update_delete_memvault_memories(vault: Vault) -> None:
    store = MemvaultStore(vault, namespace_scope={"user_id": 1})
    agent = _agent(store, [
        _call("manage_memory", "c1", content="User drinks dark roast coffee", action="create"),
        AIMessage("Noted."),
    ])
    _ask(agent, "I only drink dark roast coffee", "alice")
    [item] = store.search(("memories", "alice"))
    assert item.value == {"content": "User drinks dark roast coffee"}
    key = item.key
    # the agent's memory is a memvault memory of Alice's, found by memvault's own search
    hits = vault.search("what coffee does she drink", user_id="alice")
    assert [h.item.text for h in hits] == ["User drinks dark roast coffee"]
    created = time.time()
    time.sleep(0.01)

    agent = _agent(store, [
        _call("search_memory", "c2", query="coffee preference"),
        _call("manage_memory", "c3", content="User switched to green tea", action="update", id=key),
        AIMessage("Updated."),
    ])
    messages = _ask(agent, "Actually I drink green tea now", "alice")
    found = [m for m in messages if isinstance(m, ToolMessage) and m.tool_call_id == "c2"]
    assert "dark roast coffee" in found[0].content
    assert store.get(("memories", "alice"), key).value == {"content": "User switched to green tea"}
    # every put is a version: history and as_of reach the agent's earlier belief
    assert [i.value["content"] for i in store.history(("memories", "alice"), key)] == \
        ["User drinks dark roast coffee", "User switched to green tea"]
    assert store.get(("memories", "alice"), key, as_of=created).value == \
        {"content": "User drinks dark roast coffee"}

    agent = _agent(store, [_call("manage_memory", "c4", action="delete", id=key),
                           AIMessage("Forgotten.")])
    _ask(agent, "Forget what I drink", "alice")
    assert store.search(("memories", "alice")) == []
    assert vault.search("green tea", user_id="alice") == []
    assert vault.history(store._id(("memories", "alice"), key))[-1].status == "deleted"


def test_each_user_searches_only_their_own_memories(vault: Vault) -> None:
    store = MemvaultStore(vault, namespace_scope={"user_id": 1})
    _ask(_agent(store, [_call("manage_memory", "a", content="Alice is allergic to peanuts"),
                        AIMessage("ok")]), "remember my allergy", "alice")
    _ask(_agent(store, [_call("manage_memory", "b", content="Bob is allergic to shellfish"),
                        AIMessage("ok")]), "remember my allergy", "bob")
    messages = _ask(_agent(store, [_call("search_memory", "s", query="allergic"),
                                   AIMessage("peanuts")]), "what am I allergic to?", "bob")
    result = [m for m in messages if isinstance(m, ToolMessage)][0].content
    assert "shellfish" in result and "peanuts" not in result
    assert [h.item.text for h in vault.search("allergic", user_id="bob")] == \
        ["Bob is allergic to shellfish"]


def test_the_tools_run_on_the_async_path(vault: Vault) -> None:
    store = MemvaultStore(vault, namespace_scope={"user_id": 1})
    agent = _agent(store, [_call("manage_memory", "a", content="User lives in Lyon"),
                           _call("search_memory", "s", query="where does the user live"),
                           AIMessage("Lyon")])

    async def run() -> list:
        out = await agent.ainvoke({"messages": [{"role": "user", "content": "I live in Lyon"}]},
                                  _user("carol"))
        return out["messages"]

    messages = asyncio.run(run())
    tool_results = [m.content for m in messages if isinstance(m, ToolMessage)]
    assert tool_results[0].startswith("created memory")
    assert "Lyon" in tool_results[1]
    assert vault.list(user_id="carol").items[0].text == "User lives in Lyon"
