"""Count the tokens a torch model is actually fed, forward call by forward call.

Equal outputs cannot tell a KV cache that was used from one that was silently ignored
(recomputing the prefix gives the same tokens). What differs is the work: with the cache
the model's first forward pass sees only the tokens after the cached prefix. This probe
records that with torch's own forward pre-hook on the transformers model (an observer:
nothing of memvault is replaced).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def fed_tokens(model: Any) -> Iterator[list[int]]:
    """Yield a list that receives, per forward call of ``model``, how many token
    positions it was fed (``input_ids`` or ``inputs_embeds`` length)."""
    calls: list[int] = []

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids")
        if ids is None and args:
            ids = args[0]
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        if ids is None:
            raise AssertionError("forward call without input_ids or inputs_embeds")
        calls.append(int(ids.shape[1]))

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()
