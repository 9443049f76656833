"""Wire shapes shared by the REST and MCP faces (and read back by the remote client)."""

from __future__ import annotations

from typing import Any

__all__ = ["remember_doc"]


def remember_doc(result: Any) -> dict[str, Any]:
    """A ``RememberResult`` on the wire: like its ``to_dict`` but with whole memories
    (turns, each decision's ``target`` and written ``item``), so a remote client can
    rebuild the same result the local Vault returns."""
    doc = result.to_dict()
    doc["turns"] = [t.to_dict() for t in result.turns]
    for d, out in zip(result.decisions, doc["decisions"]):
        out["target"] = d.target.to_dict() if d.target is not None else None
        out["item"] = d.item.to_dict() if d.item is not None else None
    return doc
