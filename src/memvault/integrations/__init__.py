"""memvault where agents already live: adapters that put a vault behind other ecosystems'
interfaces.

* :mod:`memvault.integrations.langgraph`: ``MemvaultStore`` (LangGraph's long-term memory
  ``BaseStore``) and ``MemvaultSaver`` (a ``BaseCheckpointSaver`` for a thread's
  short-term state). Needs ``pip install 'memvault[langgraph]'``.
* The OpenAI-compatible memory proxy is a route of the REST server
  (:mod:`memvault.server.proxy`, ``memvault serve --proxy-to URL``).

These modules receive a vault (anything implementing :class:`memvault.VaultAPI`: a
:class:`~memvault.Vault`, a principal's ``ScopedVault`` or a ``RemoteVault``) and use only
its public methods; the vault never imports them. Nothing here is imported by
``import memvault``, so the optional dependencies stay optional.
"""

__all__: list[str] = []
