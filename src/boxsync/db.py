"""The database engine and migrations (SQLAlchemy 2.1 asyncio Core + Alembic).

One `MetaData` for the whole app; each feature declares its tables in its own `tables.py` against
it. Migrations are the only way the schema changes, on SQLite and PostgreSQL alike.

Transactions mean the same on both backends. On SQLite the driver's legacy mode (BEGIN only before
the first INSERT/UPDATE/DELETE) is switched off and SQLAlchemy emits BEGIN itself:

- `engine.begin()`, a unit of work that may write, starts with `BEGIN IMMEDIATE`: it takes SQLite's
  one write lock up front, the way `SELECT … FOR UPDATE` then `UPDATE` serialises on PostgreSQL. A
  deferred transaction that reads and then writes fails with "database is locked" (SQLITE_BUSY, not
  retried by busy_timeout) whenever another connection committed in between.
- a connection used without `begin()` (`engine.connect()`, then statements: reads) starts a deferred
  `BEGIN` at its first statement: one consistent WAL snapshot that does not block the writer.

So: write through `engine.begin()`; `engine.connect()` is for reading.
"""
from __future__ import annotations

import contextvars
import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from boxsync import tenancy

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MIGRATIONS = Path(__file__).parent / "migrations"


class UTCDateTime(sa.TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python, on every backend.

    PostgreSQL keeps the offset; SQLite stores text without one and hands back naive values, which
    would compare and print differently. Values are normalised on the way in and out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


# How the next SQLite transaction begins: IMMEDIATE unless started by a statement (see the docstring).
_sqlite_begin: contextvars.ContextVar[str] = contextvars.ContextVar("sqlite_begin", default="BEGIN IMMEDIATE")


def create_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5) -> AsyncEngine:
    """An engine with at most `pool_size + max_overflow` connections (see config.py and the README)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)
        tenancy.guard(engine)
        return engine
    pool: dict[str, Any] = {}
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        pool = {"pool_size": pool_size, "max_overflow": max_overflow}  # ":memory:" has a single connection
    engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)
    _sqlite_transactions(engine)
    tenancy.guard(engine)
    return engine


def _sqlite_transactions(engine: AsyncEngine) -> None:
    """SQLAlchemy's recipe for real SQLite transactions (docs: "Enabling Non-Legacy SQLite
    Transactional Modes"), with BEGIN IMMEDIATE for `begin()`."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # the driver emits no BEGIN of its own; COMMIT/ROLLBACK still work
        cur = dbapi_conn.cursor()
        # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "before_execute")
    def _autobegin(conn, *_args):  # noqa: ANN001
        # A statement outside a transaction is about to autobegin one: begin it here instead, deferred.
        if conn.get_transaction() is not None:
            return
        token = _sqlite_begin.set("BEGIN")
        try:
            conn.begin()
        finally:
            _sqlite_begin.reset(token)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):  # noqa: ANN001
        # On the DBAPI cursor: a statement through `conn` would re-enter _autobegin, as the
        # transaction is not registered on the connection until this event returns.
        cur = conn.connection.dbapi_connection.cursor()
        try:
            cur.execute(_sqlite_begin.get())
        finally:
            cur.close()


def _alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(sync_conn: sa.Connection, revision: str) -> None:
    from alembic import command

    cfg = _alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`, the newest by default (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


async def current_revision(conn: AsyncConnection) -> str | None:
    def _rev(sync_conn: sa.Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(sync_conn).get_current_revision()

    return await conn.run_sync(_rev)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head
