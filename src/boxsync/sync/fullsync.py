"""A full sync of one Box: read its scope from Jira as the Scope Owner, rebuild its WBS and
dependencies, and store the difference in one transaction.

    index health → ids of the scope (search/jql, ids only, 5,000 a page)
                 → which of them to read (new to BoxSync, or updated in Jira since the last run)
                 → bulkfetch those, 100 a call, a few calls at a time, each page turned into task
                   rows as it arrives (Jira's JSON is never held for the whole Box)
                 → WBS and dependencies (pure: boxes/wbs.py) → one transaction of changes

A Box whose issues did not change costs two or three Jira calls: the id pages and one search for
issues updated since the last run. A Box flagged for a full re-read (new release, changed scope)
reads every issue again.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import datetime as dt
import logging
import time
from typing import Any, AsyncIterator, Callable, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from boxsync.boxes import mapping_service, service as boxes_service, wbs
from boxsync.boxes.mapping import Mappings, sprint_field
from boxsync.boxes.tables import PRIMARY, box_dependencies, boxes, tasks, wbs_nodes
from boxsync.connect.tenants import Tenant, now
from boxsync.jira import operations as ops
from boxsync.jira.client import BULK_FETCH_MAX, JiraClient, app_client, user_client
from boxsync.jira.errors import JiraError, JiraForbidden, JiraNotFound
from boxsync.sync import issues, runs
from boxsync.tenancy import Scope

log = logging.getLogger("boxsync.sync")

# How far the "updated since the last run" search reaches back beyond that run's start: Jira's
# JQL dates have minute precision and its search index is eventually consistent.
SINCE_MARGIN = dt.timedelta(minutes=2)
INDEX_LAG = dt.timedelta(minutes=1)  # the index behind the database by more than this: refuse
IN_CHUNK = 5_000  # ids per IN (…) when reading stored rows
CONTENT = ("issue_key", "summary", "issue_type", "hierarchy_level", "project_id", "project_key", "project_name",
           "status", "status_category", "assignee", "assignee_name", "parent_issue_id", "start_date", "end_date",
           "baseline_start", "baseline_end", "progress", "task_mode", "jira_updated", "versions", "sprints",
           "components", "links")
NAMES = ("issue_id",) + CONTENT  # the order of a task row's tuple during a sync
LINKS = NAMES.index("links")
STRUCTURE = {NAMES.index(n) for n in ("versions", "sprints", "components", "links")}  # JSON columns
ABSENT = object()  # in a row read from Jira: a value that is not synchronized (the stored one stays)


_bulk_runs = 0


@contextlib.asynccontextmanager
async def _bulk_work() -> AsyncIterator[None]:
    """Pause the cyclic garbage collector while a sync turns Jira's answers into rows and builds
    the WBS. These phases allocate millions of objects that stay alive, so the collector would
    rescan an ever larger heap again and again (a third of a 100,000-issue sync's time); reference
    counting still frees everything else meanwhile, and each fetched page collects the young
    generations (fetch_rows). Re-enabled when the last such phase ends."""
    global _bulk_runs
    _bulk_runs += 1
    gc.disable()
    try:
        yield
    finally:
        _bulk_runs -= 1
        if _bulk_runs == 0:
            gc.enable()


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return -1


class Refused(Exception):
    """The sync must not run (Jira's index is unhealthy); the message says why."""


@dataclasses.dataclass
class Reader:
    """What a run needs from the app: the database, the Jira clients, its settings."""
    engine: AsyncEngine
    app_client: JiraClient
    owner_client: JiraClient
    concurrency: int = 8
    lease: dt.timedelta = runs.LEASE


def reader_for(state: Any, tenant: Tenant, scope_owner: str) -> Reader:
    settings = state.settings
    return Reader(engine=state.engine,
                  app_client=app_client(state.http, tenant, settings.app_key),
                  owner_client=user_client(state.http, state.user_tokens, tenant, scope_owner),
                  concurrency=settings.sync_bulk_concurrency,
                  lease=dt.timedelta(seconds=settings.sync_lease_seconds))


# -- index health -------------------------------------------------------------------------------------

def _jira_dt(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            return None


def index_problem(summary: dict[str, Any]) -> str | None:
    """Why Jira's index summary says a sync must not trust search now, or None. Pure."""
    index = summary.get("issueIndex") or {}
    if index.get("indexReadable") is False:
        return "Jira reports that its issue index cannot be read."
    in_db, in_index = index.get("countInDatabase"), index.get("countInIndex")
    if isinstance(in_db, int) and isinstance(in_index, int) and in_db != in_index:
        return (f"Jira's issue index holds {in_index} issues but its database {in_db}: the index is "
                "corrupted or being rebuilt, so a search would miss issues and BoxSync would remove them.")
    db_time, index_time = _jira_dt(index.get("lastUpdatedInDatabase")), _jira_dt(index.get("lastUpdatedInIndex"))
    if db_time and index_time and db_time - index_time > INDEX_LAG:
        minutes = int((db_time - index_time).total_seconds() // 60)
        return f"Jira's issue index lags its database by {minutes} minutes, so a search would miss recent changes."
    return None


async def check_index(client: JiraClient) -> str | None:
    try:
        summary = await client.call(ops.INDEX_SUMMARY)
    except JiraNotFound:
        return None  # the site gives no such signal
    except JiraForbidden as exc:
        log.info("index summary not readable by the app (%s): no index signal", exc.status)
        return None
    return index_problem(summary or {})


# -- reading Jira -------------------------------------------------------------------------------------

async def fetch_rows(client: JiraClient, ids: Sequence[int], fields: Sequence[str],
                     convert: Callable[[dict[str, Any]], tuple], *, concurrency: int,
                     on_page: Callable[[int], Any]) -> tuple[list[tuple], set[int]]:
    """Task rows of `ids`, read 100 a call by `concurrency` workers; each page is converted as it
    arrives. Returns the rows and the ids Jira did not return (deleted since the search, or hidden)."""
    chunks = iter([list(ids[i:i + BULK_FETCH_MAX]) for i in range(0, len(ids), BULK_FETCH_MAX)])
    rows: list[tuple] = []  # each starts with the issue id
    done = 0

    async def worker() -> None:
        nonlocal done
        for chunk in chunks:  # a shared iterator: each chunk goes to one worker
            body = {"issueIdsOrKeys": [str(i) for i in chunk], "fields": list(fields)}
            page = await client.call(ops.BULK_FETCH, json=body)
            for issue in page.get("issues") or []:
                rows.append(convert(issue))
            done += len(chunk)
            if _bulk_runs:
                # The young generations only (cheap): frees the reference cycles each HTTP exchange
                # leaves behind, while the rows kept so far sit in the old generation, unscanned.
                gc.collect(1)
            await on_page(done)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(concurrency, (len(ids) + BULK_FETCH_MAX - 1) // BULK_FETCH_MAX))):
            group.create_task(worker())
    missing = set(ids) - {r[0] for r in rows}
    return rows, missing


async def _ids(client: JiraClient, jql: str) -> list[int]:
    return [int(i) async for i in client.iter_issue_ids(jql)]


# -- stored state -------------------------------------------------------------------------------------

async def _stored_tasks(conn: AsyncConnection, scope: Scope, ids: Iterable[int]) -> dict[int, tuple]:
    """Stored task rows of `ids`, as tuples in NAMES order."""
    wanted = sorted(ids)
    columns = [tasks.c[name] for name in NAMES]
    out: dict[int, tuple] = {}
    for i in range(0, len(wanted), IN_CHUNK):
        stmt = scope.select(tasks, *columns).where(tasks.c.connection_id == PRIMARY,
                                                   tasks.c.issue_id.in_(wanted[i:i + IN_CHUNK]))
        for r in (await conn.execute(stmt)).all():
            out[r[0]] = tuple(issues.stored_structure(v) if i in STRUCTURE else v for i, v in enumerate(r))
    return out


async def _box_issue_ids(conn: AsyncConnection, scope: Scope, box_id: int) -> set[int]:
    stmt = scope.select(wbs_nodes, wbs_nodes.c.issue_id).where(
        wbs_nodes.c.box_id == box_id, wbs_nodes.c.kind == "issue", wbs_nodes.c.connection_id == PRIMARY)
    return set((await conn.execute(stmt)).scalars())


async def _stored_nodes(conn: AsyncConnection, scope: Scope, box_id: int) -> dict[str, tuple]:
    stmt = scope.select(wbs_nodes, wbs_nodes.c.node_id, wbs_nodes.c.parent_node_id, wbs_nodes.c.position,
                        wbs_nodes.c.kind, wbs_nodes.c.issue_id, wbs_nodes.c.group_id, wbs_nodes.c.label,
                        wbs_nodes.c.start_date, wbs_nodes.c.end_date).where(wbs_nodes.c.box_id == box_id)
    return {r[0]: tuple(r[1:]) for r in (await conn.execute(stmt)).all()}


async def _stored_deps(conn: AsyncConnection, scope: Scope, box_id: int) -> dict[int, tuple]:
    stmt = scope.select(box_dependencies, box_dependencies.c.link_id, box_dependencies.c.from_issue_id,
                        box_dependencies.c.to_issue_id, box_dependencies.c.type).where(
        box_dependencies.c.box_id == box_id, box_dependencies.c.connection_id == PRIMARY)
    return {r[0]: tuple(r[1:]) for r in (await conn.execute(stmt)).all()}


# -- the WBS and dependencies (pure) ---------------------------------------------------------------------

def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def node_values(nodes: Sequence[wbs.Node]) -> dict[str, tuple]:
    """node_id → (parent, position, kind, issue_id, group_id, label, start, end), as stored."""
    out = {}
    for n in nodes:
        g = n.group
        out[n.id] = (n.parent_id, n.position, n.kind, n.issue_id, g.id if g else None,
                     g.name[:255] if g else None, _date(g.start) if g else None, _date(g.end) if g else None)
    return out


def dependencies(rows: Iterable[tuple], mappings: Mappings, builders: Sequence[str]) -> dict[int, tuple]:
    """link_id → (from, to, type) for mapped links between two tasks of the Box (rows in NAMES
    order). Pure."""
    in_box = {r[0]: r for r in rows}
    structural = {b.split(":", 1)[1] for b in builders if b.startswith("link:")}
    out: dict[int, tuple] = {}
    for r in in_box.values():
        for link_id, type_id, source, destination in r[LINKS] or []:
            if link_id in out or str(type_id) in structural:
                continue
            mapped = mappings.dependency_of(str(type_id))
            if mapped is None or source not in in_box or destination not in in_box:
                continue
            kind, reversed_ = mapped
            pred, succ = (destination, source) if reversed_ else (source, destination)
            out[link_id] = (pred, succ, kind)
    return out


# -- the run ----------------------------------------------------------------------------------------------

async def run(reader: Reader, scope: Scope, box_id: int, run_id: int) -> None:
    """Run the claimed sync `run_id` of the Box to its end, recording done, failed or refused."""
    started = now()
    heartbeat = asyncio.create_task(_heartbeat(reader, scope, box_id, run_id), name=f"lease of box {box_id}")
    try:
        outcome = await _run(reader, scope, box_id, run_id, started)
    except Refused as exc:
        await _finish(reader, scope, box_id, run_id, state="refused", reason=str(exc))
    except JiraError as exc:
        log.warning("sync of box %s failed: Jira answered %s", box_id, exc.status)
        await _finish(reader, scope, box_id, run_id, state="failed", reason=_jira_reason(exc))
    except asyncio.CancelledError:
        await asyncio.shield(_finish(reader, scope, box_id, run_id, state="failed",
                                     reason="BoxSync stopped during this sync; open the Box to run it again."))
        raise
    except boxes_service.NotFound:
        return  # the Box was deleted meanwhile; its sync row went with it
    except Exception as exc:  # anything else: recorded, never left "running"
        log.exception("sync of box %s failed", box_id)
        await _finish(reader, scope, box_id, run_id, state="failed",
                      reason=f"BoxSync could not complete the sync ({type(exc).__name__}). Try again; "
                             "if it keeps failing, the BoxSync operator can find the details in the logs.")
    else:
        if outcome is not None:
            log.info("sync of box %s done in %.2fs: %s", box_id, (now() - started).total_seconds(), outcome)
    finally:
        heartbeat.cancel()


async def _heartbeat(reader: Reader, scope: Scope, box_id: int, run_id: int) -> None:
    """Renew the run's lease while it works, so a slow Jira call never lets another process take
    over a run that is alive; a dead process stops renewing and its lease runs out."""
    interval = max(0.5, reader.lease.total_seconds() / 3)
    while True:
        await asyncio.sleep(interval)
        try:
            async with reader.engine.begin() as conn:
                if not await runs.renew(conn, scope, box_id, run_id, lease=reader.lease):
                    return
        except Exception:  # a database hiccup: the next beat tries again, progress reports renew too
            log.warning("could not renew the lease of box %s's sync", box_id, exc_info=True)


def _jira_reason(exc: JiraError) -> str:
    messages = "; ".join(getattr(exc, "messages", []) or [])[:500]
    if exc.status in (401, 403):
        return (f"Jira refused to let the Scope Owner read this Box's scope ({exc.status}). Check that the "
                f"Scope Owner may browse the projects in the scope. {messages}").strip()
    if exc.status == 400:
        return f"Jira did not accept the Box's scope: {messages or 'invalid JQL'}. Edit the scope rules."
    return f"Jira answered {exc.status} while syncing. {messages}".strip()


async def _finish(reader: Reader, scope: Scope, box_id: int, run_id: int, **values: Any) -> None:
    async with reader.engine.begin() as conn:
        await runs.finish(conn, scope, box_id, run_id, **values)


async def _run(reader: Reader, scope: Scope, box_id: int, run_id: int, started: dt.datetime) -> dict | None:
    engine = reader.engine
    last_report = 0.0

    timings: dict[str, float] = {}
    clock = [time.perf_counter(), "starting"]

    async def report(stage: str, done: int = 0, total: int | None = None, *, force: bool = False) -> None:
        nonlocal last_report
        if stage != clock[1]:  # seconds spent per stage, for the log
            moment = time.perf_counter()
            timings[str(clock[1])] = round(moment - float(clock[0]), 3)
            timings[f"rss@{stage}"] = _rss_mb()
            clock[0], clock[1] = moment, stage
        if not force and time.monotonic() - last_report < 0.5:
            return
        last_report = time.monotonic()
        async with engine.begin() as conn:
            if not await runs.progress(conn, scope, box_id, run_id, stage=stage, done=done, total=total,
                                       lease=reader.lease):
                raise asyncio.CancelledError("the run was taken over")

    async with engine.connect() as conn:
        box = await boxes_service.row(conn, scope, box_id)
        jql = await boxes_service.scope_jql(conn, scope, box_id)
        since = await runs.synced_since(conn, scope, box_id)
        continue_anyway = await _continue_flag(conn, scope, box_id)

    await report("checking-index", force=True)
    problem = await check_index(reader.app_client)
    if problem and not continue_anyway:
        raise Refused(problem + " The sync was not run; an admin can choose to continue anyway.")

    site_fields = await reader.app_client.fields()
    mappings = await mapping_service.ensure(engine, scope, reader.app_client, fields=site_fields)
    sprint = sprint_field(site_fields)
    wanted_fields = issues.fields_to_read(mappings.fields(), sprint)
    full = bool(box.needs_full_sync) or since is None

    await report("searching", force=True)
    ids: list[int] = await _ids(reader.owner_client, jql) if jql else []
    changed: set[int] = set()
    if ids and not full:
        minutes = int((started - since + SINCE_MARGIN).total_seconds() // 60) + 1
        changed = set(await _ids(reader.owner_client, f"({jql}) AND updated >= -{minutes}m"))

    async with engine.connect() as conn:
        held = await _box_issue_ids(conn, scope, box_id)
        if not full and not changed and held == set(ids):
            # Nothing in the scope changed since the last run: the stored WBS is this run's result.
            counts = {"added": 0, "changed": 0, "removed": 0, "moved": 0, "read": 0}
            await conn.rollback()
            async with engine.begin() as tx:
                await runs.finish(tx, scope, box_id, run_id, state="done", counts=counts, synced_since=started)
            return counts
        stored = await _stored_tasks(conn, scope, ids)
        old_nodes = await _stored_nodes(conn, scope, box_id)
        old_deps = await _stored_deps(conn, scope, box_id)
    to_read = ids if full else [i for i in ids if i not in stored or i in changed]

    def convert(issue: dict[str, Any]) -> tuple:
        # A tuple in NAMES order (a quarter of a dict's memory: a Box of 100,000 tasks is held whole
        # while its WBS is built); ABSENT marks a "not synchronized" value, which keeps the stored one.
        row = issues.task_row(issue, mappings.for_project, sprint, box.task_mode)
        return tuple(row.get(name, ABSENT) for name in NAMES)

    async def on_page(done: int) -> None:
        await report("fetching", done, len(to_read))

    await report("fetching", 0, len(to_read), force=True)
    async with _bulk_work():
        fetched, missing = await fetch_rows(reader.owner_client, to_read, wanted_fields, convert,
                                            concurrency=reader.concurrency, on_page=on_page)
        await report("building", len(to_read), len(to_read), force=True)

        # The Box's rows: what was read now over what was stored; ids Jira no longer returns are gone.
        current: dict[int, tuple] = {i: stored[i] for i in ids if i in stored and i not in missing}
        new_rows, changed_rows = [], []
        for row in fetched:
            old = stored.get(row[0])
            if old is None:
                merged = tuple(box.task_mode if v is ABSENT and n == "task_mode" else (None if v is ABSENT else v)
                               for n, v in zip(NAMES, row))  # the Box's task mode, for tasks new to any Box
                new_rows.append(merged)
            else:
                merged = tuple(o if v is ABSENT else v for v, o in zip(row, old))
                if merged != old:
                    changed_rows.append(merged)
            current[row[0]] = merged
        del fetched
        nodes = wbs.build([issues.facts(dict(zip(NAMES, r))) for r in current.values()], box.builders)
        new_nodes = node_values(nodes)
        del nodes
        new_deps = dependencies(current.values(), mappings, box.builders)

    old_issue_parent = {v[3]: v[0] for v in old_nodes.values() if v[2] == "issue"}
    new_issue_parent = {v[3]: v[0] for v in new_nodes.values() if v[2] == "issue"}
    changed_ids = {r[0] for r in changed_rows}
    counts = {
        "added": len(new_issue_parent.keys() - old_issue_parent.keys()),
        "changed": len(changed_ids & old_issue_parent.keys() & new_issue_parent.keys()),
        "removed": len(old_issue_parent.keys() - new_issue_parent.keys()),
        "moved": sum(1 for i, p in new_issue_parent.items() if i in old_issue_parent and old_issue_parent[i] != p),
        "read": len(to_read),
    }

    await report("saving", len(to_read), len(to_read), force=True)
    async with engine.begin() as conn:
        if not await runs.progress(conn, scope, box_id, run_id, stage="saving", done=len(to_read),
                                   total=len(to_read), lease=reader.lease):
            return None  # taken over by another process: its result counts, not ours
        await _save_tasks(conn, scope, new_rows, changed_rows)
        await _save_nodes(conn, scope, box_id, old_nodes, new_nodes)
        await _save_deps(conn, scope, box_id, old_deps, new_deps)
        await conn.execute(scope.update(boxes).where(boxes.c.id == box_id).values(needs_full_sync=False))
        await runs.finish(conn, scope, box_id, run_id, state="done", counts=counts, synced_since=started)
    timings["saving"] = round(time.perf_counter() - float(clock[0]), 3)
    log.info("sync of box %s: seconds per stage %s", box_id, timings)
    return counts


async def _continue_flag(conn: AsyncConnection, scope: Scope, box_id: int) -> bool:
    from boxsync.sync.tables import box_syncs

    return bool((await conn.execute(scope.select(box_syncs, box_syncs.c.continue_on_corrupted_index)
                                    .where(box_syncs.c.box_id == box_id))).scalar())


async def _save_tasks(conn: AsyncConnection, scope: Scope, new_rows: list[tuple], changed_rows: list[tuple]) -> None:
    at = now()
    if new_rows:
        # Another Box's sync may have stored the same issue meanwhile: insert what is missing, and
        # let the update below bring both to what was read now.
        present = await _stored_tasks(conn, scope, [r[0] for r in new_rows])
        inserts = [r for r in new_rows if r[0] not in present]
        changed_rows = changed_rows + [r for r in new_rows if r[0] in present]
        for i in range(0, len(inserts), 1000):
            await conn.execute(scope.insert(tasks), [
                {**dict(zip(NAMES, r)), "connection_id": PRIMARY, "synced_at": at} for r in inserts[i:i + 1000]])
    if changed_rows:
        stmt = (scope.update(tasks).where(tasks.c.connection_id == PRIMARY,
                                          tasks.c.issue_id == sa.bindparam("b_issue_id"))
                .values({c: sa.bindparam(f"b_{c}") for c in CONTENT + ("synced_at",)}))
        for i in range(0, len(changed_rows), 1000):
            await conn.execute(stmt, [{"b_synced_at": at, **{f"b_{n}": v for n, v in zip(NAMES, r)}}
                                      for r in changed_rows[i:i + 1000]])


async def _save_nodes(conn: AsyncConnection, scope: Scope, box_id: int, old: dict[str, tuple],
                      new: dict[str, tuple]) -> None:
    gone = [n for n in old if n not in new]
    for i in range(0, len(gone), IN_CHUNK):
        await conn.execute(scope.delete(wbs_nodes).where(wbs_nodes.c.box_id == box_id,
                                                         wbs_nodes.c.node_id.in_(gone[i:i + IN_CHUNK])))
    names = ("parent_node_id", "position", "kind", "issue_id", "group_id", "label", "start_date", "end_date")
    added = [{"box_id": box_id, "node_id": n, "connection_id": PRIMARY, **dict(zip(names, v))}
             for n, v in new.items() if n not in old]
    for i in range(0, len(added), 1000):
        await conn.execute(scope.insert(wbs_nodes), added[i:i + 1000])
    updated = [{"b_node_id": n, **{f"b_{k}": x for k, x in zip(names, v)}}
               for n, v in new.items() if n in old and old[n] != v]
    if updated:
        stmt = (scope.update(wbs_nodes).where(wbs_nodes.c.box_id == box_id,
                                              wbs_nodes.c.node_id == sa.bindparam("b_node_id"))
                .values({k: sa.bindparam(f"b_{k}") for k in names}))
        for i in range(0, len(updated), 1000):
            await conn.execute(stmt, updated[i:i + 1000])


async def _save_deps(conn: AsyncConnection, scope: Scope, box_id: int, old: dict[int, tuple],
                     new: dict[int, tuple]) -> None:
    stale = [link for link, v in old.items() if new.get(link) != v]
    for i in range(0, len(stale), IN_CHUNK):
        await conn.execute(scope.delete(box_dependencies).where(
            box_dependencies.c.box_id == box_id, box_dependencies.c.connection_id == PRIMARY,
            box_dependencies.c.link_id.in_(stale[i:i + IN_CHUNK])))
    fresh = [{"box_id": box_id, "connection_id": PRIMARY, "link_id": link, "from_issue_id": v[0],
              "to_issue_id": v[1], "type": v[2]} for link, v in new.items() if old.get(link) != v]
    for i in range(0, len(fresh), 1000):
        await conn.execute(scope.insert(box_dependencies), fresh[i:i + 1000])
