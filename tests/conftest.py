"""Shared fixtures: real databases (SQLite and PostgreSQL) and real servers on loopback.

Every storage test runs twice, once per backend (`database_url` is parametrised). PostgreSQL is
the CI machine's server on 127.0.0.1:5432 (override with BOXSYNC_TEST_POSTGRES_URL); each test
session gets a database of its own, dropped at the end. With CI set (any non-empty value) an
unreachable PostgreSQL fails the run instead of skipping (tests/support/ci.py).
"""
from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from boxsync import db
from boxsync.tables import metadata
from tests.support.ci import unavailable

POSTGRES_ADMIN_URL = os.environ.get("BOXSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# The reference data lives beside the repository (../shared), never inside it.
SHARED = Path(os.environ.get("BOXSYNC_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")


def _run(coro):
    return asyncio.run(coro)


async def _create_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    engine = db.create_engine(url)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()


async def _truncate(url: str) -> None:
    # Clean-up spans every tenant by nature; tenancy's guard needs to be told so.
    base = db.create_engine(url)
    try:
        async with base.execution_options(cross_tenant=True).begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    finally:
        await base.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_database(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite')}/boxsync.db"
        _run(_migrate(url))
        yield url
        return
    name = f"boxsync_test_{uuid.uuid4().hex[:12]}"
    try:
        _run(_create_pg_database(name))
    except Exception as exc:  # connection refused, auth, timeout
        unavailable(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}: {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    _run(_migrate(url))
    yield url
    _run(_drop_pg_database(name))


@pytest.fixture
def database_url(migrated_database):
    """A migrated, empty database (SQLite or PostgreSQL) for one test."""
    _run(_truncate(migrated_database))
    return migrated_database


@pytest.fixture
async def engine(database_url):
    """An engine on the test's loop, for reading what the app wrote: an inspector that sees every
    tenant (tenancy's guard is told so), never used to exercise the app's own queries."""
    base = db.create_engine(database_url)
    yield base.execution_options(cross_tenant=True)
    await base.dispose()


async def count_rows(engine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.exists(), f"shared reference data not found at {SHARED}"
    return SHARED
