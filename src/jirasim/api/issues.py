"""Issue read/edit and issue links — the write paths. Every change goes through `Site` methods, so
it bumps `updated`, lands in the changelog and emits a change event attributed to the caller."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jirasim.api.common import api_routes, bool_param, endpoint, json_object, list_param, no_content, visible_issue
from jirasim.auth import Caller, can
from jirasim.errors import NOT_FOUND_ISSUE, JiraError
from jirasim.model import EDITABLE_FIELDS, Issue, Site, SiteError, validate_fields
from jirasim.render import API_VERSION, render_issue, render_link

CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


@endpoint("READ")
async def get_issue(request: Request, site: Site, caller: Caller) -> Response:
    issue = visible_issue(site, caller, request.path_params["issueIdOrKey"])
    return JSONResponse(render_issue(site, issue, list_param(request, "fields"), list_param(request, "expand")))


def _current_refs(site: Site, issue: Issue, fid: str) -> list[dict]:
    ids = issue.fix_version_ids if fid == "fixVersions" else issue.component_ids
    return [{"id": str(i)} for i in ids]


def _same_ref(site: Site, fid: str, a: dict, b: dict) -> bool:
    pool = site.versions if fid == "fixVersions" else site.components
    def ident(ref: dict) -> Any:
        if ref.get("id") is not None:
            return str(ref["id"])
        return next((str(o.id) for o in pool.values() if o.name == ref.get("name")), ref.get("name"))
    return ident(a) == ident(b)


def _apply_update(site: Site, issue: Issue, update: dict, errors: dict[str, str]) -> dict[str, Any]:
    """`update: {field: [{set|add|remove: value}, …]}` → plain field values, from the current ones."""
    out: dict[str, Any] = {}
    for fid, ops in update.items():
        if not isinstance(ops, list) or not all(isinstance(o, dict) and len(o) == 1 for o in ops):
            errors[fid] = "Operations must be a list of objects with exactly one of set, add, remove, edit."
            continue
        value: Any = None
        if fid == "labels":
            value = list(issue.labels)
        elif fid in ("fixVersions", "components"):
            value = _current_refs(site, issue, fid)
        for op in ops:
            (verb, arg), = op.items()
            if verb == "set":
                value = arg
            elif verb == "add" and fid == "labels":
                if arg not in value:
                    value.append(arg)
            elif verb == "remove" and fid == "labels":
                value = [v for v in value if v != arg]
            elif verb == "add" and fid in ("fixVersions", "components") and isinstance(arg, dict):
                if not any(_same_ref(site, fid, v, arg) for v in value):
                    value.append(arg)
            elif verb == "remove" and fid in ("fixVersions", "components") and isinstance(arg, dict):
                value = [v for v in value if not _same_ref(site, fid, v, arg)]
            else:
                errors[fid] = f"Operation '{verb}' is not supported for field '{fid}'."
                break
        out[fid] = value
    return out


@endpoint("WRITE")
async def edit_issue(request: Request, site: Site, caller: Caller) -> Response:
    issue = visible_issue(site, caller, request.path_params["issueIdOrKey"])
    body = await json_object(request)
    fields = body.get("fields") or {}
    update = body.get("update") or {}
    if not isinstance(fields, dict) or not isinstance(update, dict):
        raise JiraError(400, ["'fields' and 'update' must be JSON objects."])
    if not can(site, caller, "EDIT_ISSUES", issue.project_id):
        raise JiraError(403, ["You do not have permission to edit issues in this project."])
    errors: dict[str, str] = {}
    for fid in set(fields) & set(update):
        errors[fid] = f"Field '{fid}' cannot be set in both 'fields' and 'update'."
    values = dict(fields)
    values.update(_apply_update(site, issue, {k: v for k, v in update.items() if k not in fields}, errors))
    for fid in values:
        if site.usual_field_id(fid) not in EDITABLE_FIELDS:
            errors[fid] = CANNOT_SET.format(fid)
        elif fid == "duedate" and not can(site, caller, "SCHEDULE_ISSUES", issue.project_id):
            # Without Schedule issues the due date is not on the edit screen.
            errors[fid] = CANNOT_SET.format(fid)
    if "description" in values and values["description"] is not None and not errors.get("description"):
        v3 = API_VERSION.get() == "3"
        if v3 and not isinstance(values["description"], dict):
            errors["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
        elif not v3 and not isinstance(values["description"], str):
            errors["description"] = "Operation value must be a string"
    # Report every bad value at once, as Jira does.
    _, value_errors = validate_fields(site, issue, {k: v for k, v in values.items() if k not in errors})
    errors.update(value_errors)
    if errors:
        raise JiraError(400, [], errors)
    try:
        site.edit_issue(issue, values, user=caller.account_id)
    except SiteError as exc:
        raise JiraError(exc.status, exc.messages, exc.errors) from None
    # notifyUsers / overrideScreenSecurity are accepted; notifications do not exist here.
    if bool_param(request, "returnIssue", False):
        return JSONResponse(render_issue(site, issue, None, list_param(request, "expand")))
    return no_content()


@endpoint("WRITE")
async def create_issue(request: Request, site: Site, caller: Caller) -> Response:
    body = await json_object(request)
    fields = body.get("fields")
    if not isinstance(fields, dict):
        raise JiraError(400, [], {"fields": "The 'fields' object is required."})
    fields = dict(fields)
    errors: dict[str, str] = {}
    project_ref = fields.pop("project", None)
    project = None
    if isinstance(project_ref, dict) and (project_ref.get("id") or project_ref.get("key")):
        project = site.project_by_key(str(project_ref.get("id") or project_ref.get("key")))
    if project is None or not can(site, caller, "BROWSE_PROJECTS", project.id):
        errors["project"] = "Specify a valid project ID or key"
    type_ref = fields.pop("issuetype", None)
    issue_type = None
    if isinstance(type_ref, dict) and (type_ref.get("id") or type_ref.get("name")):
        issue_type = site.issuetype_by_name(str(type_ref.get("id") or type_ref.get("name")))
    if issue_type is None:
        errors["issuetype"] = "Specify an issue type"
    summary = fields.pop("summary", None)
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    parent_ref = fields.pop("parent", None)
    parent = None
    if parent_ref is not None:
        if not isinstance(parent_ref, dict) or not (parent_ref.get("id") or parent_ref.get("key")):
            errors["parent"] = "Could not find issue by id or key."
        else:
            parent = site.issue(str(parent_ref.get("id") or parent_ref.get("key")))
            if parent is None:
                errors["parent"] = f"Could not find issue by id or key."
    for fid in fields:
        if site.usual_field_id(fid) not in EDITABLE_FIELDS:
            errors[fid] = CANNOT_SET.format(fid)
    if errors:
        raise JiraError(400, [], errors)
    if not can(site, caller, "EDIT_ISSUES", project.id):  # Create issues follows Edit issues here
        raise JiraError(403, ["You do not have permission to create issues in this project."])
    try:
        issue = site.create_issue(project, summary, issuetype=issue_type.id, parent=parent.id if parent else None,
                                  fields=fields, user=caller.account_id)
    except SiteError as exc:
        raise JiraError(400, exc.messages, exc.errors) from None
    return JSONResponse({"id": str(issue.id), "key": issue.key,
                         "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/issue/{issue.id}"}, status_code=201)


@endpoint("DELETE")
async def delete_issue(request: Request, site: Site, caller: Caller) -> Response:
    issue = visible_issue(site, caller, request.path_params["issueIdOrKey"])
    if not can(site, caller, "ADMINISTER_PROJECTS", issue.project_id):  # Delete issues: project admins
        raise JiraError(403, ["You do not have permission to delete issues in this project."])
    try:
        site.delete_issue(issue, user=caller.account_id, delete_subtasks=bool_param(request, "deleteSubtasks", False))
    except SiteError as exc:
        raise JiraError(exc.status, exc.messages, exc.errors) from None
    return no_content()


def _issue_ref(site: Site, caller: Caller, ref: Any, what: str) -> Issue:
    if not isinstance(ref, dict) or not (ref.get("id") or ref.get("key")):
        raise JiraError(400, [], {what: f"{what} is required: give its id or key."})
    issue = site.issue(str(ref.get("id") or ref.get("key")))
    if issue is None or not can(site, caller, "BROWSE_PROJECTS", issue.project_id):
        raise JiraError(404, [NOT_FOUND_ISSUE])
    return issue


@endpoint("WRITE")
async def link_issues(request: Request, site: Site, caller: Caller) -> Response:
    body = await json_object(request)
    type_ref = body.get("type")
    if not isinstance(type_ref, dict) or not (type_ref.get("id") or type_ref.get("name")):
        raise JiraError(400, [], {"issueLinkType": "Issue link type is required: give its id or name."})
    link_type = site.link_type(type_ref)
    if link_type is None:
        raise JiraError(400, [f"No issue link type with name '{type_ref.get('name') or type_ref.get('id')}' found."])
    # Jira's naming: the request's inwardIssue is the link's source (it *blocks* the outwardIssue).
    source = _issue_ref(site, caller, body.get("inwardIssue"), "inwardIssue")
    destination = _issue_ref(site, caller, body.get("outwardIssue"), "outwardIssue")
    if not can(site, caller, "LINK_ISSUES", source.project_id):
        # The spec documents 404 (not 403) for a missing Link issues permission.
        raise JiraError(404, [f"No Link Issue Permission for issue '{source.key}'."])
    try:
        site.add_link(link_type, source, destination, user=caller.account_id)
    except SiteError as exc:
        raise JiraError(exc.status, exc.messages, exc.errors) from None
    return no_content(201)


def _link(site: Site, caller: Caller, raw_id: str):  # noqa: ANN202
    if not raw_id.isdigit():
        raise JiraError(400, [f"The issue link ID '{raw_id}' is invalid."])
    link = site.links.get(int(raw_id))
    if link is None or not all(
        can(site, caller, "BROWSE_PROJECTS", site.issues[i].project_id) for i in (link.source_id, link.destination_id)
    ):
        raise JiraError(404, [f"No issue link with id '{raw_id}' exists."])
    return link


@endpoint("READ")
async def get_link(request: Request, site: Site, caller: Caller) -> Response:
    link = _link(site, caller, request.path_params["linkId"])
    return JSONResponse(render_link(site, link))


@endpoint("DELETE")
async def delete_link(request: Request, site: Site, caller: Caller) -> Response:
    link = _link(site, caller, request.path_params["linkId"])
    projects = {site.issues[link.source_id].project_id, site.issues[link.destination_id].project_id}
    if not any(can(site, caller, "LINK_ISSUES", p) for p in projects):
        raise JiraError(404, ["You do not have the permission to delete this issue link."])  # 404, per the spec
    site.remove_link(link.id, user=caller.account_id)
    return no_content()


def routes() -> list:
    table = [
        ("/issue/{issueIdOrKey}", ["GET"], get_issue, "getIssue"),
        ("/issue/{issueIdOrKey}", ["PUT"], edit_issue, "editIssue"),
        ("/issue/{issueIdOrKey}", ["DELETE"], delete_issue, "deleteIssue"),
        ("/issue", ["POST"], create_issue, "createIssue"),
        ("/issueLink", ["POST"], link_issues, "linkIssues"),
        ("/issueLink/{linkId}", ["GET"], get_link, "getIssueLink"),
        ("/issueLink/{linkId}", ["DELETE"], delete_link, "deleteIssueLink"),
    ]
    return api_routes(table)
