"""Site-level reads: serverInfo, myself, fields, link types, project search, the index summary and
the removed legacy search."""
from __future__ import annotations

import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jirasim.api.common import api_routes, endpoint, int_param, list_param
from jirasim.auth import Caller, browsable_projects
from jirasim.errors import JiraError, error_response
from jirasim.model import Site
from jirasim.render import jira_time, render_field, render_link_type, render_project, render_user

VERSION = "1001.0.0-SNAPSHOT"
BUILD_NUMBER = 100287
BUILD_DATE_MS = 1766620800000  # 2025-12-25
SEARCH_REMOVED = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
                  "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")


@endpoint("READ", anonymous=True)
async def server_info(request: Request, site: Site, caller: Caller) -> Response:
    return JSONResponse({
        "baseUrl": site.base_url,
        "displayUrl": site.base_url,
        "displayUrlServicedeskHelpCenter": site.base_url,
        "displayUrlConfluence": site.base_url.rstrip("/") + "/wiki",
        "version": VERSION,
        "versionNumbers": [1001, 0, 0],
        "deploymentType": "Cloud",
        "buildNumber": BUILD_NUMBER,
        "buildDate": jira_time(BUILD_DATE_MS),
        "serverTime": jira_time(int(time.time() * 1000)),
        "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71",
        "serverTitle": "Jira",
        "serverTimeZone": "Etc/UTC",
    })


@endpoint("READ")
async def myself(request: Request, site: Site, caller: Caller) -> Response:
    user = site.users.get(caller.account_id or "")
    if user is None:
        # An app without a user record: Jira still answers with the app user.
        app = site.apps.get(caller.app_key or "")
        body = {"accountId": caller.account_id or "", "accountType": "app", "active": True,
                "displayName": app.key if app else (caller.app_key or "app"), "timeZone": "UTC"}
    else:
        body = render_user(user, site, email=True)
    body["locale"] = "en_US"
    expand = set(list_param(request, "expand") or ())
    body["groups"] = {"size": 1 if user else 0, "items": [{"name": "jira-software-users"}] if "groups" in expand and user else []}
    body["applicationRoles"] = {"size": 1, "items": [{"key": "jira-software", "name": "Jira"}] if "applicationRoles" in expand else []}
    body["expand"] = "groups,applicationRoles"
    return JSONResponse(body)


@endpoint("READ")
async def fields(request: Request, site: Site, caller: Caller) -> Response:
    return JSONResponse([render_field(f) for f in site.fields.values()])


@endpoint("READ")
async def link_types(request: Request, site: Site, caller: Caller) -> Response:
    return JSONResponse({"issueLinkTypes": [render_link_type(site, lt) for lt in site.link_types.values()]})


@endpoint("READ")
async def project_search(request: Request, site: Site, caller: Caller) -> Response:
    start_at = int_param(request, "startAt", 0)
    max_results = min(int_param(request, "maxResults", 50), 100)
    keys = list_param(request, "keys")
    ids = list_param(request, "id")
    if (keys and len(keys) > 50) or (ids and len(ids) > 50):
        raise JiraError(400, ["You can specify at most 50 project keys or ids."])
    query = (request.query_params.get("query") or "").lower()
    allowed = browsable_projects(site, caller)
    projects = [p for p in site.projects.values() if p.id in allowed]
    if keys:
        wanted = {k.upper() for k in keys}
        projects = [p for p in projects if p.key in wanted]
    if ids:
        projects = [p for p in projects if str(p.id) in ids]
    if query:
        projects = [p for p in projects if query in p.key.lower() or query in p.name.lower()]
    order = request.query_params.get("orderBy", "key")
    desc = order.startswith("-")
    attr = order.lstrip("+-")
    projects.sort(key=lambda p: (p.name.lower() if attr == "name" else p.id if attr == "id" else p.key), reverse=desc)
    page = projects[start_at:start_at + max_results]
    expand = set(list_param(request, "expand") or ())
    is_last = start_at + len(page) >= len(projects)
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("startAt", "maxResults")]
    self_url = f"{site.base_url}{request.url.path}?" + urlencode(params + [("startAt", start_at), ("maxResults", max_results)])
    body = {
        "self": self_url,
        "maxResults": max_results,
        "startAt": start_at,
        "total": len(projects),
        "isLast": is_last,
        "values": [render_project(site, p, expand=expand) for p in page],
    }
    if not is_last:
        body["nextPage"] = f"{site.base_url}{request.url.path}?" + urlencode(
            params + [("startAt", start_at + max_results), ("maxResults", max_results)])
    return JSONResponse(body)


