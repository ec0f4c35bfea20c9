"""GET /admin (iframe, computed qsh) and GET /api/admin/overview (JSON, context qsh)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsync import request_db
from boxsync.admin.access import requires_site_admin
from boxsync.connect import tenants
from boxsync.connect.auth import JiraContext, jira_context, requires_jwt
from boxsync.pages import render_page
from boxsync.sync import inbox


async def overview_of(request: Request, ctx: JiraContext) -> dict:
    # Everything read here is filtered by the tenant taken from the verified token.
    conn = await request_db.connection(request)  # released by requires_jwt
    events = await tenants.history(conn, ctx.tenant.id)
    received = await inbox.counts(conn, ctx.tenant.id)
    return {
        "site": {"baseUrl": ctx.tenant.base_url, "displayUrl": ctx.tenant.display_url,
                 "installedAt": ctx.tenant.installed_at.isoformat(), "enabled": ctx.tenant.enabled},
        "lifecycle": [{"event": e["event"], "baseUrl": e["base_url"], "accountId": e["account_id"],
                       "at": e["at"].isoformat()} for e in events],
        "webhooks": {"received": received, "total": sum(received.values())},
    }


@requires_jwt("computed")
@requires_site_admin
async def admin_page(request: Request) -> Response:
    ctx = jira_context(request)
    return render_page(request, ctx, "admin.html", overview=await overview_of(request, ctx))


@requires_jwt("context")
@requires_site_admin
async def overview(request: Request) -> Response:
    return JSONResponse(await overview_of(request, jira_context(request)))


routes = [
    Route("/admin", admin_page, methods=["GET"]),
    Route("/api/admin/overview", overview, methods=["GET"]),
]
