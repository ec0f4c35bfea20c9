"""Field and dependency mapping, as data (pure: the service reads and stores them).

Field ids differ from site to site, so the defaults are found in the site's own field list
(`GET /rest/api/3/field`) by schema and name, never by a fixed `customfield_` id.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from boxsync.boxes.model import PROJECT_KEY, Invalid

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


# -- what an admin may map, and reading what a client sends ---------------------------------------------

DATE_ATTRIBUTES = ("start", "end", "baselineStart", "baselineEnd")
# The Jira field types (schema.type in GET /rest/api/3/field) each attribute can be read from.
ACCEPTS: dict[str, tuple[str, ...]] = {
    "start": ("date", "datetime"), "end": ("date", "datetime"),
    "baselineStart": ("date", "datetime"), "baselineEnd": ("date", "datetime"),
    "progress": ("number",), "taskMode": ("option", "string"),
}
LABELS = {"start": "Start", "end": "End", "baselineStart": "Baseline start", "baselineEnd": "Baseline end",
          "progress": "Progress", "taskMode": "Task mode"}
FIELDS_READ_ONLY = ("fields", "siteProjects")  # what GET adds for the page; ignored on PUT
MAX_OVERRIDES = 500


def field_type(field: Mapping[str, Any]) -> str | None:
    schema = field.get("schema") or {}
    kind = schema.get("type")
    return kind if isinstance(kind, str) else None


def fits(attr: str, field: Mapping[str, Any]) -> bool:
    """Whether `attr` can be read from (and kept in) this Jira field. Task mode needs a select list
    or a text field of its own: a system text field (the summary) is not one."""
    kind = field_type(field)
    if kind not in ACCEPTS[attr]:
        return False
    return not (attr == "taskMode" and kind == "string" and not field.get("custom"))


def candidates(fields: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The site's fields that some attribute can be mapped to, by name, with the attributes each
    fits: what the page offers."""
    out = []
    for f in fields:
        if not f.get("id"):
            continue
        attrs = [a for a in ATTRIBUTES if fits(a, f)]
        if attrs:
            out.append({"id": str(f["id"]), "name": str(f.get("name") or f["id"]), "type": field_type(f),
                        "custom": bool(f.get("custom")), "attributes": attrs})
    out.sort(key=lambda f: (f["name"].lower(), f["id"]))
    return out


def _name(field: Mapping[str, Any]) -> str:
    return f"{field.get('name') or field['id']} ({field['id']})"


def parse_field_mapping(value: Any, path: str, site_fields: Mapping[str, Mapping[str, Any]]) -> FieldMapping:
    """One mapping object (general, or a project's override) against the site's fields by id."""
    if not isinstance(value, dict):
        raise Invalid(path, f"must be an object with {', '.join(ATTRIBUTES)}")
    unknown = [k for k in value if k not in ATTRIBUTES]
    if unknown:
        raise Invalid(f"{path}.{unknown[0][:80]}", f"is not a mapped attribute ({', '.join(ATTRIBUTES)})")
    out: dict[str, str | None] = {}
    dates: dict[str, str] = {}  # field id → the attribute already reading it
    for attr in ATTRIBUTES:
        where = f"{path}.{attr}"
        if attr not in value:
            raise Invalid(where, "is missing: give a Jira field id, or null for not synchronized")
        field_id = value[attr]
        if field_id is None:
            out[attr] = None
            continue
        if not isinstance(field_id, str) or not field_id.strip():
            raise Invalid(where, "must be a Jira field id (a string), or null for not synchronized")
        field_id = field_id.strip()
        if attr == "progress" and field_id == STATUS_CATEGORY:
            out[attr] = field_id
            continue
        field = site_fields.get(field_id)
        if field is None:
            raise Invalid(where, f"the Jira site has no field with id {field_id[:80]!r}")
        kind = field_type(field)
        if not fits(attr, field):
            wanted = " or ".join(ACCEPTS[attr]) if attr != "taskMode" else "select list (option) or custom text"
            extra = ', or "statusCategory" for progress from the status category' if attr == "progress" else ""
            raise Invalid(where, f"{_name(field)} is a {kind or 'untyped'} field; "
                                      f"{LABELS[attr]} needs a {wanted} field{extra}")
        if attr in DATE_ATTRIBUTES:
            if field_id in dates:
                raise Invalid(where, f"{_name(field)} is already mapped to {LABELS[dates[field_id]]}; "
                                          "each date field can hold only one attribute")
            dates[field_id] = attr
        out[attr] = field_id
    return FieldMapping(**out)


def project_keys(body: Any) -> list[str]:
    """The project keys a field-mapping body overrides (well-formed ones only), to look up on the site."""
    projects = body.get("projects") if isinstance(body, dict) else None
    if not isinstance(projects, dict):
        return []
    return [k for k in projects if isinstance(k, str) and PROJECT_KEY.match(k)]


