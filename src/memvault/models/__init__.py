"""Model adapters: embedders and LLMs, each behind a small contract.

LLM specs understood by :func:`get_llm` (the ``llm`` setting, ``--llm`` on the CLI):

=====================================  ==================================================
``None``, ``""``, ``"none"``            no LLM: the reader uses its rule-based fallbacks
``"local"`` / ``"smollm2"``             the bundled SmolLM2-135M-Instruct (loaded once)
``"local:/path/model.gguf"``           another GGUF file, loaded the same way
``"openai:<base_url>#<model>"``        any OpenAI-compatible endpoint, e.g.
                                       ``openai:http://127.0.0.1:8080/v1#qwen2.5``
``"ollama:<model>"``                   shorthand for ``openai:http://127.0.0.1:11434/v1#<model>``
=====================================  ==================================================
"""

from typing import Any

from .base import Embedder, HashEmbedder, normalize_rows
from .llm import LLM

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "HashEmbedder", "normalize_rows", "get_embedder",
           "LLM", "get_llm"]

_NO_LLM = ("", "none", "rules")


def get_llm(spec: "str | LLM | None", *, api_key: str | None = None,
            timeout: float = 60.0, retries: int = 2) -> "LLM | None":
    """Resolve an LLM spec (see the module docstring); an LLM object is returned as is.

    ``api_key``, ``timeout`` and ``retries`` apply to HTTP endpoints; keys come from the
    caller (the CLI reads them from its environment), never from this library.
    """
    from .._extras import requires
    from ..errors import ConfigurationError

    if spec is None or (isinstance(spec, str) and spec.strip().lower() in _NO_LLM):
        return None
    if not isinstance(spec, str):
        if isinstance(spec, LLM):
            return spec
        raise ConfigurationError(f"not an LLM or an LLM spec: {type(spec).__name__}")
    name = spec.strip()
    if name.lower() in ("local", "smollm2"):
        from .local import load_local_llm

        return load_local_llm()
    scheme, _, rest = name.partition(":")
    if scheme == "local" and rest:
        from .local import load_local_llm

        return load_local_llm(rest)
    http: dict[str, Any] = {"api_key": api_key, "timeout": timeout, "retries": retries}
    if scheme == "ollama" and rest:
        with requires("client", "an OpenAI-compatible LLM"):
            from .openai_http import OpenAIChatLLM

        return OpenAIChatLLM("http://127.0.0.1:11434/v1", rest, **http)
    if scheme == "openai" and rest:
        url, _, model = rest.partition("#")
        if not model:
            raise ConfigurationError(f"bad LLM spec {spec!r}: openai:<base_url>#<model>")
        with requires("client", "an OpenAI-compatible LLM"):
            from .openai_http import OpenAIChatLLM

        return OpenAIChatLLM(url, model, **http)
    raise ConfigurationError(f"unknown LLM spec {spec!r}; known: none, local, smollm2, "
                             "local:<file.gguf>, openai:<base_url>#<model>, ollama:<model>")


#: The embedder of a new vault when settings name none.
DEFAULT_EMBEDDER = "minilm"


def get_embedder(name: str) -> Embedder:
    """Resolve an embedder by the name used in settings ("minilm", "minilm-int8", "mpnet",
    "hash", "hash-<dim>")."""
    from ..errors import ConfigurationError

    if name in ("minilm", "all-minilm-l6-v2"):
        from .minilm import MiniLMEmbedder

        return MiniLMEmbedder()
    if name == "minilm-int8":  # same model and id, int8 dense layers (needs memvault[fast])
        from .minilm import MiniLMEmbedder

        return MiniLMEmbedder(backend="onnx-int8")
    if name in ("mpnet", "all-mpnet-base-v2"):
        from .mpnet import MPNetEmbedder

        return MPNetEmbedder()
    if name == "hash" or name.startswith("hash-"):
        size = name.split("-", 1)[1] if "-" in name else "256"
        if not size.isdigit() or not 8 <= int(size) <= 4096:
            raise ConfigurationError(f"bad embedder {name!r}: hash-<dim> with dim in 8..4096")
        return HashEmbedder(int(size))
    raise ConfigurationError(f"unknown embedder {name!r}; known: minilm, minilm-int8, mpnet, hash, hash-<dim>")
