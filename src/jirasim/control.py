"""The test tool's side door: `/_jirasim/…`, no auth (loopback only), JSON in and out.

It plays people working in Jira (create/edit/delete/move issues, add/remove links — each emitting
the same change events a UI edit would), sets faults, reads counters, reseeds data, changes
permissions and flips the corrupted-index switch. Bad input is a 400 with `{"error": "…"}`.

Endpoints (the acting user is `user`: an accountId or email, default the site admin):
  GET    /_jirasim/site                       → {name, baseUrl, issues, projects[], users[]}
  POST   /_jirasim/issues   {project, summary, issuetype?, status?, parent?, fields?, user?} → 201 issue
  GET    /_jirasim/issues/{key}               → issue (all fields, no permission checks)
  PUT    /_jirasim/issues/{key}  {fields, user?}   → 200 {issue, changelog}
  DELETE /_jirasim/issues/{key}?user=…        → 204
  POST   /_jirasim/issues/{key}/move {project, user?} → 200 issue (new key; the old one still resolves)
  POST   /_jirasim/links  {type, source, destination, user?}  → 201 {id, …link event shape}
         (`inwardIssue`/`outwardIssue` accepted as in Jira's POST /issueLink: inward = source)
  DELETE /_jirasim/links/{id}?user=…          → 204
  GET    /_jirasim/faults                     → {faults: [...]}
  POST   /_jirasim/faults  {kind, endpoint?, method?, caller?, count?, probability?, seconds?,
                            status?, retry_after?, reason?, seed?}   → 201 fault
  DELETE /_jirasim/faults                     → 204 (all)     DELETE /_jirasim/faults/{id} → 204
  GET    /_jirasim/counters                   → {total, endpoints, routes, callers, byEndpointAndCaller, statuses}
  GET    /_jirasim/rate-limits                → {burst, quota, issueWrites, quotaUsage, rejected}
  PUT    /_jirasim/rate-limits {burst?: {rate, capacity?}, quota?: {points, window?},
                                issueWrites?: {rate, capacity?}}  → 200 (replaces all; usage forgotten)
  DELETE /_jirasim/rate-limits                → 204 (no limits, as by default)
  DELETE /_jirasim/counters                   → 204 (reset)
  POST   /_jirasim/reset  {issues?, projects?, seed?} → 200 site summary (apps, tokens, listeners kept)
  POST   /_jirasim/users  {email, displayName, apiToken?, permissions?, active?} → 201 user
  PUT    /_jirasim/permissions {accountId|email, permissions:[…], project?: key}  → 200 user
  PUT    /_jirasim/index  {corrupted: bool}   → 200 {corrupted}
"""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jirasim.model import DEFAULT_ADMIN_ACCOUNT_ID, Link, Site, SiteError, _link_event
from jirasim.render import render_issue


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _site(request: Request) -> Site:
    return request.app.state.site


async def _body(request: Request) -> dict[str, Any]:
    import json

    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _user(site: Site, ref: Any) -> str:
    if ref is None:
        return DEFAULT_ADMIN_ACCOUNT_ID
    if ref in site.users:
        return ref
    user = site.user_by_email(str(ref))
    if user is None:
        raise BadRequest(f"unknown user {ref!r}")
    return user.account_id


def _issue(site: Site, key: str):  # noqa: ANN202
    issue = site.issue(key)
    if issue is None:
        raise BadRequest(f"no issue {key!r}", 404)
    return issue


def _site_error(exc: SiteError) -> JSONResponse:
    # Anything the model rejects is bad input here (missing paths are 404 before we get this far).
    return JSONResponse({"error": str(exc), "errorMessages": exc.messages, "errors": exc.errors}, status_code=400)


def _wrap(fn):  # noqa: ANN001, ANN202
    async def handler(request: Request) -> Response:
        try:
            return await fn(request, _site(request))
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except SiteError as exc:
            return _site_error(exc)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    handler.__name__ = fn.__name__
    return handler


def summary(site: Site) -> dict[str, Any]:
    return {
        "name": site.name,
        "baseUrl": site.base_url,
        "issues": len(site.issues),
        "links": len(site.links),
        "projects": [{"id": p.id, "key": p.key, "name": p.name} for p in site.projects.values()],
        "users": [{"accountId": u.account_id, "email": u.email, "displayName": u.display_name, "active": u.active,
                   "apiToken": u.api_token, "accountType": u.account_type,
                   "defaultPermissions": sorted(u.default_permissions),
                   "projectPermissions": {site.projects[p].key if p in site.projects else str(p): sorted(v)
                                          for p, v in u.project_permissions.items()},
                   "globalPermissions": sorted(u.global_permissions)} for u in site.users.values()],
        "apps": sorted(site.apps),
        "indexCorrupted": site.index_corrupted,
    }


