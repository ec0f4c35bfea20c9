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

import contextlib
import contextvars
import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from boxsync import tenancy

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("boxsync.db")

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

# Which schema this database is at, and the oldest code that can run against it (see `migrate`).
# Written by every migration run, in the transaction that moves alembic_version.
schema_compat = sa.Table(
    "schema_compat",
    metadata,
    sa.Column("revision", sa.String(32), primary_key=True),
    sa.Column("min_code_revision", sa.String(32), nullable=False),
    info={"tenant_owned": False},
)

# The counter that hands each process its node number for new_id (one row, created by migration 0003).
id_nodes = sa.Table(
    "id_nodes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("next_node", sa.BigInteger, nullable=False),
    info={"tenant_owned": False},
)

# Every BoxSync process takes this PostgreSQL advisory lock to migrate ("boxsync" read as a number).
MIGRATION_LOCK = int.from_bytes(b"boxsync", "big")


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


# -- row ids ---------------------------------------------------------------------------------------

_ID_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_NODE_BITS = 10  # 1,024 process numbers, handed out in turn by claim_id_node
_SEQUENCE_BITS = 12  # 4,096 ids per millisecond per process
_id_lock = threading.Lock()
_id_node = 0
_last_ms = -1
_sequence = 0


def new_id() -> int:
    """An id for a row of a tenant-owned table, made by the application.

    Tenant-owned tables are keyed by (tenant_id, id). SQLite only generates ids for a lone INTEGER
    PRIMARY KEY, never for a column of a composite key, and a per-backend scheme (a sequence on
    PostgreSQL, something else on SQLite) would give the two backends different ids and code paths.
    So the id is made here, Snowflake-style: milliseconds since 2024 in the high 41 bits (good until
    2093), then this process's node number (10 bits, from `claim_id_node`), then a per-millisecond
    sequence (12 bits). Ids sort in insertion order like the SERIAL ids they replace (older rows keep
    their small ids), never repeat within a process (a clock that steps back is ignored; a full
    millisecond borrows the next one), and never collide between processes, whose node numbers
    differ unless 1,024 processes started in between. Positive and below 2**63: a BIGINT everywhere.
    """
    global _last_ms, _sequence
    with _id_lock:
        now_ms = time.time_ns() // 1_000_000 - _ID_EPOCH_MS
        if now_ms > _last_ms:
            _last_ms, _sequence = now_ms, 0
        else:
            _sequence += 1
            if _sequence >> _SEQUENCE_BITS:
                _last_ms, _sequence = _last_ms + 1, 0
        return (_last_ms << (_NODE_BITS + _SEQUENCE_BITS)) | (_id_node << _SEQUENCE_BITS) | _sequence


async def claim_id_node(engine: AsyncEngine) -> int:
    """Give this process the next node number for `new_id`, from a counter row in the database.

    Called once at startup by every process that writes tenant-owned rows. A process that never
    claims (a one-off script, a test) keeps node 0, which is safe while it is the only writer.
    """
    global _id_node
    async with engine.begin() as conn:
        # The row is made by migration 0003; put it back if someone emptied the table.
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(dialect.insert(id_nodes).values(id=1, next_node=0)
                           .on_conflict_do_nothing(index_elements=[id_nodes.c.id]))
        await conn.execute(id_nodes.update().values(next_node=id_nodes.c.next_node + 1))
        claimed = (await conn.execute(sa.select(id_nodes.c.next_node))).scalar_one() - 1
    with _id_lock:
        _id_node = claimed % (1 << _NODE_BITS)
    return _id_node


# -- engines ---------------------------------------------------------------------------------------

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


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


# -- migrations ------------------------------------------------------------------------------------

class SchemaMismatch(RuntimeError):
    """The database's schema cannot be used by this code; the message says what to do."""


class MigrationError(RuntimeError):
    """A migration left the database inconsistent; it was rolled back."""


@dataclass(frozen=True)
class SchemaStatus:
    """What the database's schema means for this code.

    state: "new" (no schema yet), "current" (at this code's head), "behind" (an older revision this
    code knows: run `boxsync migrate`), "ahead" (a newer revision whose migrations declare this code
    able to run against it: a rolling deploy), "incompatible" (newer, and not usable by this code).
    """

    state: str
    revision: str | None
    head: str
    message: str

    @property
    def usable(self) -> bool:
        return self.state in ("current", "ahead")


