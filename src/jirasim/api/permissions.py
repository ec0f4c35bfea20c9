"""Permission queries: `mypermissions` and the bulk `permissions/check`."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jirasim.api.common import api_routes, endpoint, json_object
from jirasim.auth import Caller, can
from jirasim.errors import JiraError
from jirasim.model import Site

# key → (id, name, type, description, the simulated permission that decides it)
PERMISSIONS: dict[str, tuple[str, str, str, str, str]] = {
    "ADMINISTER": ("0", "Administer Jira", "GLOBAL", "Create and administer projects, issue types, fields, workflows, and schemes for all projects.", "ADMINISTER"),
    "BROWSE_PROJECTS": ("10", "Browse Projects", "PROJECT", "Ability to browse projects and the issues within them.", "BROWSE_PROJECTS"),
    "CREATE_ISSUES": ("11", "Create Issues", "PROJECT", "Ability to create issues.", "EDIT_ISSUES"),
    "EDIT_ISSUES": ("12", "Edit Issues", "PROJECT", "Ability to edit issues.", "EDIT_ISSUES"),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "PROJECT", "Ability to assign issues to other people.", "EDIT_ISSUES"),
    "DELETE_ISSUES": ("16", "Delete Issues", "PROJECT", "Ability to delete issues.", "ADMINISTER_PROJECTS"),
    "LINK_ISSUES": ("21", "Link Issues", "PROJECT", "Ability to link issues together and create linked issues.", "LINK_ISSUES"),
    "ADMINISTER_PROJECTS": ("23", "Administer Projects", "PROJECT", "Ability to administer a project in Jira.", "ADMINISTER_PROJECTS"),
    "SCHEDULE_ISSUES": ("28", "Schedule Issues", "PROJECT", "Ability to view or edit an issue's due date.", "SCHEDULE_ISSUES"),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "PROJECT", "Ability to transition issues.", "EDIT_ISSUES"),
}
MAX_BULK = 1000


def _holds(site: Site, caller: Caller, key: str, project_id: int | None) -> bool:
    base = PERMISSIONS[key][4]
    return can(site, caller, base, project_id)


@endpoint("READ")
async def my_permissions(request: Request, site: Site, caller: Caller) -> Response:
    q = request.query_params
    raw = q.get("permissions")
    if not raw:
        raise JiraError(400, ["The permissions query parameter was not provided."])
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    unknown = [k for k in keys if k not in PERMISSIONS]
    if unknown:
        raise JiraError(400, [f"No project permissions with key {unknown[0]} exist."])
    project_id: int | None = None
    issue_ref = q.get("issueKey") or q.get("issueId")
    project_ref = q.get("projectKey") or q.get("projectId")
    if issue_ref:
        issue = site.issue(issue_ref)
        if issue is None or not can(site, caller, "BROWSE_PROJECTS", issue.project_id):
            raise JiraError(404, ["The issue was not found or you do not have permission to view it."])
        project_id = issue.project_id
    elif project_ref:
        project = site.project_by_key(project_ref)
        if project is None or not can(site, caller, "BROWSE_PROJECTS", project.id):
            raise JiraError(404, [f"No project could be found with key '{project_ref}'."])
        project_id = project.id
    out = {}
    for key in keys:
        pid, name, kind, description, _ = PERMISSIONS[key]
        # Without a project/issue context a project permission means "held in at least one project".
        out[key] = {"id": pid, "key": key, "name": name, "type": kind, "description": description,
                    "havePermission": _holds(site, caller, key, project_id)}
    return JSONResponse({"permissions": out})


@endpoint("READ")
async def bulk_check(request: Request, site: Site, caller: Caller) -> Response:
    body = await json_object(request)
    account_id = body.get("accountId")
    subject = caller
    if account_id is not None:
        if account_id not in site.users:
            raise JiraError(400, [], {"accountId": f"The user with account ID '{account_id}' does not exist."})
        # Checking someone else needs Administer Jira — except for a Connect app calling as itself.
        if account_id != caller.account_id and caller.kind != "app" and not can(site, caller, "ADMINISTER"):
            raise JiraError(403, ["Only Jira administrators can check other users' permissions."])
        subject = Caller("user", account_id, None, None)
    global_keys = body.get("globalPermissions") or []
    project_specs = body.get("projectPermissions") or []
    if not isinstance(global_keys, list) or not isinstance(project_specs, list):
        raise JiraError(400, ["globalPermissions and projectPermissions must be arrays."])
    errors: dict[str, str] = {}
    granted_global = []
    for key in global_keys:
        if key not in PERMISSIONS or PERMISSIONS[key][2] != "GLOBAL":
            errors["globalPermissions"] = f"Unrecognized global permission key: {key}"
        elif _holds(site, subject, key, None):
            granted_global.append(key)
    results = []
    for spec in project_specs:
        if not isinstance(spec, dict):
            raise JiraError(400, ["Each projectPermissions entry must be an object."])
        perms = spec.get("permissions") or []
        projects = spec.get("projects") or []
        issues = spec.get("issues") or []
        if len(projects) > MAX_BULK or len(issues) > MAX_BULK:
            raise JiraError(400, [f"You can check at most {MAX_BULK} projects and {MAX_BULK} issues."])
        if not all(isinstance(p, int) for p in projects) or not all(isinstance(i, int) for i in issues):
            raise JiraError(400, ["projects and issues must be arrays of ids."])
        for key in perms:
            if key not in PERMISSIONS or PERMISSIONS[key][2] != "PROJECT":
                errors["projectPermissions"] = f"Unrecognized project permission key: {key}"
                continue
            ok_projects = [p for p in projects if p in site.projects and _holds(site, subject, key, p)]
            ok_issues = [i for i in issues if i in site.issues
                         and can(site, subject, "BROWSE_PROJECTS", site.issues[i].project_id)
                         and _holds(site, subject, key, site.issues[i].project_id)]
            results.append({"permission": key, "projects": ok_projects, "issues": ok_issues})
    if errors:
        raise JiraError(400, [], errors)
    return JSONResponse({"globalPermissions": granted_global, "projectPermissions": results})


def routes() -> list:
    table = [
        ("/mypermissions", ["GET"], my_permissions, "getMyPermissions"),
        ("/permissions/check", ["POST"], bulk_check, "getBulkPermissions"),
    ]
    return api_routes(table)
