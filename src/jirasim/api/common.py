"""What every REST handler needs: authentication + Connect scope per route, parameter parsing that
answers Jira's 400s, and the route table shape (each path under /rest/api/2, /3 and /latest, as
Jira Cloud serves them)."""
from __future__ import annotations

import functools
import json
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jirasim.auth import Caller, authenticate, can, require_scope, require_user
from jirasim.errors import NOT_FOUND_ISSUE, JiraError
from jirasim.model import Issue, Site
from jirasim.render import API_VERSION

Handler = Callable[[Request, Site, Caller], Awaitable[Response]]
API_VERSIONS = ("3", "2", "latest")


def endpoint(scope: str | None, *, anonymous: bool = False) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Authenticate, require a caller (unless `anonymous`), enforce the Connect `scope` the spec's
    `x-atlassian-connect-scope` declares for the operation, then call `fn(request, site, caller)`."""

    def deco(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def handler(request: Request) -> Response:
            site: Site = request.app.state.site
            # /rest/api/2/… and /latest/… answer in v2 shapes (plain-text descriptions, v2 links).
            version = "3" if request.url.path.startswith("/rest/api/3/") else "2"
            API_VERSION.set(version)
            caller = await authenticate(request, site)
            if not anonymous:
                require_user(caller)
            require_scope(caller, scope)
            return await fn(request, site, caller)

        handler.connect_scope = scope  # type: ignore[attr-defined]
        return handler

    return deco


def api_routes(table: list[tuple[str, list[str], Callable, str]], versions: tuple[str, ...] = API_VERSIONS) -> list[Route]:
    """`(path under /rest/api/N, methods, handler, operationId)` → routes for every API version."""
    out = []
    for version in versions:
        for path, methods, fn, name in table:
            out.append(Route(f"/rest/api/{version}{path}", fn, methods=methods, name=name))
    return out


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise JiraError(400, ["No content to map due to end-of-input"])
    try:
        return json.loads(raw)
    except ValueError:
        raise JiraError(400, ["Unexpected character in the request body: the body must be valid JSON."]) from None


async def json_object(request: Request) -> dict:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise JiraError(400, ["Cannot deserialize the request body: a JSON object is expected."])
    return body


def int_param(request: Request, name: str, default: int, *, minimum: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise JiraError(400, [f"The '{name}' parameter must be an integer."]) from None
    if value < minimum:
        raise JiraError(400, [f"The '{name}' parameter must be at least {minimum}."])
    return value


def bool_param(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return raw.lower() != "false"


def list_param(request: Request, name: str) -> list[str] | None:
    """Repeated and comma-separated values (`fields=a,b&fields=c`); None when absent."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def visible_issue(site: Site, caller: Caller, id_or_key: str) -> Issue:
    """The issue, or Jira's 404 when it is missing *or* the caller may not browse it."""
    issue = site.issue(id_or_key)
    if issue is None or not can(site, caller, "BROWSE_PROJECTS", issue.project_id):
        raise JiraError(404, [NOT_FOUND_ISSUE])
    return issue


def no_content(status: int = 204) -> Response:
    return Response(status_code=status)
