"""Chat exports that ``memvault ingest`` reads, all turned into sessions of messages.

Recognised shapes (detected from the JSON structure, not the file name):

* a message list ``[{"role", "content", "name"?, "timestamp"?}, ...]`` or
  ``{"messages": [...]}``: one session;
* memvault's sample conversation ``{"speakers", "sessions": [{"date", "turns": [{"speaker",
  "text"}]}]}``;
* LoCoMo-like ``{"conversation": {"session_1": [{"speaker", "text", "dia_id"}],
  "session_1_date_time": "1:56 pm on 8 May, 2023", ...}}``, or a list of those;
* a ChatGPT data export (``conversations.json``): a list of ``{"title", "mapping",
  "current_node"}``; the branch that ends at ``current_node`` is read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from ..errors import InvalidInput

__all__ = ["ChatSession", "parse_chat", "loads_chat"]


@dataclass(frozen=True, slots=True)
class ChatSession:
    session_id: str | None
    messages: list[dict[str, Any]]


def loads_chat(text: str) -> list[ChatSession]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"not a JSON chat export: {exc}") from None
    return parse_chat(doc)


def parse_chat(doc: Any) -> list[ChatSession]:
    """Sessions of ``{"role", "content", "name"?, "timestamp"?}`` messages, in order."""
    if isinstance(doc, Mapping):
        if "messages" in doc:
            return [ChatSession(None, _messages(doc["messages"]))]
        if "sessions" in doc:
            return _sample(doc)
        if "conversation" in doc:
            return _locomo(doc)
        if "mapping" in doc:
            return _chatgpt([doc])
    if isinstance(doc, list):
        first = next((d for d in doc if isinstance(d, Mapping)), None)
        if first is not None and "mapping" in first:
            return _chatgpt(doc)
        if first is not None and "conversation" in first:
            return [s for d in doc for s in _locomo(d)]
        return [ChatSession(None, _messages(doc))]
    raise InvalidInput("unrecognised chat export: expected a list of messages, "
                       '{"messages": [...]}, a LoCoMo-like or a ChatGPT export')


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidInput("messages must be a list")
    out = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, Mapping) or not isinstance(msg.get("content"), str):
            raise InvalidInput(f"message {i} must be an object with string 'content'", index=i)
        out.append({k: msg[k] for k in ("role", "content", "name", "timestamp", "metadata")
                    if msg.get(k) is not None})
    return out


def _sample(doc: Mapping[str, Any]) -> list[ChatSession]:
    sessions = []
    for n, session in enumerate(doc.get("sessions") or [], 1):
        if not isinstance(session, Mapping):
            raise InvalidInput(f"session {n} must be an object")
        msgs = [{"role": "user", "name": t.get("speaker"), "content": t.get("text"),
                 "timestamp": session.get("date")} for t in session.get("turns") or []
                if isinstance(t, Mapping)]
        sessions.append(ChatSession(f"session-{n}", _messages(_compact(msgs))))
    return sessions


def _locomo(doc: Mapping[str, Any]) -> list[ChatSession]:
    from ..evaluation.locomo import parse_date

    conv = doc.get("conversation")
    if not isinstance(conv, Mapping):
        raise InvalidInput("a LoCoMo sample needs a 'conversation' object")
    prefix = str(doc.get("sample_id") or "locomo")
    keys = sorted((int(m.group(1)), k) for k in conv
                  if (m := re.fullmatch(r"session_(\d+)", k)))
    sessions = []
    for n, key in keys:
        date = conv.get(f"{key}_date_time")
        when = parse_date(date).isoformat() if isinstance(date, str) else None
        msgs = [{"role": "user", "name": t.get("speaker"), "content": t.get("text"),
                 "timestamp": when, "metadata": {"dia_id": t["dia_id"]} if t.get("dia_id")
                 else None} for t in conv[key] or [] if isinstance(t, Mapping)]
        sessions.append(ChatSession(f"{prefix}:session_{n}", _messages(_compact(msgs))))
    return sessions


def _chatgpt(convs: list[Any]) -> list[ChatSession]:
    sessions = []
    for n, conv in enumerate(convs, 1):
        mapping = conv.get("mapping") if isinstance(conv, Mapping) else None
        if not isinstance(mapping, Mapping):
            raise InvalidInput(f"ChatGPT conversation {n} has no mapping")
        node_id, chain = conv.get("current_node"), []
        seen: set[str] = set()
        while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
            seen.add(node_id)
            chain.append(mapping[node_id])
            node_id = mapping[node_id].get("parent")
        msgs = []
        for node in reversed(chain):
            msg = node.get("message") or {}
            role = (msg.get("author") or {}).get("role")
            parts = (msg.get("content") or {}).get("parts") or []
            text = "\n".join(p for p in parts if isinstance(p, str)).strip()
            if role not in ("user", "assistant") or not text:
                continue
            stamp = msg.get("create_time")
            msgs.append({"role": role, "content": text, "timestamp":
                         datetime.fromtimestamp(stamp, timezone.utc).isoformat()
                         if isinstance(stamp, (int, float)) else None})
        sid = conv.get("conversation_id") or conv.get("id") or f"chatgpt-{n}"
        sessions.append(ChatSession(str(sid), _messages(_compact(msgs))))
    return sessions


def _compact(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop None fields and messages without text (LoCoMo has image-only turns)."""
    return [{k: v for k, v in m.items() if v is not None} for m in msgs
            if isinstance(m.get("content"), str) and m["content"].strip()]
