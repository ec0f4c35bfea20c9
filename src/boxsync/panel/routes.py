"""The WBS issue panel.

    GET /panel/wbs?issueKey=…&issueId=…   the iframe Jira loads (computed-qsh JWT): renders at once,
                                          and starts (or joins) a sync of every Box holding the issue
    GET /api/panel/{issueId}?boxId=…       the issue's place in one Box (context JWT), with the Boxes
                                          holding it and that Box's sync status; the page polls it
                                          while the sync runs and then refreshes itself
"""
from __future__ import annotations

import logging
import re
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsync import request_db
from boxsync.api import handles_errors, path_id
from boxsync.boxes import service as boxes_service, visibility
from boxsync.boxes.model import parse_id
from boxsync.boxes.service import NotFound
from boxsync.connect.auth import jira_context, requires_jwt
from boxsync.pages import render_page
from boxsync.panel import service
from boxsync.sync import runs, service as sync_service
from boxsync.tenancy import Scope

log = logging.getLogger("boxsync.panel")

ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,17}$")
ISSUE_ID = re.compile(r"^[1-9][0-9]{0,17}$")


@requires_jwt("computed")
async def wbs_panel(request: Request) -> Response:
    ctx = jira_context(request)
    issue_key = request.query_params.get("issueKey", "")
    issue_id = request.query_params.get("issueId", "")
    if not ISSUE_KEY.match(issue_key):
        return JSONResponse({"error": "issueKey is missing or not a Jira issue key"}, status_code=400)
    if issue_id and not ISSUE_ID.match(issue_id):
        return JSONResponse({"error": "issueId is not a Jira issue id"}, status_code=400)
    if issue_id and _check_due(request.app.state, ctx.tenant.id, int(issue_id)):
        conn = await request_db.connection(request)
        # One indexed read: the Boxes holding the issue and whether each needs a sync now.
        due = await sync_service.due_on_opening(conn, Scope(ctx.tenant.id), int(issue_id),
                                                request.app.state.settings.sync_fresh_seconds)
        await request_db.release(request)
        # Opening the panel re-syncs each Box holding the issue that is not fresh (a running sync
        # is joined); the page answers at once from stored data and follows the sync itself.
        for box_id in due:
            try:
                await sync_service.start(request.app.state, ctx.tenant, box_id, by=ctx.account_id, trigger="panel")
            except Exception:  # the panel still shows what is stored; the failure is in the status
                log.exception("could not start the sync of box %s from the panel", box_id)
    return render_page(request, ctx, "panel.html", issue_key=issue_key, issue_id=issue_id,
                       project_key=request.query_params.get("projectKey", ""))


# Which of an issue's Boxes need a sync is looked at, per process, at most once in this many seconds:
# Jira re-renders the panel on every view of the issue, and a Box synced a moment ago stays fresh
# for sync_fresh_seconds (30 s by default), so closer checks would find nothing to do.
DUE_CHECK_SECONDS = 5.0


def _check_due(state, tenant_id: int, issue_id: int) -> bool:  # noqa: ANN001
    """Whether this view should look for Boxes to sync (and then not again for a few seconds)."""
    if not hasattr(state, "panel_checked"):
        state.panel_checked = {}
    checked: dict[tuple[int, int], float] = state.panel_checked
    key, clock = (tenant_id, issue_id), time.monotonic()
    if checked.get(key, 0.0) > clock:
        return False
    if len(checked) > 100_000:
        checked.clear()
    checked[key] = clock + DUE_CHECK_SECONDS
    return True


def _node(row, visible: bool) -> dict:  # noqa: ANN001
    return boxes_service.node_json(row, visible)


@requires_jwt("context")
@handles_errors
async def panel_data(request: Request) -> Response:
    ctx = jira_context(request)
    scope = Scope(ctx.tenant.id)
    issue_id = path_id(request, "issueId")
    conn = await request_db.connection(request)
    holding = await boxes_service.boxes_holding(conn, scope, issue_id)
    project = await boxes_service.issue_project(conn, scope, issue_id)
    chosen = request.query_params.get("boxId")
    if chosen:
        box_id = parse_id(chosen, "boxId")
        if not any(int(b["id"]) == box_id for b in holding):
            raise NotFound(f"Box {box_id} does not hold issue {issue_id}")
    elif holding:
        box_id = int(holding[0]["id"])  # the most used Box holding the issue
    else:
        box_id = None
    place = await service.place(conn, scope, box_id, issue_id) if box_id is not None else None
    status = await runs.status(conn, scope, box_id) if box_id is not None else None
    await conn.rollback()
    rows = [] if place is None else [place["node"], *place["ancestors"], *place["siblings"], *place["children"]]
    projects = {r.project_id for r in rows if r.project_id is not None} | ({project} if project else set())
    allowed = await visibility.browsable(request.app.state, ctx.tenant, ctx.account_id, projects)
    if project is not None and project not in allowed:
        # The viewer cannot browse the issue itself in Jira: nothing about it, not even its Boxes.
        raise NotFound(f"no issue {issue_id} in any Box you can see")
    body = {"issueId": str(issue_id), "boxes": holding, "boxId": None if box_id is None else str(box_id),
            "sync": status, "node": None, "ancestors": [], "siblings": [], "children": [],
            "moreSiblings": False, "moreChildren": False}
    if place is not None:
        body.update(
            node=_node(place["node"], True),
            ancestors=[_node(r, r.project_id in allowed) for r in place["ancestors"]],
            siblings=[_node(r, r.project_id in allowed) for r in place["siblings"]],
            children=[_node(r, r.project_id in allowed) for r in place["children"]],
            moreSiblings=place["moreSiblings"], moreChildren=place["moreChildren"])
    return JSONResponse(body)


routes = [
    Route("/panel/wbs", wbs_panel, methods=["GET"]),
    Route("/api/panel/{issueId}", panel_data, methods=["GET"]),
]
