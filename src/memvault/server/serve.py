"""Running the REST app: :func:`serve` in the foreground (the ``memvault serve`` command),
:class:`BackgroundServer` in a thread of the current process (tests, notebooks)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from typing import Any, Callable

import uvicorn

from ..errors import ConfigurationError
from ..governance import KeyStore
from ..settings import Settings
from ..vault import Vault
from .app import create_app

__all__ = ["serve", "bind", "BackgroundServer"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port), or ConfigurationError
    with the reason (address in use, not allowed, unknown host): bind before announcing."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}",
                                 host=host, port=port) from None
    family, kind, proto, _, address = infos[0]
    # proto=IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigurationError(f"cannot listen on {host}:{port}: {reason.lower()}",
                                 host=host, port=port, errno=exc.errno) from None
    return sock


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8765, *,
          threads: int = 8, max_body_bytes: int = 1_048_576, log_level: str = "info",
          access_log: bool = False, llm_api_key: str | None = None,
          llm_timeout: float = 60.0, scheduler_interval: float | None = None,
          proxy_to: str | None = None, sock: socket.socket | None = None,
          ready: Callable[[], None] | None = None) -> None:
    """Open the vault at ``settings.path`` and serve it until SIGINT/SIGTERM.

    ``sock`` is a socket from :func:`bind` (default: bound here, before the vault is
    opened); ``ready()`` runs once the vault is open and the socket listens, just before
    requests are served, so a caller announces only what is true.

    ``settings.llm`` is the model of ``/v1/chat`` and fine ``/v1/remember`` (none: those
    answer ``model_unavailable``); a local model loads on the first such request, an HTTP
    endpoint (``llm_api_key``, ``llm_timeout``) is set up now. In-flight requests finish
    before the vault is closed (and its index snapshot saved).

    ``scheduler_interval`` (seconds) runs the scheduler in this process (forget, links,
    consolidation, heat; with the local model also activation blocks and adapters).

    ``proxy_to`` (an OpenAI-compatible base URL) is where ``/v1/chat/completions``
    forwards, authenticated with ``llm_api_key`` (see :mod:`memvault.server.proxy`).
    """
    if sock is None:
        sock = bind(host, port)
    try:
        _run(settings, host, port, sock, ready, threads=threads, max_body_bytes=max_body_bytes,
             log_level=log_level, access_log=access_log, llm_api_key=llm_api_key,
             llm_timeout=llm_timeout, scheduler_interval=scheduler_interval,
             proxy_to=proxy_to)
    finally:
        sock.close()


def _run(settings: Settings, host: str, port: int, sock: socket.socket,
         ready: Callable[[], None] | None, *, threads: int, max_body_bytes: int,
         log_level: str, access_log: bool, llm_api_key: str | None, llm_timeout: float,
         scheduler_interval: float | None, proxy_to: str | None) -> None:
    llm: Any = None
    spec = settings.llm or ""
    if spec.partition(":")[0] in ("openai", "ollama"):
        from ..models import get_llm

        llm = get_llm(spec, api_key=llm_api_key, timeout=llm_timeout)
    vault = Vault(settings=settings)
    try:
        keys = KeyStore.for_vault(vault)  # the vault's own store holds keys and grants
    except BaseException:
        vault.close()
        raise
    scheduler = None
    if scheduler_interval:
        from ..scheduler import SchedulerConfig
        from ..scheduler.wiring import for_vault

        tier_llm = llm
        if spec and llm is None:  # a local model: the tiers need it in this process
            from ..models import get_llm

            tier_llm = get_llm(spec)
        scheduler = for_vault(vault, tier_llm, SchedulerConfig(interval=scheduler_interval))
        scheduler.start(vault)
    previous = _stop_on_sigterm()
    try:
        from .proxy import ProxyConfig

        vault.prepare()  # index and guard now, before the port is announced
        proxy = ProxyConfig(proxy_to, api_key=llm_api_key, timeout=llm_timeout)
        app = create_app(vault, keys, max_body_bytes=max_body_bytes, threads=threads, llm=llm,
                         proxy=proxy)
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                access_log=access_log, lifespan="on")
        if ready is not None:
            ready()
        uvicorn.Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass  # uvicorn re-raises the signal it shut down for, once it has shut down
    finally:
        if scheduler is not None:
            scheduler.stop()
        keys.close()
        vault.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Stopped(Exception):
    pass


def _stop_on_sigterm() -> Any:
    """Make SIGTERM an exception (not instant death) so the vault gets closed."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise _Stopped()
    return signal.signal(signal.SIGTERM, handler)


class BackgroundServer:
    """uvicorn serving ``app`` from a daemon thread on a socket bound before it starts.

    ``port=0`` picks a free port; ``url`` is known as soon as the object exists. Use as a
    context manager, or call ``start()`` / ``stop()``. The caller owns what the app serves.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 log_level: str = "warning") -> None:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only
        # when the listening socket says it is TCP; without it Nagle's algorithm and
        # delayed ACKs add ~40 ms to every keep-alive request.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        name=f"memvault-server-{self.port}", daemon=True)

    def start(self, timeout: float = 10.0) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigurationError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
