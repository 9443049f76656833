"""``memvault chat QUESTION``: :meth:`memvault.Vault.chat` on the command line.

The LLM comes from ``--llm`` (default ``$MEMVAULT_LLM``,
else the bundled SmolLM2), an endpoint's key from ``$MEMVAULT_LLM_API_KEY`` (read here, at
the edge); ``--adapter NAME`` switches on a LoRA adapter from ``<db>.adapters/``.
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import InvalidInput
from ._common import App, global_options, llm_options, pass_app, scope_options

__all__ = ["chat_command"]


@click.command("chat")
@click.argument("question")
@click.option("-k", "k", default=5, show_default=True, help="Retrieved memories in the prompt.")
@click.option("--adapter", "adapter_name", metavar="NAME",
              help="Switch on this LoRA adapter (local model only).")
@click.option("--no-activation", is_flag=True, help="Do not use or build a KV-cache block.")
@click.option("--remember", is_flag=True, help="Store the question and answer as turns.")
@click.option("--max-tokens", default=256, show_default=True)
@llm_options("local (the bundled SmolLM2), openai:<base_url>#<model>, ollama:<model>; "
             "default $MEMVAULT_LLM, else local.")
@scope_options
@global_options
@pass_app
def chat_command(app: App, question: str, k: int, adapter_name: str | None,
                 no_activation: bool, remember: bool, max_tokens: int, llm_spec: str | None,
                 api_key: str | None, timeout: float, **scope: str | None) -> None:
    """Answer QUESTION with the scope's memories (retrieved, KV-cached, adapter).

    The LLM: --llm, else $MEMVAULT_LLM, else the bundled SmolLM2."""
    from ..models import get_llm

    vault = app.vault()
    llm = get_llm(llm_spec or vault.settings.llm or "local", api_key=api_key, timeout=timeout)
    if llm is None:
        raise InvalidInput("chat needs an LLM: --llm local, openai:<base_url>#<model>, ...")
    adapter = None
    if adapter_name:
        from .adapter import adapter_store

        adapter = adapter_store(app, None).get(adapter_name)
    result = vault.chat(question, llm=llm, k=k, activation=not no_activation,
                        adapter=adapter, remember=remember, max_tokens=max_tokens, **scope)
    app.out(lambda: _human(result), result.to_dict())


def _human(result: Any) -> str:
    lines = [result.answer, ""]
    lines.append(f"model {result.model}; activation: {result.activation}"
                 + (f" ({result.cached_tokens} of {result.prompt_tokens} prompt tokens cached)"
                    if result.cached_tokens else ""))
    if result.adapter:
        lines.append(f"adapter {result.adapter}")
    for hit in result.memories:
        lines.append(f"  memory {hit.item.id[:8]}  {hit.item.text[:80]}")
    if result.remembered:
        lines.append(f"remembered {len(result.remembered)} turns")
    return "\n".join(lines)
