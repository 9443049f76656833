"""Parametric memory: LoRA adapters distilled from stable memories.

:mod:`.adapters` stores adapters (safetensors + config, atomically replaced);
:mod:`.distill` trains one in a background job; :mod:`.runtime` switches adapters on a
loaded model without reloading it; :mod:`.tier` is the scheduler's parametric tier (one
adapter per scope, re-distilled when its memories change) and the lookup chat uses.
"""

from .adapters import Adapter, AdapterStore, DistilledAdapter
from .tier import AdapterHandle, AdapterTier, adapter_name, default_adapter_store, scope_adapter

__all__ = ["Adapter", "AdapterHandle", "AdapterStore", "AdapterTier", "DistilledAdapter",
           "adapter_name", "default_adapter_store", "scope_adapter"]
