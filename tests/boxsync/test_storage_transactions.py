"""A transaction means the same on SQLite as on PostgreSQL: it starts at begin(), units of work that
read and then write take turns instead of losing updates or failing with "database is locked", and
a reader sees one snapshot while writers commit beside it."""
from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from boxsync import db
from boxsync.connect.tables import tenants
from boxsync.connect.tenants import now


async def _tenant(engine, client_key: str, counter: str = "0") -> int:
    async with engine.begin() as conn:
        return (await conn.execute(tenants.insert().values(
            client_key=client_key, base_url="https://x.atlassian.net", product_type="jira", shared_secret="enc",
            server_version=counter, installed=True, enabled=True, installed_at=now(), updated_at=now(),
        ))).inserted_primary_key[0]


async def test_read_then_write_units_take_turns(database_url):
    """Each unit reads a counter (FOR UPDATE, as PostgreSQL needs), yields to the others, writes it
    back plus one. Before, SQLite read outside any transaction and lost updates; a deferred BEGIN
    would fail the second writer with "database is locked" when it upgrades its read lock."""
    engine = db.create_engine(database_url)
    try:
        tid = await _tenant(engine, "counter")

        async def increment() -> None:
            async with engine.begin() as conn:
                value = (await conn.execute(sa.select(tenants.c.server_version)
                                            .where(tenants.c.id == tid).with_for_update())).scalar_one()
                await asyncio.sleep(0.05)  # let the other units run into the same row meanwhile
                await conn.execute(tenants.update().where(tenants.c.id == tid)
                                   .values(server_version=str(int(value) + 1)))

        await asyncio.gather(*(increment() for _ in range(4)))
        async with engine.connect() as conn:
            final = (await conn.execute(sa.select(tenants.c.server_version).where(tenants.c.id == tid))).scalar_one()
        assert final == "4"
    finally:
        await engine.dispose()


async def test_a_reader_sees_one_snapshot_while_a_writer_commits(database_url):
    """Two reads in one transaction agree although another connection commits between them, and
    that writer is not held up by the reader. SQLite gives every transaction a snapshot (WAL);
    PostgreSQL gives one to a REPEATABLE READ transaction (its default, READ COMMITTED, takes a
    fresh snapshot per statement by design)."""
    engine = db.create_engine(database_url)
    try:
        tid = await _tenant(engine, "snapshot", counter="before")
        reader = engine.connect()
        async with reader as conn:
            if conn.dialect.name == "postgresql":
                await conn.execution_options(isolation_level="REPEATABLE READ")
            query = sa.select(tenants.c.server_version).where(tenants.c.id == tid)
            first = (await conn.execute(query)).scalar_one()

            async with engine.begin() as writer:  # would wait for the reader if reads took the write lock
                await writer.execute(tenants.update().where(tenants.c.id == tid).values(server_version="after"))

            second = (await conn.execute(query)).scalar_one()
            assert conn.in_transaction()
        assert (first, second) == ("before", "before")
        async with engine.connect() as conn:
            assert (await conn.execute(query)).scalar_one() == "after"  # a new transaction sees the commit
    finally:
        await engine.dispose()


async def test_a_failed_unit_of_work_leaves_nothing_behind(database_url):
    """Everything since begin() is undone, reads and writes alike, on both backends."""
    engine = db.create_engine(database_url)
    try:
        with pytest.raises(RuntimeError, match="midway"):
            async with engine.begin() as conn:
                await conn.execute(tenants.insert().values(
                    client_key="half", base_url="https://x.atlassian.net", product_type="jira", shared_secret="e",
                    installed=True, enabled=True, installed_at=now(), updated_at=now()))
                await conn.execute(sa.text("CREATE TABLE scratch (x INTEGER)"))
                raise RuntimeError("midway")
        async with engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(tenants))).scalar_one() == 0
            assert "scratch" not in await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await engine.dispose()
