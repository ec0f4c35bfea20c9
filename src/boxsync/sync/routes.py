"""POST /webhooks/jira: the one URL all descriptor webhooks deliver to."""
from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsync import request_db
from boxsync.connect.auth import jira_context, requires_jwt
from boxsync.sync import inbox

log = logging.getLogger("boxsync.webhooks")

MAX_BODY = 5 * 1024 * 1024


@requires_jwt("computed")
async def receive(request: Request) -> Response:
    ctx = jira_context(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:  # refuse before reading it into memory
        return JSONResponse({"error": "webhook body larger than 5 MiB"}, status_code=413)
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"error": "webhook body larger than 5 MiB"}, status_code=413)
    try:
        delivery = inbox.parse_delivery(body, request.headers.get("x-atlassian-webhook-identifier"),
                                        request.headers.get("x-atlassian-webhook-retry"))
    except inbox.BadDelivery as exc:
        # A 4xx other than 408/409/425/429 is final for Jira: the same body would fail again.
        log.warning("webhook refused for tenant %s: %s", ctx.tenant.id, exc)
        return JSONResponse({"error": str(exc)}, status_code=400)
    # If this write fails the exception becomes a 500, and Jira retries: nothing is lost.
    async with request_db.transaction(request) as conn:
        fresh = await inbox.store(conn, ctx.tenant.id, delivery)
    if not fresh:
        log.info("duplicate webhook %s for tenant %s ignored", delivery.identifier, ctx.tenant.id)
    return Response(status_code=204)


routes = [Route("/webhooks/jira", receive, methods=["POST"])]
