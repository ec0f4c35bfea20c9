"""What a Box is, as data: the allowed values, the JSON shape of the API, and validation of what a
client sends. Pure: no database, no Jira (the service checks what needs them: the parent exists,
the Box type was added, a link type is not a dependency).

Ids are Snowflake BIGINTs (boxsync.db.new_id), larger than JavaScript's exact integers, so the API
writes them as strings, as Jira writes its own ids.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping

from boxsync.boxes import wbs

BUILTIN_TYPES = ("Portfolio", "Program", "Project", "Iteration")
SCOPE_TYPES = ("own", "sub-scope", "none")
STATUSES = ("not-started", "in-progress", "closed")
TASK_MODES = ("auto-basic", "auto-bottom-up", "auto-top-down", "manual", "locked")
DEFAULT_TASK_MODE = "auto-basic"
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9:_\-]{1,128}$")
MAX_JQL = 10_000
# Fixed once the Box exists: its type and scope type decide what it holds and how it is read.
FIXED = ("type", "scopeType")
FIELDS = ("name", "type", "scopeType", "parentId", "status", "start", "end", "scopeOwner", "scope",
          "builders", "taskMode")


class Invalid(ValueError):
    """Input that cannot be stored: `field` names it in the API's JSON terms."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


def parse_id(value: Any, field: str) -> int:
    """An id as the API writes it (a string of digits; a JSON number is accepted too)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(field, "must be an id (a string of digits)")
    text = str(value)
    if not text.isdigit() or len(text) > 19 or int(text) >= 2**63:
        raise Invalid(field, "must be an id (a string of digits)")
    return int(text)


def _date(value: Any, field: str) -> dt.date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(field, "must be a date as YYYY-MM-DD, or null")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(field, f"{value[:40]!r} is not a date as YYYY-MM-DD") from None


def _text(value: Any, field: str, *, limit: int, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(field, "must be a non-empty string" if required else "must be a string or null")
    value = value.strip()
    if len(value) > limit:
        raise Invalid(field, f"is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise Invalid(field, "must not contain control characters")
    return value or None


def _choice(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Invalid(field, f"must be one of {', '.join(allowed)}")
    return value


def parse_scope(value: Any) -> dict[str, Any]:
    if value is None:
        return {"projects": [], "jql": None, "filterId": None}
    if not isinstance(value, dict):
        raise Invalid("scope", "must be an object with projects, jql and filterId")
    unknown = set(value) - {"projects", "jql", "filterId", "integrations"}
    if unknown:
        raise Invalid(f"scope.{sorted(unknown)[0]}", "is not a scope rule (projects, jql, filterId)")
    projects = value.get("projects") or []
    if not isinstance(projects, list) or not all(isinstance(p, str) for p in projects):
        raise Invalid("scope.projects", "must be a list of project keys")
    keys: list[str] = []
    for key in projects:
        if not PROJECT_KEY.match(key):
            raise Invalid("scope.projects", f"{key[:40]!r} is not a Jira project key")
        if key not in keys:
            keys.append(key)
    jql = _text(value.get("jql"), "scope.jql", limit=MAX_JQL)
    filter_id = value.get("filterId")
    if filter_id is not None:
        if isinstance(filter_id, bool) or not str(filter_id).isdigit() or len(str(filter_id)) > 18:
            raise Invalid("scope.filterId", "must be a Jira filter id (digits)")
        filter_id = str(filter_id)
    return {"projects": keys, "jql": jql, "filterId": filter_id}


def has_rules(scope: Mapping[str, Any]) -> bool:
    return bool(scope["projects"] or scope["jql"] or scope["filterId"])


def parse_box(body: Any, *, current: Mapping[str, Any] | None = None, types: tuple[str, ...] = BUILTIN_TYPES,
              creator: str | None = None) -> dict[str, Any]:
    """The Box's full JSON after applying `body` (a create when `current` is None, else a PATCH
    over `current`, a Box's JSON). Raises Invalid naming the first bad field."""
    if not isinstance(body, dict):
        raise Invalid("body", "must be a JSON object", status=400)
    unknown = [k for k in body if k not in FIELDS and k != "id"]
    if unknown:
        raise Invalid(unknown[0], f"is not a Box field (fields: {', '.join(FIELDS)})")
    if current is not None:
        if "id" in body and str(body["id"]) != current["id"]:
            raise Invalid("id", "cannot be changed")
        for name in FIXED:
            if name in body and body[name] != current[name]:
                raise Invalid(name, "is fixed when the Box is created; create a new Box instead")
    box = dict(current or {})
    merged = {**box, **body}
    out: dict[str, Any] = {}
    out["name"] = _text(merged.get("name"), "name", limit=255, required=True)
    out["type"] = _choice(merged.get("type"), "type", types)
    out["scopeType"] = _choice(merged.get("scopeType", "own"), "scopeType", SCOPE_TYPES)
    parent = merged.get("parentId")
    out["parentId"] = None if parent is None else str(parse_id(parent, "parentId"))
    out["status"] = _choice(merged.get("status", "not-started"), "status", STATUSES)
    out["start"] = _date(merged.get("start"), "start")
    out["end"] = _date(merged.get("end"), "end")
    if out["start"] and out["end"] and out["end"] < out["start"]:
        raise Invalid("end", "is before start")
    owner = merged.get("scopeOwner") or creator
    if not isinstance(owner, str) or not ACCOUNT_ID.match(owner):
        raise Invalid("scopeOwner", "must be a Jira accountId")
    out["scopeOwner"] = owner
    out["scope"] = parse_scope(merged.get("scope"))
    if out["scopeType"] == "none" and has_rules(out["scope"]):
        raise Invalid("scope", "a Box with scope type none aggregates its child Boxes and has no scope rules")
    if out["scopeType"] == "sub-scope" and out["parentId"] is None:
        raise Invalid("parentId", "a sub-scope Box needs a parent Box whose scope it narrows")
    builders = merged.get("builders", [])
    if not isinstance(builders, list):
        raise Invalid("builders", "must be a list of structure builder names")
    try:
        out["builders"] = list(wbs.parse_builders(builders))
    except ValueError as exc:
        raise Invalid("builders", str(exc)) from None
    out["taskMode"] = _choice(merged.get("taskMode", DEFAULT_TASK_MODE), "taskMode", TASK_MODES)
    return out


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def box_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `boxes` row as the API writes it."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "type": row["type"],
        "scopeType": row["scope_type"],
        "parentId": None if row["parent_id"] is None else str(row["parent_id"]),
        "status": row["status"],
        "start": _iso(row["start_date"]),
        "end": _iso(row["end_date"]),
        "scopeOwner": row["scope_owner"],
        "scope": {"projects": list(row["scope_projects"] or []), "jql": row["scope_jql"],
                  "filterId": row["scope_filter_id"]},
        "builders": list(row["builders"] or []),
        "taskMode": row["task_mode"],
    }


