"""Jira Cloud-shaped JSON for the model's records.

Shapes follow the v3 OpenAPI schemas (IssueBean, UserDetails, StatusDetails, IssueTypeDetails,
IssueLink, Version, ProjectComponent) and captured Cloud payloads: ids are strings in REST
(`"id": "10213"`) except where Jira uses numbers (statusCategory.id, sprint ids).
"""
from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Iterable

from jirasim.model import (
    PRIORITIES,
    SPRINT_FIELD,
    START_DATE_FIELD,
    STATUS_CATEGORIES,
    STORY_POINTS_FIELD,
    Component,
    Issue,
    IssueType,
    Link,
    LinkType,
    Project,
    Site,
    Sprint,
    Status,
    User,
    Version,
)


# The REST API version being answered: "3" (ADF descriptions) or "2" (plain-text descriptions);
# `self` links follow it. REST handlers set it per request; everything else renders v3.
API_VERSION: ContextVar[str] = ContextVar("jirasim_api_version", default="3")


def adf(text: str) -> dict:
    """Plain text → a minimal Atlassian Document (what v3 shows for a v2-written description)."""
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}] if text else []}


def jira_time(ms: int) -> str:
    """Epoch ms → Jira's `2024-07-26T16:22:24.349+0000` (the site time zone here is UTC)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def _avatars(seed: str) -> dict[str, str]:
    base = f"https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/{seed}"
    return {size: f"{base}/{size}.png" for size in ("48x48", "24x24", "16x16", "32x32")}


def render_user(user: User, site: Site | None = None, *, email: bool = False) -> dict:
    """UserDetails. Jira hides `emailAddress` behind the user's profile visibility; we show it only
    when asked (the user looking at themself, e.g. /myself)."""
    out: dict[str, Any] = {}
    if site is not None:
        out["self"] = f"{site.base_url}/rest/api/{API_VERSION.get()}/user?accountId={user.account_id}"
    out["accountId"] = user.account_id
    if email and user.account_type == "atlassian":
        out["emailAddress"] = user.email
    out["avatarUrls"] = _avatars(user.account_id)
    out["displayName"] = user.display_name
    out["active"] = user.active
    out["timeZone"] = user.time_zone
    out["accountType"] = user.account_type
    return out


def render_status(site: Site, st: Status) -> dict:
    cid, cname, color = STATUS_CATEGORIES[st.category]
    return {
        "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/status/{st.id}",
        "description": "",
        "iconUrl": f"{site.base_url}/",
        "name": st.name,
        "id": str(st.id),
        "statusCategory": {
            "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/statuscategory/{cid}",
            "id": cid,
            "key": st.category,
            "colorName": color,
            "name": cname,
        },
    }


def render_issuetype(site: Site, it: IssueType) -> dict:
    return {
        "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/issuetype/{it.id}",
        "id": str(it.id),
        "description": it.description,
        "iconUrl": f"{site.base_url}/rest/api/2/universal_avatar/view/type/issuetype/avatar/{10300 + it.id % 100}?size=medium",
        "name": it.name,
        "subtask": it.subtask,
        "avatarId": 10300 + it.id % 100,
        "hierarchyLevel": it.hierarchy_level,
    }


def render_project_ref(site: Site, p: Project) -> dict:
    return {
        "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/project/{p.id}",
        "id": str(p.id),
        "key": p.key,
        "name": p.name,
        "projectTypeKey": p.project_type_key,
        "simplified": False,
        "avatarUrls": {s: f"{site.base_url}/rest/api/{API_VERSION.get()}/universal_avatar/view/type/project/avatar/10400?size={n}"
                       for s, n in (("48x48", "large"), ("24x24", "small"), ("16x16", "xsmall"), ("32x32", "medium"))},
    }


def render_project(site: Site, p: Project, *, expand: Iterable[str] = ()) -> dict:
    out = {"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight", **render_project_ref(site, p)}
    out["isPrivate"] = False
    out["properties"] = {}
    if "lead" in expand and p.lead_account_id in site.users:
        out["lead"] = render_user(site.users[p.lead_account_id], site)
    if "issueTypes" in expand:
        out["issueTypes"] = [render_issuetype(site, it) for it in site.issue_types.values()]
    return out


def render_version(site: Site, v: Version) -> dict:
    out: dict[str, Any] = {
        "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/version/{v.id}",
        "id": str(v.id),
        "description": "",
        "name": v.name,
        "archived": v.archived,
        "released": v.released,
    }
    if v.release_date:
        out["releaseDate"] = v.release_date
    return out


def render_component(site: Site, c: Component) -> dict:
    return {"self": f"{site.base_url}/rest/api/{API_VERSION.get()}/component/{c.id}", "id": str(c.id), "name": c.name}


def render_sprint(s: Sprint) -> dict:
    out: dict[str, Any] = {"id": s.id, "name": s.name, "state": s.state, "boardId": s.board_id, "goal": s.goal}
    if s.start_date:
        out["startDate"] = s.start_date
    if s.end_date:
        out["endDate"] = s.end_date
    return out


def render_link_type(site: Site, lt: LinkType) -> dict:
    return {"id": str(lt.id), "name": lt.name, "inward": lt.inward, "outward": lt.outward,
            "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/issueLinkType/{lt.id}"}


def render_priority(site: Site, pid: int) -> dict:
    return {"self": f"{site.base_url}/rest/api/{API_VERSION.get()}/priority/{pid}",
            "iconUrl": f"{site.base_url}/images/icons/priorities/{PRIORITIES[pid].lower()}.svg",
            "name": PRIORITIES[pid], "id": str(pid)}


def _issue_ref(site: Site, issue: Issue) -> dict:
    """The short form Jira nests for parents, sub-tasks and linked issues."""
    fields: dict[str, Any] = {
        "summary": issue.summary,
        "status": render_status(site, site.statuses[issue.status_id]),
        "priority": render_priority(site, issue.priority_id),
        "issuetype": render_issuetype(site, site.issue_types[issue.issuetype_id]),
    }
    return {"id": str(issue.id), "key": issue.key, "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/issue/{issue.id}",
            "fields": fields}


def render_issue_link(site: Site, link: Link, issue: Issue) -> dict:
    """One `issuelinks` entry as seen from `issue`: only the *other* end is present."""
    lt = site.link_types[link.type_id]
    out: dict[str, Any] = {"id": str(link.id), "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/issueLink/{link.id}",
                           "type": render_link_type(site, lt)}
    if link.source_id == issue.id:
        out["outwardIssue"] = _issue_ref(site, site.issues[link.destination_id])
    else:
        out["inwardIssue"] = _issue_ref(site, site.issues[link.source_id])
    return out


def render_link(site: Site, link: Link) -> dict:
    """GET /issueLink/{id}: both ends, named as in the POST that creates it (inwardIssue = source)."""
    lt = site.link_types[link.type_id]
    return {
        "id": str(link.id),
        "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/issueLink/{link.id}",
        "type": render_link_type(site, lt),
        "inwardIssue": _issue_ref(site, site.issues[link.source_id]),
        "outwardIssue": _issue_ref(site, site.issues[link.destination_id]),
    }


# --- field selection ------------------------------------------------------------------------------

def select_fields(site: Site, spec: Iterable[str] | str | None, *, default: str = "*all") -> set[str]:
    """Jira's `fields` parameter → the set of field ids to render.

    `*all` all fields, `*navigable` navigable ones, names listed explicitly, `-name` excludes; the
    list is comma-separated and may repeat. No spec → `default` (`*all` for GET issue, `*navigable`
    for the legacy search, `id` for search/jql where nothing but ids comes back). Unknown names are
    ignored, as Jira does.
    """
    if spec is None:
        parts = [default]
    elif isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",")]
    else:
        parts = [q.strip() for p in spec for q in str(p).split(",")]
    parts = [p for p in parts if p]
    if not parts:
        parts = [default]
    include: set[str] = set()
    exclude: set[str] = set()
    for p in parts:
        if p == "*all":
            include |= set(site.fields)
        elif p == "*navigable":
            include |= {f.id for f in site.fields.values() if f.navigable}
        elif p.startswith("-"):
            exclude.add(p[1:])
        elif p in ("id", "key"):
            continue
        elif p in site.fields:
            include.add(p)
        else:
            # Names are accepted too (e.g. "Start date"), like fieldsByKeys-less Jira does for cf names.
            match = next((f.id for f in site.fields.values() if f.name.lower() == p.lower()), None)
            if match:
                include.add(match)
    # Pseudo fields never rendered under `fields`.
    include -= {"issuekey", "thumbnail", "statusCategory"}
    return include - exclude


def _field_value(site: Site, issue: Issue, fid: str) -> Any:
    fid = site.usual_field_id(fid)  # a custom field this site numbers its own way
    if fid == "summary":
        return issue.summary
    if fid == "description":
        d = issue.description
        if API_VERSION.get() == "2":
            return _plain_text(d) if isinstance(d, dict) else d
        return adf(d) if isinstance(d, str) else d
    if fid == "issuetype":
        return render_issuetype(site, site.issue_types[issue.issuetype_id])
    if fid == "status":
        return render_status(site, site.statuses[issue.status_id])
    if fid == "project":
        return render_project_ref(site, site.projects[issue.project_id])
    if fid == "parent":
        parent = site.issues.get(issue.parent_id) if issue.parent_id is not None else None
        return _issue_ref(site, parent) if parent else _MISSING
    if fid == "priority":
        return render_priority(site, issue.priority_id)
    if fid in ("assignee", "reporter"):
        acc = getattr(issue, fid)
        return render_user(site.users[acc], site) if acc in site.users else None
    if fid == "created":
        return jira_time(issue.created)
    if fid == "updated":
        return jira_time(issue.updated)
    if fid == "duedate":
        return issue.duedate
    if fid == "labels":
        return list(issue.labels)
    if fid == "fixVersions":
        return [render_version(site, site.versions[v]) for v in issue.fix_version_ids if v in site.versions]
    if fid == "components":
        return [render_component(site, site.components[c]) for c in issue.component_ids if c in site.components]
    if fid == "issuelinks":
        return [render_issue_link(site, site.links[lid], issue) for lid in issue.link_ids if lid in site.links]
    if fid == "subtasks":
        return [_issue_ref(site, site.issues[k]) for k in site.children.get(issue.id, ())
                if k in site.issues and site.issue_types[site.issues[k].issuetype_id].subtask]
    if fid == "resolution":
        if site.statuses[issue.status_id].category == "done":
            return {"self": f"{site.base_url}/rest/api/{API_VERSION.get()}/resolution/10000", "id": "10000", "description": "Work has been completed on this issue.", "name": "Done"}
        return None
    if fid == "resolutiondate":
        return jira_time(issue.updated) if site.statuses[issue.status_id].category == "done" else None
    if fid == START_DATE_FIELD:
        return issue.start_date
    if fid == STORY_POINTS_FIELD:
        return issue.story_points
    if fid == SPRINT_FIELD:
        return [render_sprint(site.sprints[s]) for s in issue.sprint_ids if s in site.sprints] or None
    if fid == "comment":
        return {"comments": [], "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/issue/{issue.id}/comment", "maxResults": 0, "total": 0, "startAt": 0}
    if fid == "attachment":
        return []
    if fid == "worklog":
        return {"startAt": 0, "maxResults": 20, "total": 0, "worklogs": []}
    return _MISSING


_MISSING = object()

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"


def render_issue(site: Site, issue: Issue, fields: Iterable[str] | str | set[str] | None = None,
                 expand: Iterable[str] | str | None = None, *, default_fields: str = "*all") -> dict:
    """IssueBean. `fields`: a `fields` parameter (list or comma string) or an already selected set
    (from `select_fields`); None → `default_fields`. `expand`: `names`, `schema`, `changelog`
    are honoured; others are accepted and ignored."""
    selected = fields if isinstance(fields, set) else select_fields(site, fields, default=default_fields)
    expands = _split(expand)
    out: dict[str, Any] = {
        "expand": ISSUE_EXPAND,
        "id": str(issue.id),
        "self": f"{site.base_url}/rest/api/{API_VERSION.get()}/issue/{issue.id}",
        "key": issue.key,
    }
    values: dict[str, Any] = {}
    # Jira renders the fields in its own order; keep the site's field order for stable output.
    for fid in site.fields:
        if fid in selected:
            v = _field_value(site, issue, fid)
            if v is not _MISSING:
                values[fid] = v
    out["fields"] = values
    if "names" in expands:
        out["names"] = {fid: site.fields[fid].name for fid in values}
    if "schema" in expands:
        out["schema"] = {fid: site.fields[fid].schema for fid in values if site.fields[fid].schema}
    if "changelog" in expands:
        out["changelog"] = render_changelog_page(site, issue)
    return out


def render_changelog_page(site: Site, issue: Issue) -> dict:
    entries = site.changelogs.get(issue.id, [])
    histories = []
    for e in entries:
        h: dict[str, Any] = {"id": e["id"], "created": jira_time(e["created"]), "items": e["items"]}
        if e["author"] in site.users:
            h["author"] = render_user(site.users[e["author"]], site)
        histories.append(h)
    return {"startAt": 0, "maxResults": len(histories), "total": len(histories), "histories": histories}


def render_field(f) -> dict:  # noqa: ANN001 - model.Field
    out: dict[str, Any] = {
        "id": f.id,
        "key": f.id,
        "name": f.name,
        "custom": f.custom,
        "orderable": f.orderable,
        "navigable": f.navigable,
        "searchable": f.searchable,
        "clauseNames": list(f.clause_names),
    }
    if f.schema is not None:
        out["schema"] = f.schema
    return out


def _plain_text(doc: dict) -> str:
    from jirasim.model import _plain

    return _plain(doc) or ""


def _split(value: Iterable[str] | str | None) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {p.strip() for p in value.split(",") if p.strip()}
    return {q.strip() for p in value for q in str(p).split(",") if q.strip()}


def error_body(messages: Iterable[str] = (), errors: dict[str, str] | None = None) -> dict:
    """Jira's ErrorCollection."""
    return {"errorMessages": list(messages), "errors": dict(errors or {})}


class _EventRenderer:
    """How change events render issues and users (the model's `Site.renderer`): always the v3
    shape, whichever API version made the change, so listeners see one shape."""

    def issue(self, site: Site, issue: Issue) -> dict:
        token = API_VERSION.set("3")
        try:
            return render_issue(site, issue)
        finally:
            API_VERSION.reset(token)

    def user(self, site: Site, user: User) -> dict:
        return render_user(user, site)


EVENTS = _EventRenderer()