def parse_fields(body: Any, site_fields: Iterable[Mapping[str, Any]],
                 site_projects: Iterable[str]) -> tuple[FieldMapping, dict[str, FieldMapping]]:
    """A PUT /api/mappings/fields body: the general mapping and the per-project overrides, checked
    against the site's fields (by id and type) and project keys. Raises Invalid at the first
    fault, naming it by its path in the body ("general.start", "projects.ALPHA.end")."""
    if not isinstance(body, dict):
        raise Invalid("body", 'must be a JSON object: {"general": {…}, "projects": {"KEY": {…}}}', status=400)
    unknown = [k for k in body if k not in ("general", "projects", *FIELDS_READ_ONLY)]
    if unknown:
        raise Invalid(str(unknown[0])[:80], "is not part of the field mapping (general, projects)")
    if "general" not in body:
        raise Invalid("general", "is missing: the mapping used for every project without its own")
    by_id = {str(f["id"]): f for f in site_fields if f.get("id")}
    general = parse_field_mapping(body["general"], "general", by_id)
    projects = body.get("projects") or {}
    if not isinstance(projects, dict):
        raise Invalid("projects", "must be an object of project key → mapping")
    if len(projects) > MAX_OVERRIDES:
        raise Invalid("projects", f"has more than {MAX_OVERRIDES} project overrides")
    known = set(site_projects)
    overrides: dict[str, FieldMapping] = {}
    for key, value in projects.items():
        path = f"projects.{str(key)[:80]}"
        if not PROJECT_KEY.match(key):
            raise Invalid(path, "is not a Jira project key (capital letters and digits, starting with a letter)")
        if key not in known:
            raise Invalid(path, f"the Jira site has no project with key {key}")
        overrides[key] = parse_field_mapping(value, path, by_id)
    return general, overrides


def parse_dependencies(body: Any, link_types: Mapping[str, str],
                       builders: Mapping[str, str]) -> list[tuple[str, str, bool]]:
    """A PUT /api/mappings/dependencies body: `[{"type", "linkTypeId", "reversed"}]`, each type and
    each link type at most once, each link type existing on the site (`link_types`: id → name) and
    not a structure builder of a Box (`builders`: link type id → the Box's name). Paths: "[1].type"."""
    if not isinstance(body, list):
        raise Invalid("body", 'must be a JSON array: [{"type": "FS", "linkTypeId": "10000", "reversed": false}]',
                           status=400)
    if len(body) > len(DEPENDENCY_TYPES):
        raise Invalid("body", f"maps more than the {len(DEPENDENCY_TYPES)} dependency types")
    out: list[tuple[str, str, bool]] = []
    types: dict[str, int] = {}
    links: dict[str, tuple[int, str]] = {}
    for i, item in enumerate(body):
        path = f"[{i}]"
        if not isinstance(item, dict):
            raise Invalid(path, 'must be an object {"type", "linkTypeId", "reversed"}')
        unknown = [k for k in item if k not in ("type", "linkTypeId", "reversed")]
        if unknown:
            raise Invalid(f"{path}.{str(unknown[0])[:80]}", "is not part of a dependency (type, linkTypeId, reversed)")
        kind = item.get("type")
        if kind not in DEPENDENCY_TYPES:
            raise Invalid(f"{path}.type", f"must be one of {', '.join(DEPENDENCY_TYPES)}")
        if kind in types:
            raise Invalid(f"{path}.type", f"{kind} is mapped twice (also at [{types[kind]}]); "
                                               "each dependency type takes one link type")
        types[kind] = i
        raw = item.get("linkTypeId")
        if isinstance(raw, bool) or not isinstance(raw, (str, int)) or not str(raw).strip().isdigit():
            raise Invalid(f"{path}.linkTypeId", "must be a Jira issue link type id (digits)")
        type_id = str(int(str(raw).strip()))
        name = link_types.get(type_id)
        if name is None:
            raise Invalid(f"{path}.linkTypeId", f"the Jira site has no issue link type with id {type_id}")
        if type_id in links:
            other, other_kind = links[type_id]
            raise Invalid(f"{path}.linkTypeId", f"{name} is already used for {other_kind} (at [{other}]); "
                                                     "you can use each link only one time")
        if type_id in builders:
            raise Invalid(f"{path}.linkTypeId",
                               f"{name} builds the structure of the Box {builders[type_id]!r} (structure builder "
                               f"link:{type_id}); a link type is either a dependency or a structure builder, "
                               "so remove that builder from the Box first or choose another link type")
        links[type_id] = (i, kind)
        reversed_ = item.get("reversed", False)
        if not isinstance(reversed_, bool):
            raise Invalid(f"{path}.reversed", "must be true or false")
        out.append((kind, type_id, reversed_))
    return sorted(out, key=lambda d: DEPENDENCY_TYPES.index(d[0]))


def fields_json(mappings: Mappings) -> dict[str, Any]:
    return {"general": mappings.general.as_json(),
            "projects": {key: m.as_json() for key, m in sorted(mappings.projects.items())}}


def dependencies_json(mappings: Mappings) -> list[dict[str, Any]]:
    ordered = sorted(mappings.dependencies, key=lambda d: DEPENDENCY_TYPES.index(d[0])
                     if d[0] in DEPENDENCY_TYPES else len(DEPENDENCY_TYPES))
    return [{"type": kind, "linkTypeId": type_id, "reversed": reversed_} for kind, type_id, reversed_ in ordered]
