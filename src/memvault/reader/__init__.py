"""The reader: turning conversations into memories.

* :func:`remember` (also :meth:`memvault.Vault.remember`): fast mode stores turns at once
  and defers reading them to :class:`ExtractionJob`; fine mode extracts facts now.
* :mod:`.extract`: LLM fact extraction with validation and a rule-based fallback.
* :mod:`.decide`: the ADD / UPDATE / DELETE / NOOP decision, exact and near dedup.
* :mod:`.formats`: chat exports (message lists, LoCoMo-like, ChatGPT) for ``memvault ingest``.
"""

from .decide import ACTIONS, DecideConfig, Decider, Decision
from .extract import Extraction, extract
from .facts import FACT_KINDS, Fact, norm_hash, normalize
from .pipeline import MODES, ExtractionJob, RememberResult, read_turns, remember

__all__ = ["remember", "read_turns", "RememberResult", "ExtractionJob", "MODES",
           "Decider", "Decision", "DecideConfig", "ACTIONS", "extract", "Extraction",
           "Fact", "FACT_KINDS", "norm_hash", "normalize"]