def alembic_config(*extra_versions: Path) -> Config:
    """Alembic's configuration; `extra_versions` adds directories of further revisions (tests use it
    to play a newer release)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if extra_versions:
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("version_locations",
                            os.pathsep.join(str(p) for p in (MIGRATIONS / "versions", *extra_versions)))
    return cfg


def head_revision(config: Config | None = None) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(config or alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(conn: AsyncConnection) -> str | None:
    def _rev(sync_conn: sa.Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(sync_conn).get_current_revision()

    return await conn.run_sync(_rev)


async def schema_status(engine: AsyncEngine, *, config: Config | None = None) -> SchemaStatus:
    async with engine.connect() as conn:
        return await conn.run_sync(_status, config or alembic_config())


async def migrate(engine: AsyncEngine, revision: str = "head", *, only_new: bool = False,
                  config: Config | None = None) -> SchemaStatus:
    """Bring the schema to `revision` (the newest by default); idempotent and safe to run from
    several processes at once. `only_new` migrates a database that has no schema yet and leaves an
    older one alone (the app's start). A database ahead of this code is left as it is when its
    migrations declare this code compatible, refused (SchemaMismatch) otherwise."""
    cfg = config or alembic_config()
    async with _migrating(engine) as conn:
        return await conn.run_sync(_migrate_locked, cfg, revision, only_new)


async def downgrade(engine: AsyncEngine, revision: str, *, config: Config | None = None) -> SchemaStatus:
    cfg = config or alembic_config()
    async with _migrating(engine) as conn:
        await conn.run_sync(_run, cfg, "downgrade", revision)
        return await conn.run_sync(_status, cfg)


@contextlib.asynccontextmanager
async def _migrating(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that one migrator at a time holds.

    PostgreSQL: a transaction-level advisory lock taken before anything is read, so processes that
    start together on a new database take turns, each re-reading the revision its predecessor left.
    SQLite: BEGIN IMMEDIATE (the write lock) does the same. Foreign keys are off meanwhile, since
    batch migrations rebuild a table by DROP TABLE + rename, and dropping `tenants` with foreign
    keys on would cascade into every tenant-owned table; they are checked before commit instead.
    """
    async with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            async with conn.begin():
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
                yield conn
            return
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before BEGIN
        try:
            async with conn.begin():
                yield conn
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    rows = "; ".join(f"{r[0]} rowid {r[1]} -> {r[2]}" for r in broken[:5])
                    raise MigrationError(f"migration rolled back: {len(broken)} rows break foreign keys ({rows})")
        finally:
            try:
                await driver.execute("PRAGMA foreign_keys=ON")
            except BaseException:
                await conn.invalidate()  # never back to the pool with foreign keys off
                raise


def _migrate_locked(sync_conn: sa.Connection, cfg: Config, revision: str, only_new: bool) -> SchemaStatus:
    status = _status(sync_conn, cfg)
    if status.state == "incompatible":
        raise SchemaMismatch(status.message)
    if status.state == "new" or (status.state == "behind" and not only_new):
        _run(sync_conn, cfg, "upgrade", revision)
        status = _status(sync_conn, cfg)
    return status


def _run(sync_conn: sa.Connection, cfg: Config, command_name: str, revision: str) -> None:
    from alembic import command

    cfg.attributes["connection"] = sync_conn
    getattr(command, command_name)(cfg, revision)
    _record_compat(sync_conn, cfg)


def _record_compat(sync_conn: sa.Connection, cfg: Config) -> None:
    """Write which code can run against the schema now in place, beside alembic_version.

    Each migration may declare `min_code_revision`, the oldest release head that still works with
    the schema it produces (an additive migration names its predecessor); undeclared means "only
    this revision". An older release cannot know newer migration files; it reads this row instead.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    revision = MigrationContext.configure(sync_conn).get_current_revision()
    if revision is None or not sa.inspect(sync_conn).has_table(schema_compat.name):
        return  # at base, or below the revision that created the table
    scripts = ScriptDirectory.from_config(cfg)
    oldest = getattr(scripts.get_revision(revision).module, "min_code_revision", revision)
    if oldest not in {s.revision for s in scripts.iterate_revisions(revision, "base")}:
        raise MigrationError(f"revision {revision} declares min_code_revision {oldest!r}, "
                             "which is not itself or one of its ancestors")
    sync_conn.execute(schema_compat.delete())
    sync_conn.execute(schema_compat.insert().values(revision=revision, min_code_revision=oldest))


def _status(sync_conn: sa.Connection, cfg: Config) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(cfg)
    head = scripts.get_current_head()
    assert head is not None
    revision = MigrationContext.configure(sync_conn).get_current_revision()
    if revision is None:
        return SchemaStatus("new", None, head, "the database has no schema yet")
    if revision == head:
        return SchemaStatus("current", revision, head, f"database schema is at revision {head}")
    known = {s.revision for s in scripts.walk_revisions()}
    if revision in known:
        return SchemaStatus("behind", revision, head, f"database schema is at revision {revision}, this "
                            f"release needs {head}: run `boxsync migrate` first")
    oldest = None
    if sa.inspect(sync_conn).has_table(schema_compat.name):
        oldest = sync_conn.execute(sa.select(schema_compat.c.min_code_revision)
                                   .where(schema_compat.c.revision == revision)).scalar()
    newer = f"database schema is at revision {revision}, newer than this release's {head}"
    if oldest in known:
        return SchemaStatus("ahead", revision, head, f"{newer}; its migrations declare code from revision "
                            f"{oldest} on compatible, so this release runs against it (a rolling deploy)")
    needs = f"it needs code from revision {oldest} on" if oldest else "it records no compatible older code"
    return SchemaStatus("incompatible", revision, head, f"{newer} and not usable by it ({needs}): "
                        "deploy the release that migrated it")
