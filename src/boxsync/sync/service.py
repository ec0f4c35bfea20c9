"""Starting (or joining) a Box's full sync, and running it in the background of this process.

    status = await start(request.app.state, tenant, box_id, by=account_id, trigger="resync")

Triggers: "open" (the Box page), "panel" (the WBS issue panel), "resync" (an admin), "api"
(scripts). Opening re-syncs unless the last run finished within `sync_fresh_seconds` and the Box
is not flagged for a full re-read; an admin's Re-sync always runs. A trigger while a run is live
(in any process) joins it: the answer is that run's status.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

import sqlalchemy as sa

from boxsync.boxes import service as boxes_service
from boxsync.boxes.tables import PRIMARY, boxes, wbs_nodes
from boxsync.connect.tenants import Tenant, now
from boxsync.sync import fullsync, runs
from boxsync.sync.tables import app_releases, box_syncs
from boxsync.tenancy import Scope

log = logging.getLogger("boxsync.sync")

OPENING = ("open", "panel")


def _tasks(state: Any) -> set[asyncio.Task]:
    if not hasattr(state, "sync_tasks"):
        state.sync_tasks = set()
    return state.sync_tasks


async def start(state: Any, tenant: Tenant, box_id: int, *, by: str | None, trigger: str,
                continue_on_corrupted_index: bool = False) -> dict[str, Any]:
    scope = Scope(tenant.id)
    if trigger in OPENING:
        # The common case on every panel view: the Box synced a moment ago. Answered from a read
        # (no write lock: on SQLite a write transaction serialises every request behind it).
        async with state.engine.connect() as conn:
            box = await boxes_service.row(conn, scope, box_id)
            current = await runs.status(conn, scope, box_id)
        if not box.needs_full_sync and _fresh(current, state.settings.sync_fresh_seconds):
            await _note_opened(state, scope, box_id)
            return current
    async with state.engine.begin() as conn:
        box = await boxes_service.row(conn, scope, box_id)
        if trigger in OPENING:
            await _note_opened(state, scope, box_id, conn)
        run_id = await runs.claim(conn, scope, box_id, triggered_by=by, trigger=trigger, read_as=box.scope_owner,
                                  continue_on_corrupted_index=continue_on_corrupted_index,
                                  lease=dt.timedelta(seconds=state.settings.sync_lease_seconds))
    if run_id is not None:
        reader = fullsync.reader_for(state, tenant, box.scope_owner)
        task = asyncio.create_task(fullsync.run(reader, scope, box_id, run_id), name=f"sync box {box_id}")
        running = _tasks(state)
        running.add(task)
        task.add_done_callback(running.discard)
    async with state.engine.connect() as conn:
        return await runs.status(conn, scope, box_id)


def _due_statement() -> sa.Select:
    """Built once (the panel runs it on every view): the Boxes holding an issue, with what decides
    whether opening must sync them. Tenant and issue are bound per execution."""
    tenant = sa.bindparam("tenant_id")
    return (sa.select(boxes.c.id, boxes.c.needs_full_sync, box_syncs.c.state, box_syncs.c.finished_at,
                      box_syncs.c.lease_until)
            .select_from(wbs_nodes)
            .join(boxes, sa.and_(boxes.c.tenant_id == wbs_nodes.c.tenant_id, boxes.c.id == wbs_nodes.c.box_id))
            .outerjoin(box_syncs, sa.and_(box_syncs.c.tenant_id == boxes.c.tenant_id,
                                          box_syncs.c.box_id == boxes.c.id))
            .where(wbs_nodes.c.tenant_id == tenant, boxes.c.tenant_id == tenant,
                   sa.or_(box_syncs.c.tenant_id == tenant, box_syncs.c.tenant_id.is_(None)),
                   wbs_nodes.c.kind == "issue", wbs_nodes.c.issue_id == sa.bindparam("issue_id"),
                   wbs_nodes.c.connection_id == PRIMARY))


_DUE = _due_statement()


async def due_on_opening(conn: Any, scope: Scope, issue_id: int, fresh_seconds: float) -> list[int]:
    """The Boxes holding the issue that opening the panel must (re-)sync: flagged for a full
    re-read, or not synced within `fresh_seconds` (a running sync counts as fresh: it is joined)."""
    clock = now()
    horizon = clock - dt.timedelta(seconds=fresh_seconds)
    rows = (await conn.execute(_DUE, {"tenant_id": scope.tenant_id, "issue_id": issue_id},
                               execution_options={"tenant_id": scope.tenant_id})).all()
    due = []
    for box_id, flagged, state, finished, lease in rows:
        running = state == "running" and lease is not None and lease > clock
        fresh = state == "done" and finished is not None and finished > horizon
        if (flagged and not running) or not (running or fresh):
            due.append(box_id)
    return due


OPEN_NOTE_SECONDS = 60.0  # a Box's use is counted at most once a minute per process


async def _note_opened(state: Any, scope: Scope, box_id: int, conn: Any = None) -> None:
    """Count an opening of the Box ("most used first" in the panel), at most once a minute per
    process, so that viewing issues does not write to the database on every view."""
    if not hasattr(state, "opened_noted"):
        state.opened_noted = {}
    noted: dict[tuple[int, int], float] = state.opened_noted
    key, clock = (scope.tenant_id, box_id), time.monotonic()
    if noted.get(key, 0.0) > clock:
        return
    if len(noted) > 50_000:
        noted.clear()
    noted[key] = clock + OPEN_NOTE_SECONDS
    if conn is not None:
        await boxes_service.mark_opened(conn, scope, box_id)
        return
    async with state.engine.begin() as tx:
        await boxes_service.mark_opened(tx, scope, box_id)


def _fresh(status: dict[str, Any], seconds: float) -> bool:
    if status["state"] == "running":
        return True  # joins the live run
    if status["state"] != "done" or not status["finishedAt"]:
        return False
    finished = dt.datetime.fromisoformat(status["finishedAt"].replace("Z", "+00:00"))
    return now() - finished < dt.timedelta(seconds=seconds)


async def stop_all(state: Any) -> None:
    """On shutdown: cancel this process's runs (each records itself failed) and wait for them."""
    running = list(_tasks(state))
    for task in running:
        task.cancel()
    if running:
        await asyncio.gather(*running, return_exceptions=True)


