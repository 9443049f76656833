"""``for_vault``: a scheduler wired to the real memory tiers of one vault.

The tiers must write exactly where :meth:`memvault.Vault.chat` reads, or promotion and
distillation happen for nobody: blocks go to the vault's activation store
(:func:`~memvault.chat.default_activation_store`, ``<db>.activation/``) under the names
chat looks up, adapters to ``<db>.adapters/`` under
:func:`~memvault.parametric.tier.adapter_name`, and each block is computed under the
adapter chat will switch on for that scope. Both tiers need the model's weights, so they
are attached for a :class:`~memvault.models.local.LocalLLM` only; with another LLM (or
none) the scheduler still runs heat, forgetting, links and consolidation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models.llm import LLM
from .scheduler import Scheduler, SchedulerConfig

if TYPE_CHECKING:
    from ..vault import Vault

__all__ = ["for_vault"]


def for_vault(vault: "Vault", llm: LLM | None = None, config: SchedulerConfig | None = None,
              **distill_options: Any) -> Scheduler:
    """A :class:`Scheduler` for ``vault``; ``llm`` also summarises (consolidation).

    ``distill_options`` (``steps``, ``lr``, ``rank``, ...) go to every distillation the
    scheduler queues; distillation runs in background threads (``run_once(wait=True)``
    waits for it)."""
    from ..activation.pager import vault_pager
    from ..chat import ActivationTierEngine, default_activation_store, default_adapter_store
    from ..parametric.tier import AdapterTier
    from ..models.local import LocalLLM

    activation = parametric = None
    if isinstance(llm, LocalLLM):
        adapters = default_adapter_store(vault, pager=vault_pager(vault))
        blocks = default_activation_store(vault)
        if adapters is not None:
            parametric = AdapterTier(adapters, llm, vault=vault, **distill_options)
        if blocks is not None:
            activation = ActivationTierEngine(llm, blocks, adapters=adapters)
    return Scheduler(config, activation=activation, parametric=parametric, llm=llm)
