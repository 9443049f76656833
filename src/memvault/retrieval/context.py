"""What the indexes see for a memory: its text plus the context that makes it findable.

A chat turn such as "I painted that last summer" carries neither who said it nor what
"that" is. Indexing the speaker's name, and the turn it answers, lets a question that
names the person or the thing find it. The stored text itself is never changed.

The lexical index gets the thread (the previous turn too); the embedder gets only
"Speaker: text": on LoCoMo the dense side ranked no better with the thread in its input,
and the longer input doubled the embedding cost of every turn.
"""

from __future__ import annotations

from ..types import MemoryItem

#: "off": text only; "speaker": "Name: text" for turns; "thread": also the previous turn.
MODES = ("off", "speaker", "thread")


def speaker_of(item: MemoryItem) -> str | None:
    value = item.metadata.get("speaker") or item.metadata.get("role")
    return value if isinstance(value, str) and value.strip() else None


def search_text(item: MemoryItem, previous: MemoryItem | None, mode: str) -> str:
    if mode == "off" or item.kind != "turn":
        return item.text
    who = speaker_of(item)
    text = f"{who}: {item.text}" if who else item.text
    if mode == "thread" and previous is not None:
        prev_who = speaker_of(previous)
        prev = f"{prev_who}: {previous.text}" if prev_who else previous.text
        text = f"{text}\n(in reply to {prev})"
    return text


def embed_text(item: MemoryItem, mode: str) -> str:
    """The embedder's input: the speaker context, never the thread."""
    return search_text(item, None, "speaker" if mode == "thread" else mode)
