"""Restarts and several processes: a new release flags every Box and only opened Boxes sync; two
app processes on one PostgreSQL run one Box's sync once; a crashed process's run is taken over."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from boxsync.app import create_app
from boxsync.boxes.tables import boxes
from jirasim.simulator import Simulator
from tests.boxsync.boxkit import ALICE, World, install, settings_for
from tests.boxsync.connectkit import SECRET_KEY
from tests.support.servers import bind_loopback, serve

BOXSYNC = Path(sys.executable).parent / "boxsync"


def test_a_new_release_flags_every_box_and_only_opened_boxes_sync(database_url):
    sim = Simulator(seed=3)
    with serve(lambda url: sim.add_site("a", url, issues=40, projects=["ALPHA", "BETA"])) as site:
        with serve(lambda url: create_app(settings_for(url, site, database_url, release="1.0"))) as app:
            install(site, app)
            w = World(sim=sim, site=site, app=app, database_url=database_url)
            first = w.create_box(name="A")
            second = w.create_box(name="B", scope={"projects": ["BETA"]})
            runs = {b["id"]: w.sync(b["id"])["runId"] for b in (first, second)}
        # The same release restarting flags nothing; a new one flags every Box.
        with serve(lambda url: create_app(settings_for(url, site, database_url, release="1.0",
                                                                 sync_fresh_seconds=300))) as app:
            w = World(sim=sim, site=site, app=app, database_url=database_url)
            opened = w.api("POST", f"/api/boxes/{first['id']}/sync", json={"trigger": "open"}).json()
            assert opened["runId"] == runs[first["id"]]  # fresh and not flagged: no new run on opening
        with serve(lambda url: create_app(settings_for(url, site, database_url, release="1.1",
                                                                 sync_fresh_seconds=300))) as app:
            w = World(sim=sim, site=site, app=app, database_url=database_url)
            flagged = _flags(database_url)
            assert flagged == {first["id"]: True, second["id"]: True}
            w.reset_counters()
            time.sleep(1.0)  # nothing syncs by itself after the start
            assert w.calls("bulkFetchIssues") == 0 and w.calls("searchAndReconsileIssuesUsingJqlPost") == 0
            assert w.api("POST", f"/api/boxes/{first['id']}/sync", json={"trigger": "open"}).status_code == 202
            status = w.wait(first["id"])
            assert status["state"] == "done" and status["runId"] != runs[first["id"]]
            alpha = len(sim.site("a").by_project[sim.site("a").project_by_key("ALPHA").id])
            assert status["counts"]["read"] == alpha  # a full re-read, not only the changed issues
            assert status["counts"]["changed"] == 0  # ...which finds nothing changed: stored rows compare equal
            assert w.api("GET", f"/api/boxes/{second['id']}/sync").json()["runId"] == runs[second["id"]]
            assert _flags(database_url) == {first["id"]: False, second["id"]: True}


def _flags(database_url: str) -> dict[str, bool]:
    import asyncio

    from boxsync import db

    async def read() -> dict[str, bool]:
        engine = db.create_engine(database_url)
        try:
            async with engine.execution_options(cross_tenant=True).connect() as conn:
                rows = (await conn.execute(sa.select(boxes.c.id, boxes.c.needs_full_sync))).all()
        finally:
            await engine.dispose()
        return {str(i): bool(f) for i, f in rows}

    return asyncio.run(read())


# -- several processes ------------------------------------------------------------------------------

def _port() -> int:
    sock = bind_loopback()
    try:
        return sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def _processes(database_url: str, site: str, count: int, **env_extra: str):
    """`count` BoxSync processes (`boxsync serve`) on one database, each its own base URL."""
    import base64

    procs = []
    try:
        for _ in range(count):
            port = _port()
            env = {**os.environ, "BOXSYNC_DATABASE_URL": database_url,
                   "BOXSYNC_SECRET_KEY": base64.urlsafe_b64encode(SECRET_KEY).decode().rstrip("="),
                   "BOXSYNC_BASE_URL": f"http://127.0.0.1:{port}", "BOXSYNC_INSTALL_KEYS_URL": f"{site}/_jirasim/install-keys",
                   "BOXSYNC_OAUTH_URL": site, "BOXSYNC_SYNC_FRESH_SECONDS": "0", **env_extra}
            proc = subprocess.Popen([str(BOXSYNC), "serve", "--port", str(port), "--no-access-log"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append((f"http://127.0.0.1:{port}", proc))
        for url, proc in procs:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, "boxsync serve exited"
                try:
                    if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.2)
        yield procs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _postgresql_only(database_url: str) -> None:
    if "postgresql" not in database_url:
        pytest.skip("several processes share PostgreSQL; SQLite is one process by design")


def test_two_processes_on_one_postgresql_run_one_sync_of_a_box(database_url):
    _postgresql_only(database_url)
    sim = Simulator(seed=5)
    with serve(lambda url: sim.add_site("a", url, issues=300, projects=["ALPHA"])) as site:
        with _processes(database_url, site, 2) as procs:
            (one, _), (two, _) = procs
            install(site, one)
            a = World(sim=sim, site=site, app=one, database_url=database_url)
            b = World(sim=sim, site=site, app=two, database_url=database_url)
            box = a.create_box()
            httpx.post(f"{site}/_jirasim/faults", json={"kind": "latency", "seconds": 0.2, "endpoint": "bulkFetchIssues"})
            a.reset_counters()
            first = a.api("POST", f"/api/boxes/{box['id']}/sync")
            second = b.api("POST", f"/api/boxes/{box['id']}/sync", as_=ALICE)
            assert first.status_code == second.status_code == 202, (first.text, second.text)
            assert first.json()["runId"] == second.json()["runId"]
            assert b.wait(box["id"])["state"] == "done"
            assert a.calls("bulkFetchIssues") == 3  # 300 issues, read once: by one process
            assert len(b.wbs(box["id"])["nodes"]) == 300


def test_a_crashed_process_run_is_taken_over(database_url):
    _postgresql_only(database_url)
    sim = Simulator(seed=6)
    with serve(lambda url: sim.add_site("a", url, issues=200, projects=["ALPHA"])) as site:
        with _processes(database_url, site, 2, BOXSYNC_SYNC_LEASE_SECONDS="3") as procs:
            (one, proc_one), (two, _) = procs
            install(site, one)
            a = World(sim=sim, site=site, app=one, database_url=database_url)
            b = World(sim=sim, site=site, app=two, database_url=database_url)
            box = a.create_box()
            fault = httpx.post(f"{site}/_jirasim/faults",
                               json={"kind": "latency", "seconds": 5, "endpoint": "bulkFetchIssues"}).json()
            started = a.api("POST", f"/api/boxes/{box['id']}/sync").json()
            time.sleep(1.0)
            proc_one.send_signal(signal.SIGKILL)  # mid-run, no chance to record anything
            proc_one.wait(timeout=10)
            httpx.delete(f"{site}/_jirasim/faults/{fault['id']}")
            # While the dead run's lease lasts, a trigger joins it; once it runs out, one takes over.
            deadline = time.monotonic() + 30
            while True:
                status = b.api("POST", f"/api/boxes/{box['id']}/sync").json()
                if status["runId"] != started["runId"]:
                    break
                assert time.monotonic() < deadline, status
                time.sleep(0.5)
            final = b.wait(box["id"])
            assert final["state"] == "done" and len(b.wbs(box["id"])["nodes"]) == 200, final