def box_values(box: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed Box (parse_box) as `boxes` column values."""
    return {
        "name": box["name"], "type": box["type"], "scope_type": box["scopeType"],
        "parent_id": None if box["parentId"] is None else int(box["parentId"]),
        "status": box["status"], "start_date": box["start"], "end_date": box["end"],
        "scope_owner": box["scopeOwner"], "scope_projects": box["scope"]["projects"],
        "scope_jql": box["scope"]["jql"], "scope_filter_id": box["scope"]["filterId"],
        "builders": box["builders"], "task_mode": box["taskMode"],
    }


def scope_jql(chain: list[Mapping[str, Any]]) -> str | None:
    """The JQL that selects a Box's tasks, from the Box and its ancestors (nearest first).

    An own-scope Box's rules are OR-ed (projects, JQL, filter each add issues). A sub-scope Box
    narrows the nearest own-scope ancestor: its rules AND that ancestor's. None: no rules, no tasks
    (scope type none, or a Box that has no rules yet)."""
    parts: list[str] = []
    for box in chain:
        rules = _rules(box["scope"])
        if box["scopeType"] == "none":
            return None
        if rules:
            parts.append(rules)
        elif box["scopeType"] == "sub-scope":
            pass  # a sub-scope without its own rules holds the whole ancestor scope
        if box["scopeType"] == "own":
            break
    else:
        return None  # no own-scope ancestor
    if not parts:
        return None
    return " AND ".join(f"({p})" for p in parts) if len(parts) > 1 else parts[0]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rules(scope: Mapping[str, Any]) -> str | None:
    rules = []
    if scope["projects"]:
        rules.append("project in (" + ", ".join(_quote(k) for k in scope["projects"]) + ")")
    if scope["jql"]:
        rules.append(f"({_strip_order(scope['jql'])})")
    if scope["filterId"]:
        rules.append(f"filter = {scope['filterId']}")
    return " OR ".join(rules) if rules else None


_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def _strip_order(jql: str) -> str:
    """A user's JQL may end in ORDER BY, which cannot sit inside parentheses; the order of a Box's
    tasks comes from its WBS anyway. (A quoted "order by" inside a string value is rare enough that
    cutting at the last unquoted-looking occurrence is acceptable; Jira reports anything left broken.)"""
    match = None
    for match in _ORDER_BY.finditer(jql):
        pass
    if match is None or jql[:match.start()].count('"') % 2:
        return jql
    return jql[:match.start()].rstrip()
