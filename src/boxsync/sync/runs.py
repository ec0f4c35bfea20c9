"""The state of a Box's full sync, and the rule that it runs once at a time.

One `box_syncs` row per Box is both the status the API answers and the lock: a process that
starts a run sets `state='running'` with a lease (`lease_until`) in one conditional UPDATE, which
only succeeds when no live run holds the Box, so of two triggers (in one process or in two on one
PostgreSQL) one starts the run and the other joins it. The running process renews the lease as it
reports progress; if it dies, the lease runs out and the next trigger takes the run over.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from boxsync.connect.tenants import now
from boxsync.db import new_id
from boxsync.sync.tables import box_syncs
from boxsync.tenancy import Scope

LEASE = dt.timedelta(seconds=30)
STATES = ("idle", "running", "done", "failed", "refused")
# This process, as named in `owner` (host and pid, so an operator can find it).
OWNER = f"{socket.gethostname()[:40]}:{os.getpid()}"


def _dialect(conn: AsyncConnection) -> str:
    return conn.dialect.name


async def status(conn: AsyncConnection, scope: Scope, box_id: int) -> dict[str, Any]:
    found = (await conn.execute(scope.select(box_syncs).where(box_syncs.c.box_id == box_id))).first()
    return status_json(found)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def status_json(r: Any) -> dict[str, Any]:
    if r is None:
        return {"state": "idle", "stage": None, "done": 0, "total": None, "reason": None, "startedAt": None,
                "finishedAt": None, "triggeredBy": None, "readAs": None, "counts": None}
    state = r.state
    if state == "running" and r.lease_until is not None and r.lease_until < now():
        state, reason = "failed", "the process running this sync stopped; the next sync takes it over"
    else:
        reason = r.reason
    return {"state": state, "stage": r.stage, "done": r.done, "total": r.total, "reason": reason,
            "startedAt": _iso(r.started_at), "finishedAt": _iso(r.finished_at), "triggeredBy": r.triggered_by,
            "readAs": r.read_as, "counts": r.counts, "trigger": r.trigger, "runId": str(r.run_id)}


async def claim(conn: AsyncConnection, scope: Scope, box_id: int, *, triggered_by: str | None, trigger: str,
                read_as: str, continue_on_corrupted_index: bool = False,
                lease: dt.timedelta = LEASE) -> int | None:
    """Start a run of the Box's sync, in the caller's transaction: its run id, or None when a live
    run holds the Box (the caller joins it)."""
    at = now()
    insert = scope.insert(box_syncs, upsert=_dialect(conn)).values(
        box_id=box_id, run_id=0, state="idle", done=0).on_conflict_do_nothing()
    await conn.execute(insert)
    run_id = new_id()
    claimed = await conn.execute(
        scope.update(box_syncs)
        .where(box_syncs.c.box_id == box_id,
               sa.or_(box_syncs.c.state != "running", box_syncs.c.lease_until.is_(None),
                      box_syncs.c.lease_until < at))
        .values(run_id=run_id, state="running", stage="queued", done=0, total=None, reason=None,
                started_at=at, finished_at=None, triggered_by=triggered_by, trigger=trigger, read_as=read_as,
                counts=None, continue_on_corrupted_index=continue_on_corrupted_index, owner=OWNER,
                lease_until=at + lease))
    return run_id if claimed.rowcount == 1 else None


async def progress(conn: AsyncConnection, scope: Scope, box_id: int, run_id: int, *, stage: str,
                   done: int = 0, total: int | None = None, lease: dt.timedelta = LEASE) -> bool:
    """Report progress and renew the lease; False when the run is no longer ours (taken over)."""
    result = await conn.execute(
        scope.update(box_syncs).where(box_syncs.c.box_id == box_id, box_syncs.c.run_id == run_id,
                                      box_syncs.c.state == "running")
        .values(stage=stage, done=done, total=total, lease_until=now() + lease))
    return result.rowcount == 1


async def renew(conn: AsyncConnection, scope: Scope, box_id: int, run_id: int, *,
                lease: dt.timedelta = LEASE) -> bool:
    """Extend the lease of a live run; False when it is no longer ours."""
    result = await conn.execute(
        scope.update(box_syncs).where(box_syncs.c.box_id == box_id, box_syncs.c.run_id == run_id,
                                      box_syncs.c.state == "running").values(lease_until=now() + lease))
    return result.rowcount == 1


async def finish(conn: AsyncConnection, scope: Scope, box_id: int, run_id: int, *, state: str,
                 reason: str | None = None, counts: dict[str, int] | None = None,
                 synced_since: dt.datetime | None = None) -> bool:
    values: dict[str, Any] = {"state": state, "reason": reason, "finished_at": now(), "lease_until": None,
                              "stage": "finished" if state == "done" else state}
    if counts is not None:
        values["counts"] = counts
    if synced_since is not None:
        values["synced_since"] = synced_since
    result = await conn.execute(
        scope.update(box_syncs).where(box_syncs.c.box_id == box_id, box_syncs.c.run_id == run_id,
                                      box_syncs.c.state == "running").values(**values))
    return result.rowcount == 1


async def synced_since(conn: AsyncConnection, scope: Scope, box_id: int) -> dt.datetime | None:
    return (await conn.execute(scope.select(box_syncs, box_syncs.c.synced_since)
                               .where(box_syncs.c.box_id == box_id))).scalar()
