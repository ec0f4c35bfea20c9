"""GET /admin (iframe, computed qsh) and GET /api/admin/overview (JSON, context qsh)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from boxsync.admin.access import NotAdmin, require_site_admin
from boxsync.connect import tenants
from boxsync.connect.auth import JiraContext, jira_context, requires_jwt
from boxsync.pages import render_page
from boxsync.sync import inbox


async def overview_of(request: Request, ctx: JiraContext) -> dict:
    # Everything read here is filtered by the tenant taken from the verified token.
    async with request.app.state.engine.connect() as conn:
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
async def admin_page(request: Request) -> Response:
    ctx = jira_context(request)
    try:
        await require_site_admin(request, ctx)
    except NotAdmin as exc:
        body = request.app.state.templates.get_template("error.html").render(status=exc.status, message=exc.message)
        return HTMLResponse(body, status_code=exc.status)
    return render_page(request, ctx, "admin.html", overview=await overview_of(request, ctx))


@requires_jwt("context")
async def overview(request: Request) -> Response:
    ctx = jira_context(request)
    try:
        await require_site_admin(request, ctx)
    except NotAdmin as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    return JSONResponse(await overview_of(request, ctx))


routes = [
    Route("/admin", admin_page, methods=["GET"]),
    Route("/api/admin/overview", overview, methods=["GET"]),
]
