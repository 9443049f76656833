"""Constrained decoding to a JSON schema for the local model (lm-format-enforcer's core).

A 135M model asked for JSON writes broken JSON most of the time; masking, at every step,
the tokens that would leave the output no longer a prefix of a schema-valid document
makes a parseable reply certain (its content is still the model's). lm-format-enforcer's
own transformers adapter does not import under transformers 5, so the two small pieces
it needs are here: the vocabulary table and the allowed-tokens callback that
``generate(prefix_allowed_tokens_fn=...)`` calls.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..errors import ConfigurationError

__all__ = ["tokenizer_data", "allowed_tokens"]


def tokenizer_data(tokenizer: Any) -> Any:
    """The enforcer's view of ``tokenizer``: every regular token's text as it reads after
    another token (so leading spaces count), and whether it starts a word."""
    try:
        from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData
    except ImportError as exc:
        raise ConfigurationError("constrained decoding needs lm-format-enforcer: "
                                 "pip install 'memvault[local]'") from exc
    size = len(tokenizer)
    special = set(tokenizer.all_special_ids)
    zero = tokenizer.encode("0", add_special_tokens=False)[-1]
    tokens = []
    for idx in range(size):
        if idx in special:
            continue
        after = tokenizer.decode([zero, idx])[1:]
        alone = tokenizer.decode([idx])
        tokens.append((idx, after, len(after) > len(alone)))

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(tokens, decode, tokenizer.eos_token_id, False, size)


def allowed_tokens(data: Any, schema: Mapping[str, Any]) -> Callable[[int, Any], list[int]]:
    """``prefix_allowed_tokens_fn`` for ``generate``: the tokens that keep the output
    valid under ``schema`` after the sequence so far."""
    from lmformatenforcer import JsonSchemaParser
    from lmformatenforcer.tokenenforcer import TokenEnforcer

    enforcer = TokenEnforcer(data, JsonSchemaParser(dict(schema)))

    def allowed(batch_id: int, sent: Any) -> list[int]:
        return enforcer.get_allowed_tokens(sent.tolist()).allowed_tokens

    return allowed
