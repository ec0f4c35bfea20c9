"""GET /boxes: the general page listing the site's Boxes."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from boxsync.connect.auth import jira_context, requires_jwt
from boxsync.pages import render_page


@requires_jwt("computed")
async def boxes_page(request: Request) -> Response:
    return render_page(request, jira_context(request), "boxes.html")


routes = [Route("/boxes", boxes_page, methods=["GET"])]
