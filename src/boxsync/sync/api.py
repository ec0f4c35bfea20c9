"""POST|GET /api/boxes/{id}/sync: start (or join) a Box's full sync; its status.

    POST {"continueOnCorruptedIndex": true}?  → 202 with the status (the run goes on in the background)
    GET                                        → 200 with the status

Any user of the site who may open the Box may trigger its sync (opening a Box does); the Box page
offers Re-sync to admins. The run reads as the Box's Scope Owner whoever triggered it, and the
status records both.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsync import request_db
from boxsync.api import handles_errors, json_body, path_id
from boxsync.boxes import service as boxes_service
from boxsync.boxes.model import Invalid
from boxsync.connect.auth import jira_context, requires_jwt
from boxsync.sync import runs, service
from boxsync.tenancy import Scope

TRIGGERS = ("resync", "open", "api")


@requires_jwt("context")
@handles_errors
async def start_sync(request: Request) -> Response:
    ctx = jira_context(request)
    box_id = path_id(request)
    body = await json_body(request, optional=True)
    if not isinstance(body, dict):
        raise Invalid("body", "must be a JSON object", status=400)
    unknown = set(body) - {"continueOnCorruptedIndex", "trigger"}
    if unknown:
        raise Invalid(sorted(unknown)[0], "is not a sync option (continueOnCorruptedIndex, trigger)")
    anyway = body.get("continueOnCorruptedIndex", False)
    if not isinstance(anyway, bool):
        raise Invalid("continueOnCorruptedIndex", "must be true or false")
    trigger = body.get("trigger", "api")
    if trigger not in TRIGGERS:
        raise Invalid("trigger", f"must be one of {', '.join(TRIGGERS)}")
    await request_db.release(request)  # the service uses its own transactions
    status = await service.start(request.app.state, ctx.tenant, box_id, by=ctx.account_id, trigger=trigger,
                                 continue_on_corrupted_index=anyway)
    return JSONResponse(status, status_code=202)


@requires_jwt("context")
@handles_errors
async def sync_status(request: Request) -> Response:
    scope = Scope(jira_context(request).tenant.id)
    box_id = path_id(request)
    conn = await request_db.connection(request)
    await boxes_service.row(conn, scope, box_id)  # 404 for a Box that is not there
    return JSONResponse(await runs.status(conn, scope, box_id))


routes = [
    Route("/api/boxes/{id}/sync", start_sync, methods=["POST"]),
    Route("/api/boxes/{id}/sync", sync_status, methods=["GET"]),
]