async def get_site(request: Request, site: Site) -> Response:
    return JSONResponse(summary(site))


async def create_issue(request: Request, site: Site) -> Response:
    body = await _body(request)
    for required in ("project", "summary"):
        if not body.get(required):
            raise BadRequest(f"{required} is required")
    fields = body.get("fields") or {}
    if not isinstance(fields, dict):
        raise BadRequest("fields must be an object")
    issue = site.create_issue(body["project"], body["summary"], issuetype=body.get("issuetype", "Task"),
                              status=body.get("status"), parent=body.get("parent"), fields=fields,
                              user=_user(site, body.get("user")))
    return JSONResponse(render_issue(site, issue), status_code=201)


async def get_issue(request: Request, site: Site) -> Response:
    return JSONResponse(render_issue(site, _issue(site, request.path_params["key"])))


async def edit_issue(request: Request, site: Site) -> Response:
    issue = _issue(site, request.path_params["key"])
    body = await _body(request)
    fields = body.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise BadRequest("fields must be a non-empty object")
    changelog = site.edit_issue(issue, fields, user=_user(site, body.get("user")))
    return JSONResponse({"issue": render_issue(site, issue), "changelog": changelog})


async def delete_issue(request: Request, site: Site) -> Response:
    issue = _issue(site, request.path_params["key"])
    site.delete_issue(issue, user=_user(site, request.query_params.get("user")))
    return Response(status_code=204)


async def move_issue(request: Request, site: Site) -> Response:
    issue = _issue(site, request.path_params["key"])
    body = await _body(request)
    if not body.get("project"):
        raise BadRequest("project is required")
    site.move_issue(issue, body["project"], user=_user(site, body.get("user")))
    return JSONResponse(render_issue(site, issue))


def _link_json(site: Site, link: Link) -> dict:
    return _link_event(site.link_types[link.type_id], link)


async def add_link(request: Request, site: Site) -> Response:
    body = await _body(request)
    source = body.get("source", body.get("inwardIssue"))
    destination = body.get("destination", body.get("outwardIssue"))
    if isinstance(source, dict):
        source = source.get("id") or source.get("key")
    if isinstance(destination, dict):
        destination = destination.get("id") or destination.get("key")
    link_type = body.get("type", "Blocks")
    if not source or not destination:
        raise BadRequest("source and destination are required")
    for ref in (source, destination):
        if site.issue(str(ref)) is None:
            raise BadRequest(f"no issue {ref!r}", 404)
    link = site.add_link(link_type, str(source), str(destination), user=_user(site, body.get("user")))
    return JSONResponse(_link_json(site, link), status_code=201)


async def remove_link(request: Request, site: Site) -> Response:
    raw = request.path_params["link_id"]
    if not raw.isdigit() or int(raw) not in site.links:
        raise BadRequest(f"no link {raw!r}", 404)
    site.remove_link(int(raw), user=_user(site, request.query_params.get("user")))
    return Response(status_code=204)


async def list_faults(request: Request, site: Site) -> Response:
    return JSONResponse({"faults": [f.to_json() for f in site.traffic.faults]})


async def add_fault(request: Request, site: Site) -> Response:
    fault = site.traffic.add_fault(await _body(request))
    return JSONResponse(fault.to_json(), status_code=201)


async def clear_faults(request: Request, site: Site) -> Response:
    site.traffic.clear_faults()
    return Response(status_code=204)


async def delete_fault(request: Request, site: Site) -> Response:
    raw = request.path_params["fault_id"]
    before = len(site.traffic.faults)
    site.traffic.faults[:] = [f for f in site.traffic.faults if str(f.id) != raw]
    if len(site.traffic.faults) == before:
        raise BadRequest(f"no fault {raw!r}", 404)
    return Response(status_code=204)


async def get_counters(request: Request, site: Site) -> Response:
    return JSONResponse(site.traffic.counters_json())


async def reset_counters(request: Request, site: Site) -> Response:
    site.traffic.reset_counters()
    return Response(status_code=204)


async def get_rate_limits(request: Request, site: Site) -> Response:
    return JSONResponse(site.rate_limits.to_json())


async def set_rate_limits(request: Request, site: Site) -> Response:
    site.rate_limits.configure(await _body(request))  # ValueError → 400, limits unchanged
    return JSONResponse(site.rate_limits.to_json())


async def clear_rate_limits(request: Request, site: Site) -> Response:
    site.rate_limits.configure({})
    return Response(status_code=204)


