"""GET /panel/wbs: the issue web panel, loaded by Jira as a signed iframe."""
from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsync.connect.auth import jira_context, requires_jwt
from boxsync.pages import render_page

ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,17}$")


@requires_jwt("computed")
async def wbs_panel(request: Request) -> Response:
    ctx = jira_context(request)
    issue_key = request.query_params.get("issueKey", "")
    if not ISSUE_KEY.match(issue_key):
        return JSONResponse({"error": "issueKey is missing or not a Jira issue key"}, status_code=400)
    return render_page(request, ctx, "panel.html", issue_key=issue_key,
                       issue_id=request.query_params.get("issueId", ""),
                       project_key=request.query_params.get("projectKey", ""))


routes = [Route("/panel/wbs", wbs_panel, methods=["GET"])]
