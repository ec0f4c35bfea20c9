"""From Jira's issue JSON to a task row and to the facts the WBS builders need. Pure.

Only what BoxSync stores is kept: a full sync streams bulkfetch pages through `task_row` and drops
the JSON, so memory follows the number of tasks, not the size of Jira's answers.
"""
from __future__ import annotations

import datetime as dt
import sys
from typing import Any, Iterable, Mapping

from boxsync.boxes import wbs
from boxsync.boxes.mapping import PROGRESS_BY_CATEGORY, STATUS_CATEGORY, FieldMapping
from boxsync.boxes.model import TASK_MODES

# What a full sync reads of every issue, beside the mapped fields and the site's sprint field.
BASE_FIELDS = ("summary", "issuetype", "status", "assignee", "project", "parent", "fixVersions",
               "components", "issuelinks", "updated")
# Jira's single-select "Task mode" options, as BigPicture names them, to ours.
_MODE_NAMES = {"auto basic": "auto-basic", "auto bottom up": "auto-bottom-up", "auto bottom-up": "auto-bottom-up",
               "auto top down": "auto-top-down", "auto top-down": "auto-top-down", "manual": "manual",
               "lock": "locked", "locked": "locked"}


def fields_to_read(mapping_fields: Iterable[str], sprint_field: str | None) -> list[str]:
    wanted = list(BASE_FIELDS)
    for name in sorted(set(mapping_fields) | ({sprint_field} if sprint_field else set())):
        if name not in wanted:
            wanted.append(name)
    return wanted


def jira_date(value: Any) -> dt.date | None:
    """A Jira date ("2026-11-23") or datetime ("2026-11-23T09:00:00.000+0000") as a date."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _progress(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return max(0.0, min(100.0, float(value)))
    return None


def _mode(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("value") or value.get("name")
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if text in TASK_MODES else _MODE_NAMES.get(text)


_SHARED: dict[tuple, tuple] = {}  # one object per distinct group value: a version sits on many tasks


def shared(value: tuple) -> tuple:
    found = _SHARED.get(value)
    if found is None:
        if len(_SHARED) > 200_000:
            _SHARED.clear()
        found = _SHARED[value] = value
    return found


def _groups(values: Any, rank) -> tuple[tuple, ...]:  # noqa: ANN001
    """((id, name, rank, start, end), ...): tuples, shared between the tasks holding the same value
    (a Box of 100,000 tasks holds its rows in memory while its WBS is built)."""
    out = []
    for v in values or []:
        if isinstance(v, dict) and v.get("id") is not None:
            out.append(shared((int(v["id"]), sys.intern(str(v.get("name") or v["id"])), *rank(v))))
    return shared(tuple(out))


def _version_rank(v: Mapping[str, Any]) -> list[Any]:
    date = v.get("releaseDate")
    return (date or "9999-12-31", date, date)  # rank, start, end (a version ends on release)


def _sprint_rank(v: Mapping[str, Any]) -> list[Any]:
    start, end = jira_date(v.get("startDate")), jira_date(v.get("endDate"))
    return (start.isoformat() if start else "9999-12-31", start and start.isoformat(), end and end.isoformat())


def _component_rank(v: Mapping[str, Any]) -> list[Any]:
    return (sys.intern(str(v.get("name", "")).lower()), None, None)


def _links(issue_id: int, entries: Any) -> tuple[tuple[int, int, int, int], ...]:
    """((linkId, typeId, outwardSideIssueId, inwardSideIssueId), ...): "source <outward> destination"."""
    out = []
    for link in entries or []:
        try:
            link_id, type_id = int(link["id"]), int(link["type"]["id"])
            if "outwardIssue" in link:  # this issue <outward> the other ("A blocks B", seen on A)
                out.append((link_id, type_id, issue_id, int(link["outwardIssue"]["id"])))
            elif "inwardIssue" in link:  # the other <outward> this issue
                out.append((link_id, type_id, int(link["inwardIssue"]["id"]), issue_id))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out)


def _intern(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


def stored_structure(value: Any) -> tuple:
    """A JSON column read back (lists) in the form task_row makes (tuples), so the two compare."""
    return shared(tuple(shared(tuple(v)) for v in value or ()))


def task_row(issue: Mapping[str, Any], mapping_of: Any, sprint_field: str | None,
             default_mode: str) -> dict[str, Any]:
    """The `tasks` values of one issue (without tenant, connection and sync time).

    `mapping_of(project_key)` gives the project's FieldMapping. Values whose mapping is "not
    synchronized" are left out, so that what BoxSync holds for them is kept."""
    f = issue.get("fields") or {}
    issue_id = int(issue["id"])
    project = f.get("project") or {}
    itype = f.get("issuetype") or {}
    status = f.get("status") or {}
    category = (status.get("statusCategory") or {}).get("key") or "new"
    assignee = f.get("assignee") or {}
    parent = f.get("parent") or {}
    key = str(project.get("key") or "")
    mapping: FieldMapping = mapping_of(key)
    row: dict[str, Any] = {
        "issue_id": issue_id,
        "issue_key": str(issue.get("key") or issue_id),
        "summary": str(f.get("summary") or ""),
        "issue_type": sys.intern(str(itype.get("name") or "")),
        "hierarchy_level": int(itype.get("hierarchyLevel", -1 if itype.get("subtask") else 0)),
        "project_id": int(project.get("id") or 0),
        "project_key": sys.intern(key),
        "project_name": sys.intern(str(project.get("name") or key)),
        "status": sys.intern(str(status.get("name") or "")),
        "status_category": sys.intern(category),
        "assignee": _intern(assignee.get("accountId")),
        "assignee_name": _intern(assignee.get("displayName")),
        "parent_issue_id": int(parent["id"]) if parent.get("id") else None,
        "jira_updated": str(f.get("updated") or ""),
        "versions": _groups(f.get("fixVersions"), _version_rank),
        "sprints": _groups(f.get(sprint_field) if sprint_field else None, _sprint_rank),
        "components": _groups(f.get("components"), _component_rank),
        "links": _links(issue_id, f.get("issuelinks")),
    }
    for attr, column in (("start", "start_date"), ("end", "end_date"), ("baselineStart", "baseline_start"),
                         ("baselineEnd", "baseline_end")):
        field_id = getattr(mapping, attr)
        if field_id:
            row[column] = jira_date(f.get(field_id))
    if mapping.progress == STATUS_CATEGORY:
        row["progress"] = PROGRESS_BY_CATEGORY.get(category, 0.0)
    elif mapping.progress:
        row["progress"] = _progress(f.get(mapping.progress))
    if mapping.taskMode:
        row["task_mode"] = _mode(f.get(mapping.taskMode)) or default_mode
    return row


