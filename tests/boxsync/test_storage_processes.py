"""Several processes on one database: migrations take turns under one lock, so every container may
run `boxsync migrate` and start serving at once."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from boxsync import db
from boxsync.app import prepare_database
from tests.boxsync.storagekit import fresh_database_url  # noqa: F401  (fixture)
from tests.support.servers import bind_loopback

BOXSYNC = Path(sys.executable).parent / "boxsync"  # the console script, as a container runs it
STARTUP = 180  # seconds; a loaded two-core machine starting eight interpreters is slow, never wrong


def _free_port() -> int:
    sock = bind_loopback()
    try:
        return sock.getsockname()[1]
    finally:
        sock.close()


def _healthy(port: int, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def test_four_migrations_and_four_servers_start_together_on_a_new_database(fresh_database_url, tmp_path):
    """As four containers each running `boxsync migrate && boxsync serve` (plus four more) would:
    every migrate succeeds and every server becomes healthy. PostgreSQL serialises them with an
    advisory lock; SQLite (one process by design, but several migrations) with its write lock."""
    servers = 4 if "postgresql" in fresh_database_url else 1
    env = {**os.environ, "BOXSYNC_DATABASE_URL": fresh_database_url, "BOXSYNC_SECRET_KEY": "B" * 43,
           "BOXSYNC_DB_POOL_SIZE": "2", "BOXSYNC_DB_MAX_OVERFLOW": "0"}
    procs: list[tuple[str, int | None, subprocess.Popen]] = []
    try:
        for _ in range(4):
            procs.append(("migrate", None, subprocess.Popen([str(BOXSYNC), "migrate"], env=env, cwd=tmp_path,
                                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        for _ in range(servers):
            port = _free_port()
            procs.append(("serve", port, subprocess.Popen(
                [str(BOXSYNC), "serve", "--port", str(port)], cwd=tmp_path,
                env={**env, "BOXSYNC_BASE_URL": f"http://127.0.0.1:{port}"},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        for kind, port, proc in procs:
            if kind == "migrate":
                output = proc.communicate(timeout=STARTUP)[0]
                assert proc.returncode == 0 and "database is up to date" in output, output[-3000:]
        for kind, port, proc in procs:
            if kind == "serve":
                assert _healthy(port, proc), f"boxsync serve on {port} did not become healthy"
    finally:
        outputs = []
        for kind, _port, proc in procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                outputs.append(proc.communicate(timeout=30)[0] or "")
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs.append(proc.communicate()[0] or "")
    assert not [o for o in outputs if "Traceback" in o], "\n---\n".join(o[-3000:] for o in outputs if "Traceback" in o)


async def test_migrations_wait_for_the_migration_lock(fresh_database_url):
    """Deterministically what the test above shows by racing: while one migrator holds the lock,
    `boxsync migrate` and the app's start on a new database both wait for it, then find the work
    done. (PostgreSQL's advisory lock; on SQLite the write lock plays that part.)"""
    if "postgresql" not in fresh_database_url:
        pytest.skip("advisory locks are PostgreSQL's; SQLite serialises migrations with BEGIN IMMEDIATE")
    holder, engine = db.create_engine(fresh_database_url), db.create_engine(fresh_database_url)
    try:
        async with holder.begin() as conn:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(db.MIGRATION_LOCK)))
            waiting = [asyncio.create_task(db.migrate(engine)), asyncio.create_task(prepare_database(engine))]
            deadline = time.monotonic() + STARTUP
            while True:  # until both wait on the lock (pg_locks shows them), or one finished without it
                assert time.monotonic() < deadline, "the migrations neither finished nor waited for the lock"
                done = [t for t in waiting if t.done()]
                assert not done, f"migrated without waiting for the lock: {[t.result() for t in done]}"
                blocked = (await conn.execute(sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))).scalar_one()
                if blocked == 2:
                    break
                await asyncio.sleep(0.05)
            assert (await db.schema_status(holder)).state == "new"
        migrated, _ = await asyncio.gather(*waiting)
        assert migrated.state == "current" and (await db.schema_status(engine)).state == "current"
    finally:
        await holder.dispose()
        await engine.dispose()
