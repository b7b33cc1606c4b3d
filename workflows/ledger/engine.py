"""The ledger's database: the engine (SQLite pragmas, PostgreSQL pool), migrating under a lock,
ping, sessions, and `Database.run`, the one way ledger work leaves the event loop.

The SQL is SQLAlchemy's (synchronous), so SQLite and PostgreSQL work by URL alone; each unit
of work runs in a worker thread with a session of its own, so no caller of the ledger ever
blocks the event loop nor calls `asyncio.to_thread` itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session

from workflows.metrics import LEDGER_WRITE_RETRIES

T = TypeVar("T")

_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_THREAD_LOCK = threading.Lock()
"""Alembic's `context` is one module-level proxy per process: two threads migrating at once
corrupt each other's (KeyError: 'config')."""
_PG_MIGRATION_LOCK = 7_470_001  # arbitrary constant: serialises concurrent `migrate()` calls


def engine_url(url: str) -> URL:
    """The SQLAlchemy URL of a ledger URL as an operator writes it: `postgresql://` and
    `postgres://` (libpq's spelling, no driver named) mean psycopg 3, the driver Signoff ships;
    SQLAlchemy's own default for them (psycopg2) is not installed."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    parsed = engine_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # WAL lets the API read while the worker writes; foreign processes share the file.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


class LedgerUnavailable(Exception):
    """The ledger's database cannot be reached or used just now (a connection refused or lost,
    a database that takes no connections, SQLite's lock timeout): retrying can succeed. The
    message names the database's host, never its credentials."""


class Database:
    """One ledger database: its engine, and units of work run off the event loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction, committed when the block ends without an error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    async def run(self, work: Callable[[Session], T], *, attempts: int = 1) -> T:
        """`work(session)` in a worker thread, in one transaction. An IntegrityError (a
        concurrent writer committed one of the keys first) rolls back and runs the work again
        in a fresh transaction, up to `attempts` times in all; the last one propagates."""

        def unit() -> T:
            for attempt in range(attempts):
                try:
                    with self.session() as session:
                        return work(session)
                except IntegrityError:
                    if attempt == attempts - 1:
                        raise
                    LEDGER_WRITE_RETRIES.labels("conflict").inc()
                except (OperationalError, InterfaceError) as err:
                    raise LedgerUnavailable(self._unavailable(err)) from err
            raise AssertionError("unreachable")  # pragma: no cover (attempts >= 1)

        return await asyncio.to_thread(unit)

    def _unavailable(self, err: Exception) -> str:
        parsed = engine_url(self.url)
        where = parsed.get_backend_name()
        if parsed.host:
            where += f" at {parsed.host}:{parsed.port or 5432}"
        kind = type(getattr(err, "orig", None) or err).__name__
        return f"the ledger's database ({where}) cannot be used just now ({kind}); retry shortly"

    async def migrate(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (default: the newest migration). Safe to call from
        every process, and from several threads or event loops of one (`signoff dev` runs the
        API and the worker in one process)."""
        await asyncio.to_thread(self._migrate, revision)

    def _migrate(self, revision: str) -> None:
        with _MIGRATION_THREAD_LOCK:
            config = _alembic_config()
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, revision)

    async def schema_revision(self) -> str | None:
        """The migration the database is at (None: an empty database)."""

        def current() -> str | None:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()

        return await asyncio.to_thread(current)

    async def ping(self) -> None:
        def select_one() -> None:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        await asyncio.to_thread(select_one)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None  # the package ships its migrations
    return head
