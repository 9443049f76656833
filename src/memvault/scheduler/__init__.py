"""Lifecycle of memories: heat, forgetting, A-MEM links, consolidation, and the scheduler
that runs them and moves hot memory between tiers. Functions take a
:class:`~memvault.Vault`; nothing here keeps its own storage (state lives in the store)."""

from .consolidate import ConsolidateConfig, ConsolidateReport, consolidate
from .forget import ForgetPolicy, ForgetReport, forget, plan_forget
from .heat import HeatConfig, heat, rank_by_heat
from .links import LinkConfig, LinkReport, link_items, link_new
from .placement import PlacementConfig
from .scheduler import RunReport, Scheduler, SchedulerConfig
from .tiers import (ActivationTier, CheckedActivationTier, ManagedParametricTier,
                    ParametricTier)
from .wiring import for_vault

__all__ = [
    "ActivationTier", "CheckedActivationTier", "ManagedParametricTier", "ConsolidateConfig",
    "ConsolidateReport", "ForgetPolicy", "ForgetReport", "HeatConfig", "LinkConfig", "LinkReport", "ParametricTier",
    "PlacementConfig", "RunReport", "Scheduler", "SchedulerConfig", "consolidate", "for_vault",
    "forget", "heat", "link_items", "link_new", "plan_forget", "rank_by_heat",
]
