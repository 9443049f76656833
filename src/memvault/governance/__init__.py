"""Governance: who may see and change which memories, and the record of who did.

:class:`KeyStore` keeps API keys and the principals they stand for, :class:`GrantStore`
the grants by which owners share memories (one item, a cube, or everything; read or
write; with redacted fields; valid from/to) and team memberships, all in the vault's own
record store, each change in one transaction with its audit row. :class:`Policy`
(``acl.py``) decides at read time, from a memory's immutable scope and the grants valid at
that moment, whether a principal may see or change it; :class:`ScopedVault` is the vault
as one principal sees it, acting (and audited) as that principal. The rules are in
``docs/governance.md``.
"""

from .principals import KeyInfo, KeyStore, PayloadTooLarge, Principal, Unauthorized
from .acl import Access, Grant, Policy
from .grants import GrantStore
from .scope import ScopedVault

__all__ = ["KeyStore", "KeyInfo", "Principal", "ScopedVault", "Unauthorized", "PayloadTooLarge",
           "Grant", "GrantStore", "Policy", "Access"]
