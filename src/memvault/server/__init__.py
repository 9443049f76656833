"""The REST server.

* :func:`memvault.server.app.create_app` — the ASGI app over a Vault and a KeyStore;
* :func:`memvault.server.serve.serve` — run it with uvicorn (``memvault serve``);
* :class:`memvault.server.serve.BackgroundServer` — run it in a thread (tests, notebooks);
* :mod:`memvault.server.commands` — the ``serve`` and ``keys`` CLI commands.

Nothing is imported here, so the CLI commands cost nothing (and need neither fastapi nor
uvicorn) until ``serve`` runs. The remote client (:mod:`memvault.client`) needs only httpx.
"""