async def reset(request: Request, site: Site) -> Response:
    from jirasim.generator import populate

    body = await _body(request)
    issues = body.get("issues", 0)
    seed = body.get("seed", request.app.state.sim.seed)
    projects = body.get("projects")
    if not isinstance(issues, int) or issues < 0:
        raise BadRequest("issues must be a non-negative integer")
    if projects is not None and not (isinstance(projects, int) or (isinstance(projects, list) and all(isinstance(p, str) for p in projects))):
        raise BadRequest("projects must be a count or a list of keys")
    admin = site.users[DEFAULT_ADMIN_ACCOUNT_ID]
    fresh = Site(site.name, site.base_url, admin_email=admin.email, admin_token=admin.api_token or "")
    populate(fresh, issues=issues, projects=projects, seed=seed)
    # Swap the data in place: apps, OAuth tokens, listeners, faults, counters and rate limits
    # belong to the running site, not to its content.
    keep = {"listeners", "renderer", "apps", "oauth_tokens", "traffic", "rate_limits", "name", "base_url", "cloud_id"}
    app_users = {a.app_account_id: site.users[a.app_account_id] for a in site.apps.values() if a.app_account_id in site.users}
    for attr, value in vars(fresh).items():
        if attr not in keep:
            setattr(site, attr, value)
    site.users.update(app_users)
    return JSONResponse(summary(site))


async def add_user(request: Request, site: Site) -> Response:
    body = await _body(request)
    if not body.get("email") or not body.get("displayName"):
        raise BadRequest("email and displayName are required")
    if site.user_by_email(body["email"]):
        raise BadRequest(f"a user with email {body['email']!r} exists")
    perms = body.get("permissions", ["BROWSE_PROJECTS", "EDIT_ISSUES", "LINK_ISSUES", "SCHEDULE_ISSUES"])
    user = site.add_user(body["email"], body["displayName"], api_token=body.get("apiToken"),
                         account_id=body.get("accountId"), active=bool(body.get("active", True)),
                         default_permissions=())
    site.set_permissions(user.account_id, perms)
    return JSONResponse(summary(site)["users"][-1] if list(site.users)[-1] == user.account_id else {}, status_code=201)


async def set_permissions(request: Request, site: Site) -> Response:
    body = await _body(request)
    account = _user(site, body.get("accountId") or body.get("email") or "")
    perms = body.get("permissions")
    if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
        raise BadRequest("permissions must be a list of permission keys")
    project_id = None
    if body.get("project") is not None:
        project = site.project_by_key(body["project"])
        if project is None:
            raise BadRequest(f"no project {body['project']!r}")
        project_id = project.id
    if "active" in body:
        site.users[account].active = bool(body["active"])
    site.set_permissions(account, perms, project_id)
    user = next(u for u in summary(site)["users"] if u["accountId"] == account)
    return JSONResponse(user)


async def set_index(request: Request, site: Site) -> Response:
    body = await _body(request)
    if not isinstance(body.get("corrupted"), bool):
        raise BadRequest("corrupted must be true or false")
    site.index_corrupted = body["corrupted"]
    return JSONResponse({"corrupted": site.index_corrupted})


def routes() -> list[Route]:
    p = "/_jirasim"
    table = [
        ("/site", ["GET"], get_site),
        ("/issues", ["POST"], create_issue),
        ("/issues/{key}", ["GET"], get_issue),
        ("/issues/{key}", ["PUT"], edit_issue),
        ("/issues/{key}", ["DELETE"], delete_issue),
        ("/issues/{key}/move", ["POST"], move_issue),
        ("/links", ["POST"], add_link),
        ("/links/{link_id}", ["DELETE"], remove_link),
        ("/faults", ["GET"], list_faults),
        ("/faults", ["POST"], add_fault),
        ("/faults", ["DELETE"], clear_faults),
        ("/faults/{fault_id}", ["DELETE"], delete_fault),
        ("/counters", ["GET"], get_counters),
        ("/counters", ["DELETE"], reset_counters),
        ("/rate-limits", ["GET"], get_rate_limits),
        ("/rate-limits", ["PUT"], set_rate_limits),
        ("/rate-limits", ["DELETE"], clear_rate_limits),
        ("/reset", ["POST"], reset),
        ("/users", ["POST"], add_user),
        ("/permissions", ["PUT"], set_permissions),
        ("/index", ["PUT"], set_index),
    ]
    return [Route(p + path, _wrap(fn), methods=methods, name=f"jirasim.{fn.__name__}") for path, methods, fn in table]
