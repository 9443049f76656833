"""Chat messages as the turn records :meth:`memvault.Vault.add_messages` stores."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .errors import InvalidInput

__all__ = ["message_records"]


def message_records(messages: Sequence[Mapping[str, Any]], *, user_id: str | None = None,
                    agent_id: str | None = None, session_id: str | None = None,
                    cube_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                    event_time: Any = None) -> list[dict[str, Any]]:
    """The records :meth:`Vault.add_messages` stores for chat ``messages`` (turns whose
    provenance is the message's index), for callers that write them with
    :meth:`Vault.add_many` in batches of their own (an import with a progress bar)."""
    if isinstance(messages, (str, Mapping)) or not isinstance(messages, Sequence):
        raise InvalidInput("messages must be a list of {role, content} objects")
    records = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or "content" not in msg:
            raise InvalidInput(f"message {i} must be an object with 'content'", index=i)
        role = msg.get("role", "user")
        if not isinstance(role, str):
            raise InvalidInput(f"message {i}: role must be a string", index=i)
        extra = msg.get("metadata") or {}
        if not isinstance(extra, Mapping):
            raise InvalidInput(f"message {i}: metadata must be an object", index=i)
        meta = {**(metadata or {}), **extra, "role": role}
        if msg.get("name"):
            meta["speaker"] = msg["name"]
        records.append({"text": msg["content"], "kind": "turn", "user_id": user_id,
                        "agent_id": agent_id, "session_id": session_id,
                        "cube_id": cube_id, "metadata": meta,
                        "event_time": msg.get("timestamp", event_time),
                        "provenance": {"source": "messages", "index": i}})
    return records
