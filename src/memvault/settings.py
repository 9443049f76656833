"""One settings object, read at the edges (CLI, server) and passed down.

Library modules never read the environment: :meth:`Settings.from_env` is called by the
faces only, so a program embedding memvault decides where configuration comes from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigurationError
from .retrieval.config import SearchConfig

__all__ = ["Settings", "Limits"]

ENV_PREFIX = "MEMVAULT_"


@dataclass(frozen=True, slots=True)
class Limits:
    """Input bounds: anything larger is refused with InvalidInput before touching storage."""

    max_text_bytes: int = 64 * 1024
    max_metadata_bytes: int = 16 * 1024
    max_tags: int = 64
    max_k: int = 1000
    max_page: int = 1000
    max_batch: int = 10_000
    #: Nesting of any JSON we parse or store (metadata, manifests, sidecars): deep enough
    #: for any real document, shallow enough that no parser or encoder runs out of stack.
    max_json_depth: int = 32
    #: A MemCube from elsewhere: each activation/parametric file (1 GiB: a 7B model's KV
    #: cache over 4k tokens is ~0.5 GiB), the whole cube (plaintext included) and its file
    #: count. Checked against the manifest and the disk before a byte is hashed or copied,
    #: so a (sparse) giant file is refused, not read.
    max_cube_file_bytes: int = 1024 * 1024 * 1024
    max_cube_bytes: int = 8 * 1024 * 1024 * 1024
    max_cube_files: int = 100_000


#: How activation blocks may be stored on disk (memvault.activation.quant).
KV_QUANTS = ("fp16", "int8", "int4")
#: The default routing-by-budget threshold (tokens): see ``Settings.chat_all_within``.
CHAT_ALL_WITHIN = 576


@dataclass(frozen=True, slots=True)
class Settings:
    #: Where the vault lives: a SQLite file path (the embedded default).
    path: Path = field(default_factory=lambda: Path.home() / ".memvault" / "vault.db")
    #: A ``postgresql://`` DSN: use PostgreSQL + pgvector instead of the SQLite file.
    store: str | None = None
    #: "minilm" (bundled all-MiniLM-L6-v2), "mpnet" (all-mpnet-base-v2: better recall, ~5x
    #: the compute; weights: requirements/mpnet.txt) or "hash[-dim]" (deterministic fake).
    #: None: the one the vault was created with, and MiniLM for a new vault; so a vault made
    #: with mpnet opens as itself without the caller having to remember.
    embedder: str | None = None
    #: "full" fsyncs every commit (survives power loss); "normal" survives process crashes.
    durability: str = "full"
    #: Context indexed with chat turns: "off", "speaker" or "thread" (speaker + previous turn).
    index_context: str = "thread"
    #: Where the vector-index snapshot is kept; default: next to the store file.
    index_dir: Path | None = None
    #: The reader's LLM spec (see ``memvault.models.get_llm``): None = rule-based reading.
    llm: str | None = None
    #: Memory-injection guard: "on" quarantines writes that try to instruct the agent.
    guard: str = "on"
    #: A-MEM links for each memory as it is written (entity/similar/session). Off by default:
    #: it costs a lexical and a dense search per memory (~40 ms at 5k memories, against
    #: ~8 ms for the add itself); ``memvault scheduler run-once`` links new memories later.
    auto_link: bool = False
    #: Current truth on write: a statement that changes a person's state ("I moved to
    #: Porto") closes the valid time of the earlier one about the same attribute (a new
    #: version with ``invalid_at``, and a ``supersedes`` link; see memvault.temporal).
    supersede: bool = True
    #: How new activation blocks are stored: "fp16", "int8" (~0.52x the bytes) or "int4"
    #: (Hadamard-rotated, ~0.29x); the first token stays fp16 (memvault.activation.quant).
    kv_quant: str = "fp16"
    #: The RAM budget (MiB) KV blocks and LoRA adapters share (memvault.activation.pager).
    pager_budget_mb: int = 512
    #: Routing by budget (tokens; 0: off): when a scope's memories fit in this many tokens,
    #: ``Vault.chat`` with a local model serves all of them from their cached prefix instead
    #: of retrieving (memvault.chat). Default: the largest history ``make bench-routing``
    #: measured (16 turns) where a five-question conversation, its first question paying
    #: the cold prefill of all of it, is no slower than retrieval; a server with many
    #: scopes may want less (each keeps its prefix in the model's chunk cache).
    chat_all_within: int = CHAT_ALL_WITHIN
    #: Blocks composed in any order (a recompute fraction in 0..1; None: off): ``Vault.chat``
    #: with a local model builds the prompt's KV from each retrieved memory's cached chunk
    #: (memvault.activation.compose; a chunk missing is computed once and kept), repairing
    #: that share of the chunk tokens. Off by default: ``make bench-compose`` measures its
    #: replies differing from the full prefill's (README, activation section).
    chat_compose: float | None = None
    limits: Limits = field(default_factory=Limits)
    search: SearchConfig = field(default_factory=SearchConfig)

    def __post_init__(self) -> None:
        if self.kv_quant not in KV_QUANTS:
            raise ConfigurationError(f"kv_quant must be one of {', '.join(KV_QUANTS)}, got "
                                     f"{self.kv_quant!r}", field="kv_quant")
        if isinstance(self.chat_all_within, bool) or not isinstance(self.chat_all_within, int) \
                or not 0 <= self.chat_all_within <= 32_768:
            raise ConfigurationError("chat_all_within must be a whole number of tokens in "
                                     f"0..32768, got {self.chat_all_within!r}",
                                     field="chat_all_within")
        if isinstance(self.pager_budget_mb, bool) or not isinstance(self.pager_budget_mb, int) \
                or not 0 <= self.pager_budget_mb <= 1_048_576:
            raise ConfigurationError("pager_budget_mb must be a whole number of MiB in "
                                     f"0..1048576, got {self.pager_budget_mb!r}",
                                     field="pager_budget_mb")
        if self.chat_compose is not None and (
                isinstance(self.chat_compose, bool)
                or not isinstance(self.chat_compose, (int, float))
                or not 0.0 <= float(self.chat_compose) <= 1.0):
            raise ConfigurationError("chat_compose must be a recompute fraction in 0..1 or "
                                     f"None (off), got {self.chat_compose!r}",
                                     field="chat_compose")

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or self.path.with_name(self.path.name + ".index")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "Settings":
        """Build settings from ``MEMVAULT_*`` variables (``MEMVAULT_PATH``, ``MEMVAULT_STORE``,
        ``MEMVAULT_EMBEDDER``, ``MEMVAULT_DURABILITY``, ``MEMVAULT_INDEX_DIR``, ``MEMVAULT_LLM``,
        ``MEMVAULT_GUARD``, ``MEMVAULT_KV_QUANT``, ``MEMVAULT_PAGER_BUDGET_MB``,
        ``MEMVAULT_CHAT_ALL_WITHIN``, ``MEMVAULT_CHAT_COMPOSE``: a fraction or "off"); explicit
        overrides win. A ``postgresql://`` value given as the path selects that store."""
        values: dict[str, Any] = {}
        for name in ("path", "store", "embedder", "durability", "index_dir", "llm", "guard",
                     "kv_quant", "pager_budget_mb", "chat_all_within", "chat_compose"):
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw:
                values[name] = Path(raw).expanduser() if name in ("path", "index_dir") else raw
        for name, unit in (("pager_budget_mb", "MiB"), ("chat_all_within", "tokens")):
            if name in values:
                try:
                    values[name] = int(values[name])
                except ValueError as exc:
                    raise ConfigurationError(f"MEMVAULT_{name.upper()} must be a whole number "
                                             f"of {unit}, got {values[name]!r}",
                                             field=name) from exc
        if "chat_compose" in values:
            raw = str(values["chat_compose"]).strip().lower()
            try:
                values["chat_compose"] = None if raw == "off" else float(raw)
            except ValueError as exc:
                raise ConfigurationError("MEMVAULT_CHAT_COMPOSE must be a fraction in 0..1 or "
                                         f"'off', got {values['chat_compose']!r}",
                                         field="chat_compose") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "path" in values and str(values["path"]).startswith(("postgresql://", "postgres://")):
            values["store"] = str(values.pop("path"))
        if "path" in values:
            values["path"] = Path(values["path"]).expanduser()
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigurationError(f"bad settings: {exc}") from exc
