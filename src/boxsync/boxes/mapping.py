"""Field and dependency mapping, as data (pure: the service reads and stores them).

Field ids differ from site to site, so the defaults are found in the site's own field list
(`GET /rest/api/3/field`) by schema and name, never by a fixed `customfield_` id.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

ATTRIBUTES = ("start", "end", "baselineStart", "baselineEnd", "progress", "taskMode")
COLUMNS = {"start": "start_field", "end": "end_field", "baselineStart": "baseline_start_field",
           "baselineEnd": "baseline_end_field", "progress": "progress_field", "taskMode": "task_mode_field"}
STATUS_CATEGORY = "statusCategory"  # progress from the status category: To Do 0, In Progress 50, Done 100
DEPENDENCY_TYPES = ("FS", "SS", "FF", "SF", "soft")
DATE_PICKER = "com.atlassian.jira.plugin.system.customfieldtypes:datepicker"
SPRINT = "com.pyxis.greenhopper.jira:gh-sprint"
PROGRESS_BY_CATEGORY = {"new": 0.0, "indeterminate": 50.0, "done": 100.0}


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Jira field id per attribute; None: not synchronized (the value lives in BoxSync only)."""
    start: str | None = None
    end: str | None = None
    baselineStart: str | None = None  # noqa: N815 - the API's names
    baselineEnd: str | None = None  # noqa: N815
    progress: str | None = None
    taskMode: str | None = None  # noqa: N815

    def fields(self) -> set[str]:
        """The Jira fields to read for this mapping."""
        return {v for v in (self.start, self.end, self.baselineStart, self.baselineEnd, self.progress,
                            self.taskMode) if v and v != STATUS_CATEGORY}

    def as_json(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in ATTRIBUTES}


@dataclass(frozen=True, slots=True)
class Mappings:
    """A site's field mapping (general, and per project key) and dependency mapping."""
    general: FieldMapping
    projects: Mapping[str, FieldMapping]
    dependencies: Sequence[tuple[str, str, bool]]  # (type, linkTypeId, reversed)

    def for_project(self, key: str) -> FieldMapping:
        # A project's own mapping replaces the general one entirely (bigpicture-and-jira.md 1.5).
        return self.projects.get(key, self.general)

    def fields(self) -> set[str]:
        found = self.general.fields()
        for mapping in self.projects.values():
            found |= mapping.fields()
        return found

    def dependency_of(self, link_type_id: str) -> tuple[str, bool] | None:
        for kind, type_id, reversed_ in self.dependencies:
            if type_id == link_type_id:
                return kind, reversed_
        return None


def _custom_id(field: Mapping[str, Any]) -> int:
    schema = field.get("schema") or {}
    try:
        return int(schema.get("customId", 1 << 62))
    except (TypeError, ValueError):
        return 1 << 62


def find_field(fields: Iterable[Mapping[str, Any]], *, custom: str, name: str | None = None) -> str | None:
    """The id of the field of custom type `custom` (and, when given, that name, ignoring case); of
    several, the oldest (lowest custom id), which is the one Jira created first."""
    matches = [f for f in fields
               if (f.get("schema") or {}).get("custom") == custom
               and (name is None or str(f.get("name", "")).strip().lower() == name.lower())]
    matches.sort(key=_custom_id)
    return str(matches[0]["id"]) if matches else None


def default_fields(fields: Iterable[Mapping[str, Any]]) -> FieldMapping:
    """Defaults on install: Start = the site's "Start date" date picker, End = due date, Progress
    from the status category, the rest not synchronized."""
    return FieldMapping(start=find_field(fields, custom=DATE_PICKER, name="Start date"), end="duedate",
                        progress=STATUS_CATEGORY)


def sprint_field(fields: Iterable[Mapping[str, Any]]) -> str | None:
    return find_field(fields, custom=SPRINT)


def default_dependencies(link_types: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, bool]]:
    """Blocks as FS ("A blocks B": A, on the outward side, is the predecessor)."""
    for lt in link_types:
        if str(lt.get("name", "")).lower() == "blocks":
            return [("FS", str(lt["id"]), False)]
    return []