@endpoint("READ")
async def all_projects(request: Request, site: Site, caller: Caller) -> Response:
    """The deprecated unpaginated list (`getAllProjects`), still served by Jira Cloud."""
    allowed = browsable_projects(site, caller)
    expand = set(list_param(request, "expand") or ())
    return JSONResponse([render_project(site, p, expand=expand) for p in sorted(site.projects.values(), key=lambda p: p.key)
                         if p.id in allowed])


@endpoint("READ")
async def get_project(request: Request, site: Site, caller: Caller) -> Response:
    ref = request.path_params["projectIdOrKey"]
    project = site.project_by_key(ref)
    if project is None or project.id not in browsable_projects(site, caller):
        raise JiraError(404, [f"No project could be found with key '{ref}'."])
    expand = set(list_param(request, "expand") or ()) | {"lead", "issueTypes"}  # Jira includes both by default
    body = render_project(site, project, expand=expand)
    from jirasim.render import render_component, render_version

    body["components"] = [render_component(site, c) for c in site.components.values() if c.project_id == project.id]
    body["versions"] = [render_version(site, v) for v in site.versions.values() if v.project_id == project.id]
    body["assigneeType"] = "UNASSIGNED"
    return JSONResponse(body)


@endpoint("READ")
async def legacy_search(request: Request, site: Site, caller: Caller) -> Response:
    return error_response(410, [SEARCH_REMOVED])


@endpoint("ADMIN")
async def index_summary(request: Request, site: Site, caller: Caller) -> Response:
    """Jira Data Center's `GET /rest/api/2/index/summary` (not in the Cloud spec). The site's
    `index_corrupted` switch makes the index lag the database, the signal a health check reads."""
    from jirasim.auth import can

    if not can(site, caller, "ADMINISTER"):
        raise JiraError(403, ["You do not have permission to view the index summary."])
    count = len(site.issues)
    last = max((i.updated for i in site.issues.values()), default=0)
    in_index = count - max(1, count // 10) if site.index_corrupted else count
    last_index = last - 3_600_000 if site.index_corrupted and last else last
    return JSONResponse({
        "nodeId": f"{site.name}-node-1",
        "reportTime": jira_time(int(time.time() * 1000)),
        "issueIndex": {
            "indexReadable": True,
            "countInDatabase": count,
            "countInIndex": in_index,
            "countInArchive": 0,
            "lastUpdatedInDatabase": jira_time(last) if last else None,
            "lastUpdatedInIndex": jira_time(last_index) if last_index else None,
        },
        "replicationQueues": {},
    })


def routes() -> list:
    from starlette.routing import Route

    table = [
        ("/serverInfo", ["GET"], server_info, "getServerInfo"),
        ("/myself", ["GET"], myself, "getCurrentUser"),
        ("/field", ["GET"], fields, "getFields"),
        ("/issueLinkType", ["GET"], link_types, "getIssueLinkTypes"),
        ("/project/search", ["GET"], project_search, "searchProjects"),
        ("/project", ["GET"], all_projects, "getAllProjects"),
        ("/project/{projectIdOrKey}", ["GET"], get_project, "getProject"),
        ("/search", ["GET", "POST"], legacy_search, "searchForIssuesUsingJql"),
    ]
    return api_routes(table) + [Route("/rest/api/2/index/summary", index_summary, methods=["GET"], name="getIndexSummary")]
