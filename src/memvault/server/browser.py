"""The web memory browser: static files under ``/ui/`` that call the REST API.

The page (``static/index.html``, ``app.js``, ``app.css``; no build step, nothing fetched
from elsewhere) asks for an API key, keeps it in ``sessionStorage`` and talks to ``/v1``
with it like any other client, so it can do exactly what that key may do and no more.
The server side is only this: serve the files and send ``/`` to ``/ui/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["mount_browser", "STATIC_DIR"]

STATIC_DIR = Path(__file__).with_name("static")

#: Sent with every page and file: the page loads only its own files and talks only to
#: its own origin, so hostile memory text could not pull in or run anything even if it
#: ever reached the DOM as markup.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Static(StaticFiles):
    async def get_response(self, path, scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        for key, value in _HEADERS.items():
            response.headers.setdefault(key, value)
        return response


def mount_browser(app: FastAPI) -> None:
    """Serve the memory browser at ``/ui/`` and redirect ``/`` to it."""
    app.mount("/ui", _Static(directory=STATIC_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)
