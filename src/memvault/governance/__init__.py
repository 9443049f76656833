"""Governance: who may see and change which memories.

:class:`KeyStore` keeps API keys and the principals they stand for;
:class:`ScopedVault` is the vault as one principal sees it.
"""

from .principals import KeyInfo, KeyStore, PayloadTooLarge, Principal, Unauthorized
from .scope import ScopedVault

__all__ = ["KeyStore", "KeyInfo", "Principal", "ScopedVault", "Unauthorized", "PayloadTooLarge"]
