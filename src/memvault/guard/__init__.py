"""The injection guard: every write passes it before it is stored.

:mod:`.screen` turns text into an explainable verdict (rules in :mod:`.rules`, the
normalisation that defeats cheap obfuscation in :mod:`.text`); :mod:`.quarantine` turns a
verdict into memory state (a flagged write is stored ``quarantined`` and never served by
search until its owner releases it). It sits below the vault, which calls it on its write
path, and imports nothing above storage.
"""

from .quarantine import guard_for
from .screen import InjectionGuard, Reason, Screen, Verdict

__all__ = ["InjectionGuard", "Reason", "Screen", "Verdict", "guard_for"]