_GROUPS: dict[tuple, wbs.Group] = {}  # one Group object per distinct value: a version sits on many tasks


def _group(values: Any) -> tuple[wbs.Group, ...]:
    out = []
    for v in values or ():
        key = tuple(v)
        group = _GROUPS.get(key)
        if group is None:
            if len(_GROUPS) > 100_000:
                _GROUPS.clear()
            group = _GROUPS[key] = wbs.Group(id=int(v[0]), name=str(v[1]), rank=(v[2], str(v[1]).lower(), int(v[0])),
                                             start=v[3], end=v[4])
        out.append(group)
    return tuple(out)


def _issue_number(key: str) -> int:
    try:
        return int(key.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def facts(row: Mapping[str, Any]) -> wbs.TaskFacts:
    """What the structure builders need of a stored task."""
    return wbs.TaskFacts(
        issue_id=int(row["issue_id"]),
        key=row["issue_key"],
        order=(row["project_key"], _issue_number(row["issue_key"]), int(row["issue_id"])),
        hierarchy_level=int(row["hierarchy_level"]),
        parent_id=row["parent_issue_id"],
        project=wbs.Group(id=int(row["project_id"]), name=row["project_name"], rank=(row["project_key"],)),
        versions=_group(row["versions"]),
        sprints=_group(row["sprints"]),
        components=_group(row["components"]),
        links=tuple(wbs.Link(id=int(l[0]), type_id=int(l[1]), source_id=int(l[2]), destination_id=int(l[3]))
                    for l in row["links"] or []),
    )
