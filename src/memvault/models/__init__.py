"""Model adapters: embedders now; LLMs join them behind an equally small contract."""

from .base import Embedder, HashEmbedder, normalize_rows

__all__ = ["Embedder", "HashEmbedder", "normalize_rows", "get_embedder"]


def get_embedder(name: str) -> Embedder:
    """Resolve an embedder by the name used in settings ("minilm", "hash", "hash-<dim>")."""
    from ..errors import ConfigurationError

    if name in ("minilm", "all-minilm-l6-v2"):
        from .minilm import MiniLMEmbedder

        return MiniLMEmbedder()
    if name == "hash" or name.startswith("hash-"):
        size = name.split("-", 1)[1] if "-" in name else "256"
        if not size.isdigit() or not 8 <= int(size) <= 4096:
            raise ConfigurationError(f"bad embedder {name!r}: hash-<dim> with dim in 8..4096")
        return HashEmbedder(int(size))
    raise ConfigurationError(f"unknown embedder {name!r}; known: minilm, hash, hash-<dim>")
