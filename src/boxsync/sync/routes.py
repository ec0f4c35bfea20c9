"""POST /webhooks/jira: the one URL all descriptor webhooks deliver to."""
from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from boxsync import request_db
from boxsync.connect.auth import jira_context, requires_jwt
from boxsync.sync import inbox

log = logging.getLogger("boxsync.webhooks")

MAX_BODY = 5 * 1024 * 1024


async def read_bounded(request: Request, limit: int) -> tuple[bytes, int]:
    """The body if it is at most `limit` bytes, else only its first STUB_PREFIX bytes; and its size.

    Never holds more than `limit` bytes (plus one chunk). The rest of a larger body is read and
    dropped rather than left unread, so the sender gets our answer instead of a reset connection."""
    declared = request.headers.get("content-length", "")
    keep = inbox.STUB_PREFIX if declared.isdigit() and int(declared) > limit else limit
    kept = bytearray()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if len(kept) < keep:
            kept += chunk
            if size > limit:
                keep = inbox.STUB_PREFIX
        if len(kept) > keep:
            del kept[keep:]
    return bytes(kept), size


# allow_disabled: a verified webhook is stored even when BoxSync believes the app disabled or
# uninstalled, because a 4xx is final for Jira and our flag may be stale (a late or lost `enabled`).
@requires_jwt("computed", allow_disabled=True)
async def receive(request: Request) -> Response:
    ctx = jira_context(request)
    identifier = request.headers.get("x-atlassian-webhook-identifier")
    retry = request.headers.get("x-atlassian-webhook-retry")
    body, size = await read_bounded(request, MAX_BODY)
    if len(body) < size:  # only the prefix was kept
        delivery = inbox.stub_delivery(body, size, identifier, retry, "oversized")
    else:
        try:
            delivery = inbox.parse_delivery(body, identifier, retry)
        except inbox.BadDelivery as exc:
            delivery = inbox.stub_delivery(body, size, identifier, retry, exc.reason)
    if delivery.stub_reason:
        log.warning("webhook for tenant %s stored as a stub (%s, %d bytes, event %s): to re-read from Jira",
                    ctx.tenant.id, delivery.stub_reason, size, delivery.event)
    # If this write fails the exception becomes a 500, and Jira retries: nothing is lost.
    async with request_db.transaction(request) as conn:
        fresh = await inbox.store(conn, ctx.tenant.id, delivery)
    if not fresh:
        log.info("duplicate webhook %s for tenant %s ignored", delivery.identifier, ctx.tenant.id)
    return Response(status_code=204)


routes = [Route("/webhooks/jira", receive, methods=["POST"])]
