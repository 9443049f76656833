"""Activation memory: precomputed KV caches of memory text, for one model.

:mod:`.blocks` keeps blocks on disk (fp16 safetensors keyed by model fingerprint and
content, checked for staleness against the store when used); :mod:`.tier` is the
scheduler's activation tier and the scope block that :func:`memvault.chat.chat` injects
as the generation ``cache``, so that block is not prefilled again.
"""

from .blocks import ActivationBlock, ActivationStore, LoadedBlock, build_block, stale_ids
from .tier import ActivationTierEngine, default_activation_store

__all__ = ["ActivationBlock", "ActivationStore", "ActivationTierEngine", "LoadedBlock",
           "build_block", "default_activation_store", "stale_ids"]