async def wait_idle(state: Any) -> None:
    """Wait for this process's runs to end (tests, benchmarks)."""
    while _tasks(state):
        await asyncio.gather(*list(_tasks(state)), return_exceptions=True)


# -- releases -------------------------------------------------------------------------------------------

async def note_release(engine: Any, release: str) -> bool:
    """Record the release starting; when it differs from the last one, flag every Box (of every
    tenant) for a full re-read at its next opening. Nothing syncs now: a Box re-syncs only when
    someone opens it, so a new release never sets off a sync of every Box at once."""
    async with engine.execution_options(cross_tenant=True).begin() as conn:
        last = (await conn.execute(sa.select(app_releases.c.release).where(app_releases.c.name == "app"))).scalar()
        if last == release:
            return False
        await conn.execute(sa.update(boxes).values(needs_full_sync=True))
        if last is None:
            await conn.execute(sa.insert(app_releases).values(name="app", release=release, started_at=now()))
        else:
            await conn.execute(sa.update(app_releases).where(app_releases.c.name == "app")
                               .values(release=release, started_at=now()))
    if last is not None:
        log.info("release %s (was %s): every Box re-reads its issues the next time it is opened", release, last)
    return True


async def flag_all(engine: Any) -> int:
    """`boxsync clear-cache`: every Box re-reads its issues at its next opening."""
    async with engine.execution_options(cross_tenant=True).begin() as conn:
        return (await conn.execute(sa.update(boxes).values(needs_full_sync=True))).rowcount
