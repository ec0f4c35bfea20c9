"""The in-memory data of simulated Jira Cloud sites.

Everything a test can observe about a site lives here: users and their permissions, projects, issue
types, statuses, fields, link types, versions, sprints, components, issues and links. Mutations go
through `Site` methods so that `updated`, the changelog and change events (which the host module turns
into webhooks) are never forgotten. Rendering to Jira's JSON lives in `render.py`.

Sizes: an `Issue` is a slotted dataclass of ~20 references, so 100,000 issues take a few tens of MB.
"""
from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable, Protocol

from jirasim.faults import Traffic
from jirasim.ratelimits import RateLimits

# --- permissions ---------------------------------------------------------------------------------

BROWSE = "BROWSE_PROJECTS"
EDIT = "EDIT_ISSUES"
LINK = "LINK_ISSUES"
SCHEDULE = "SCHEDULE_ISSUES"
ADMIN_PROJECT = "ADMINISTER_PROJECTS"
ADMINISTER = "ADMINISTER"  # the global "Administer Jira" permission

PROJECT_PERMISSIONS = frozenset({BROWSE, EDIT, LINK, SCHEDULE, ADMIN_PROJECT})
GLOBAL_PERMISSIONS = frozenset({ADMINISTER})
ALL_PROJECT = PROJECT_PERMISSIONS

DEFAULT_ADMIN_EMAIL = "admin@example.com"
DEFAULT_ADMIN_TOKEN = "jirasim-admin-token"
DEFAULT_ADMIN_ACCOUNT_ID = "557058:00000000-0000-4000-8000-000000000001"

# Status categories as Jira Cloud numbers them (statusCategory.id).
STATUS_CATEGORIES: dict[str, tuple[int, str, str]] = {
    "undefined": (1, "No Category", "medium-gray"),
    "new": (2, "To Do", "blue-gray"),
    "done": (3, "Done", "green"),
    "indeterminate": (4, "In Progress", "yellow"),
}

START_DATE_FIELD = "customfield_10015"
STORY_POINTS_FIELD = "customfield_10016"
SPRINT_FIELD = "customfield_10020"


class SiteError(Exception):
    """A rejected mutation. `errors` maps field ids to messages (Jira's `errors` object);
    `messages` are general messages; `status` is the HTTP status the REST layer should answer."""

    def __init__(self, messages: Iterable[str] = (), errors: dict[str, str] | None = None, status: int = 400):
        self.messages = list(messages)
        self.errors = dict(errors or {})
        self.status = status
        super().__init__("; ".join(self.messages + [f"{k}: {v}" for k, v in self.errors.items()]))


def now_ms() -> int:
    return int(time.time() * 1000)


# --- records -------------------------------------------------------------------------------------


@dataclass(slots=True)
class User:
    account_id: str
    email: str
    display_name: str
    active: bool = True
    api_token: str | None = None
    account_type: str = "atlassian"  # "app" for Connect app users
    time_zone: str = "UTC"
    # Per-project permissions; a project missing here falls back to `default_permissions`.
    project_permissions: dict[int, frozenset[str]] = field(default_factory=dict)
    default_permissions: frozenset[str] = frozenset()
    global_permissions: frozenset[str] = frozenset()


@dataclass(slots=True)
class Project:
    id: int
    key: str
    name: str
    lead_account_id: str | None = None
    project_type_key: str = "software"
    next_number: int = 1  # the number the next issue key gets


@dataclass(slots=True)
class IssueType:
    id: int
    name: str
    hierarchy_level: int
    subtask: bool = False
    description: str = ""


@dataclass(slots=True)
class Status:
    id: int
    name: str
    category: str  # "new" | "indeterminate" | "done"


@dataclass(slots=True)
class Field:
    id: str
    name: str
    schema: dict[str, Any] | None
    custom: bool = False
    navigable: bool = True
    orderable: bool = True
    searchable: bool = True
    clause_names: tuple[str, ...] = ()


@dataclass(slots=True)
class LinkType:
    id: int
    name: str
    inward: str
    outward: str


@dataclass(slots=True)
class Version:
    id: int
    project_id: int
    name: str
    released: bool = False
    archived: bool = False
    release_date: str | None = None


@dataclass(slots=True)
class Sprint:
    id: int
    name: str
    state: str  # "future" | "active" | "closed"
    board_id: int
    start_date: str | None = None
    end_date: str | None = None
    goal: str = ""


@dataclass(slots=True)
class Component:
    id: int
    project_id: int
    name: str


@dataclass(slots=True)
class Issue:
    id: int
    key: str
    project_id: int
    issuetype_id: int
    status_id: int
    summary: str
    created: int  # epoch ms
    updated: int  # epoch ms
    reporter: str | None = None
    assignee: str | None = None
    parent_id: int | None = None
    description: Any = None  # ADF document or None
    duedate: str | None = None  # yyyy-mm-dd
    start_date: str | None = None  # customfield_10015
    story_points: float | None = None  # customfield_10016
    sprint_ids: list[int] = field(default_factory=list)
    fix_version_ids: list[int] = field(default_factory=list)
    component_ids: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    link_ids: list[int] = field(default_factory=list)
    priority_id: int = 3


@dataclass(slots=True)
class Link:
    id: int
    type_id: int
    source_id: int  # source <type.outward> destination: the source *blocks* the destination
    destination_id: int


@dataclass(slots=True)
class InstalledApp:
    key: str
    base_url: str
    client_key: str
    shared_secret: str
    oauth_client_id: str
    descriptor: dict
    scopes: frozenset[str]
    enabled: bool
    app_account_id: str


@dataclass(slots=True)
class OAuthToken:
    access_token: str
    account_id: str
    app_key: str
    expires_at: float  # epoch seconds
    # What the token was granted (the requested scopes, or all of the app's): Atlassian's tokens
    # carry only what was asked for, so a READ token cannot write even if the app may.
    scopes: frozenset[str] = frozenset()


@dataclass(slots=True)
class ChangeEvent:
    kind: str  # issue_created | issue_updated | issue_deleted | issuelink_created | issuelink_deleted
    issue: dict | None
    changelog: dict | None
    link: dict | None
    user: dict | None
    timestamp: int  # epoch ms
    # The issue itself, for issue events. Kept on the event because after `issue_deleted` the site
    # no longer has it, and webhook JQL filters still have to be evaluated against it.
    subject: Issue | None = None
    # Caused by another change rather than made by someone (an issue delete removing its links):
    # Jira delivers such events on its Secondary webhook flow, later than the change itself.
    cascade: bool = False


# --- the site ------------------------------------------------------------------------------------

Listener = Callable[[ChangeEvent], Any]


class EventRenderer(Protocol):
    def issue(self, site: "Site", issue: Issue) -> dict: ...
    def user(self, site: "Site", user: User) -> dict: ...


class Site:
    """One Jira Cloud site (one tenant). Not thread-safe: it belongs to the event loop serving it."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        admin_email: str = DEFAULT_ADMIN_EMAIL,
        admin_token: str = DEFAULT_ADMIN_TOKEN,
        cloud_id: str | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.cloud_id = cloud_id or "00000000-0000-4000-a000-" + hashlib.sha256(name.encode()).hexdigest()[:12]
        self.users: dict[str, User] = {}
        self.projects: dict[int, Project] = {}
        self.issue_types: dict[int, IssueType] = {}
        self.statuses: dict[int, Status] = {}
        self.fields: dict[str, Field] = {}
        # Custom field ids differ from site to site in Jira Cloud. The model knows its custom
        # fields by their usual ids (START_DATE_FIELD, …); a site numbering one differently maps
        # that usual id to its own here (set_field_id), and only its own id is served.
        self.field_ids: dict[str, str] = {}
        self.link_types: dict[int, LinkType] = {}
        self.versions: dict[int, Version] = {}
        self.sprints: dict[int, Sprint] = {}
        self.components: dict[int, Component] = {}
        self.issues: dict[int, Issue] = {}
        self.key_index: dict[str, int] = {}  # current *and* former keys → issue id
        self.links: dict[int, Link] = {}
        self.children: dict[int, list[int]] = {}  # parent id → child ids (epic children, sub-tasks)
        self.by_project: dict[int, dict[int, None]] = {}  # project id → ordered set of issue ids
        self.changelogs: dict[int, list[dict]] = {}  # issue id → changelog entries (oldest first)
        self.listeners: list[Listener] = []
        # How events render issues and users as JSON: set by the site runner (jirasim.simulator),
        # so that the model needs nothing of the web layer.
        self.renderer: EventRenderer | None = None
        self.apps: dict[str, InstalledApp] = {}
        self.oauth_tokens: dict[str, OAuthToken] = {}
        self.index_corrupted = False  # fault switch for /rest/api/2/index/summary
        self.traffic = Traffic()  # injected faults and request counters (faults.py)
        self.rate_limits = RateLimits()  # Jira's burst/quota/per-issue limits, off until set (ratelimits.py)
        self.search_cursors: dict[str, list[int]] = {}  # search/jql result snapshots by cursor id
        self._ids = {
            "issue": itertools.count(10000),
            "project": itertools.count(10000),
            "link": itertools.count(10000),
            "version": itertools.count(10000),
            "sprint": itertools.count(1),
            "component": itertools.count(10000),
            "changelog": itertools.count(10000),
            "user": itertools.count(2),
        }
        self._add_defaults(admin_email, admin_token)

    # --- configuration ---------------------------------------------------------------------------

    def _add_defaults(self, admin_email: str, admin_token: str) -> None:
        self.add_user(
            admin_email, "Site Admin", api_token=admin_token, account_id=DEFAULT_ADMIN_ACCOUNT_ID,
            default_permissions=ALL_PROJECT, global_permissions=GLOBAL_PERMISSIONS,
        )
        for it in (
            IssueType(10000, "Epic", 1, description="A big user story that needs to be broken down."),
            IssueType(10001, "Story", 0, description="Functionality or a feature expressed as a user goal."),
            IssueType(10002, "Task", 0, description="A small, distinct piece of work."),
            IssueType(10003, "Bug", 0, description="A problem or error."),
            IssueType(10004, "Sub-task", -1, subtask=True, description="A small piece of work that's part of a larger task."),
        ):
            self.issue_types[it.id] = it
        for st in (
            Status(10000, "To Do", "new"),
            Status(3, "In Progress", "indeterminate"),
            Status(10001, "In Review", "indeterminate"),
            Status(10002, "Done", "done"),
        ):
            self.statuses[st.id] = st
        for lt in (
            LinkType(10000, "Blocks", "is blocked by", "blocks"),
            LinkType(10001, "Cloners", "is cloned by", "clones"),
            LinkType(10002, "Duplicate", "is duplicated by", "duplicates"),
            LinkType(10003, "Relates", "relates to", "relates to"),
        ):
            self.link_types[lt.id] = lt
        for f in _system_fields():
            self.fields[f.id] = f

    def add_user(
        self,
        email: str,
        display_name: str,
        *,
        api_token: str | None = None,
        account_id: str | None = None,
        active: bool = True,
        account_type: str = "atlassian",
        default_permissions: Iterable[str] = (BROWSE, EDIT, LINK, SCHEDULE),
        global_permissions: Iterable[str] = (),
    ) -> User:
        if account_id is None:
            account_id = f"557058:00000000-0000-4000-8000-{next(self._ids['user']):012d}"
        user = User(
            account_id, email, display_name, active, api_token, account_type,
            default_permissions=frozenset(default_permissions), global_permissions=frozenset(global_permissions),
        )
        self.users[account_id] = user
        return user

    def user_by_email(self, email: str) -> User | None:
        for user in self.users.values():
            if user.email.lower() == email.lower():
                return user
        return None

    def set_permissions(self, account_id: str, permissions: Iterable[str], project_id: int | None = None) -> None:
        """Project permissions for one project, or (project_id None) the default for all projects."""
        user = self.users[account_id]
        perms = frozenset(permissions)
        unknown = perms - PROJECT_PERMISSIONS - GLOBAL_PERMISSIONS
        if unknown:
            raise SiteError([f"Unknown permissions: {', '.join(sorted(unknown))}"])
        if project_id is None:
            user.default_permissions = perms & PROJECT_PERMISSIONS
            user.global_permissions = perms & GLOBAL_PERMISSIONS
        else:
            user.project_permissions[project_id] = perms & PROJECT_PERMISSIONS

    def has_permission(self, account_id: str | None, permission: str, project_id: int | None = None) -> bool:
        """Whether the user holds `permission` — in `project_id`, or (None) in any project."""
        user = self.users.get(account_id) if account_id else None
        if user is None or not user.active:
            return False
        if permission in GLOBAL_PERMISSIONS:
            return permission in user.global_permissions
        if project_id is None:
            return permission in user.default_permissions or any(
                permission in p for p in user.project_permissions.values()
            )
        return permission in user.project_permissions.get(project_id, user.default_permissions)

    def admin_account_id(self) -> str:
        """The site admin: the default admin if present, else any user holding ADMINISTER."""
        if DEFAULT_ADMIN_ACCOUNT_ID in self.users:
            return DEFAULT_ADMIN_ACCOUNT_ID
        for user in self.users.values():
            if ADMINISTER in user.global_permissions:
                return user.account_id
        return DEFAULT_ADMIN_ACCOUNT_ID

    def add_project(self, key: str, name: str, *, lead_account_id: str | None = None, id: int | None = None) -> Project:
        if self.project_by_key(key) is not None:
            raise SiteError([f"A project with that project key already exists: {key}"])
        if id is not None and id in self.projects:
            raise SiteError([f"A project with id {id} already exists"])
        if id is None:
            # Skip ids given explicitly earlier (the generator numbers its projects itself).
            id = next(self._ids["project"])
            while id in self.projects:
                id = next(self._ids["project"])
        project = Project(id, key.upper(), name, lead_account_id or DEFAULT_ADMIN_ACCOUNT_ID)
        self.projects[project.id] = project
        self.by_project[project.id] = {}
        return project

    def project_by_key(self, key_or_id: str | int) -> Project | None:
        s = str(key_or_id)
        if s.isdigit():
            return self.projects.get(int(s))
        for p in self.projects.values():
            if p.key == s.upper():
                return p
        return None

    def add_custom_field(self, id: str, name: str, schema: dict) -> Field:
        num = id.rsplit("_", 1)[-1]
        f = Field(id, name, schema, custom=True, clause_names=(f"cf[{num}]", name))
        self.fields[id] = f
        return f

    def set_field_id(self, usual_id: str, site_id: str) -> Field:
        """Serve the custom field known as `usual_id` (START_DATE_FIELD, STORY_POINTS_FIELD,
        SPRINT_FIELD) under `site_id` on this site, as another Jira site would number it."""
        current = self.field_id(usual_id)
        field = self.fields.get(current)
        if field is None or not field.custom or not site_id.startswith("customfield_"):
            raise ValueError(f"{usual_id} is not a custom field of this site, or {site_id} is not a custom field id")
        if site_id in self.fields and site_id != current:
            raise ValueError(f"this site already has a field {site_id}")
        num = site_id.rsplit("_", 1)[-1]
        schema = {**(field.schema or {}), "customId": int(num)}
        clauses = tuple(f"cf[{num}]" if c.startswith("cf[") else c for c in field.clause_names)
        del self.fields[current]
        moved = Field(site_id, field.name, schema, custom=field.custom, navigable=field.navigable,
                      orderable=field.orderable, searchable=field.searchable, clause_names=clauses)
        self.fields[site_id] = moved
        if site_id == usual_id:
            self.field_ids.pop(usual_id, None)
        else:
            self.field_ids[usual_id] = site_id
        return moved

    def field_id(self, usual_id: str) -> str:
        """This site's id of the custom field usually numbered `usual_id`."""
        return self.field_ids.get(usual_id, usual_id)

    def usual_field_id(self, field_id: str) -> str:
        """The id the model knows a field of this site by ("" for a usual id this site renumbered)."""
        for usual, own in self.field_ids.items():
            if own == field_id:
                return usual
        return "" if field_id in self.field_ids else field_id

    def add_version(self, project_id: int, name: str, *, released: bool = False, release_date: str | None = None) -> Version:
        v = Version(next(self._ids["version"]), project_id, name, released, False, release_date)
        self.versions[v.id] = v
        return v

    def add_sprint(self, name: str, state: str, *, board_id: int = 1, start_date: str | None = None,
                   end_date: str | None = None) -> Sprint:
        s = Sprint(next(self._ids["sprint"]), name, state, board_id, start_date, end_date)
        self.sprints[s.id] = s
        return s

    def add_component(self, project_id: int, name: str) -> Component:
        c = Component(next(self._ids["component"]), project_id, name)
        self.components[c.id] = c
        return c

    # --- lookups ---------------------------------------------------------------------------------

    def issue(self, id_or_key: str | int) -> Issue | None:
        """Resolve an id or a key — former keys of moved issues included, as Jira does."""
        s = str(id_or_key).strip()
        if s.isdigit():
            return self.issues.get(int(s))
        iid = self.key_index.get(s.upper())
        return self.issues.get(iid) if iid is not None else None

    def link_type(self, ref: dict) -> LinkType | None:
        """`{"id": …}` or `{"name": …}` (Jira also accepts the inward/outward names)."""
        if ref.get("id") is not None:
            try:
                return self.link_types.get(int(ref["id"]))
            except (TypeError, ValueError):
                return None
        name = str(ref.get("name") or "").lower()
        for lt in self.link_types.values():
            if name in (lt.name.lower(), lt.inward.lower(), lt.outward.lower()):
                return lt
        return None

    def status_by_name(self, name_or_id: str | int) -> Status | None:
        s = str(name_or_id)
        if s.isdigit():
            return self.statuses.get(int(s))
        return next((st for st in self.statuses.values() if st.name.lower() == s.lower()), None)

    def issuetype_by_name(self, name_or_id: str | int) -> IssueType | None:
        s = str(name_or_id)
        if s.isdigit():
            return self.issue_types.get(int(s))
        return next((it for it in self.issue_types.values() if it.name.lower() == s.lower()), None)

    def find_link(self, type_id: int, source_id: int, destination_id: int) -> Link | None:
        issue = self.issues.get(source_id)
        for lid in issue.link_ids if issue else ():
            link = self.links[lid]
            if link.type_id == type_id and link.source_id == source_id and link.destination_id == destination_id:
                return link
        return None

    # --- events ----------------------------------------------------------------------------------

    def emit(self, event: ChangeEvent) -> None:
        # A broken listener must not break the write that caused the event (Jira's webhooks are
        # decoupled from the edit), so failures are swallowed here.
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001
                import logging

                logging.getLogger("jirasim").exception("change listener failed")

    def _user_json(self, account_id: str | None) -> dict | None:
        user = self.users.get(account_id) if account_id else None
        if user is None or not self.listeners:
            return None
        return self._renderer().user(self, user)

    def _snapshot(self, issue: Issue) -> dict | None:
        # Only listeners (webhooks) read the rendering; without them there is nothing to build.
        return self._renderer().issue(self, issue) if self.listeners else None

    def _renderer(self) -> "EventRenderer":
        if self.renderer is None:
            raise RuntimeError("a change listener needs site.renderer (jirasim.render.EVENTS); "
                               "jirasim.simulator.Simulator sets it")
        return self.renderer

    def _record(self, issue: Issue, items: list[dict], author: str | None, ts: int) -> dict:
        entry = {
            "id": str(next(self._ids["changelog"])),
            "author": author,
            "created": ts,
            "items": items,
        }
        self.changelogs.setdefault(issue.id, []).append(entry)
        return {"id": entry["id"], "items": items}

    # --- mutations -------------------------------------------------------------------------------

    def create_issue(
        self,
        project: Project | str | int,
        summary: str,
        *,
        issuetype: str | int = "Task",
        status: str | int | None = None,
        parent: str | int | None = None,
        fields: dict | None = None,
        user: str | None = None,
        created: int | None = None,
        emit: bool = True,
    ) -> Issue:
        """Create an issue. `fields` are further Jira REST field values (see `edit_issue`)."""
        proj = project if isinstance(project, Project) else self.project_by_key(project)
        if proj is None:
            raise SiteError(errors={"project": "valid project is required"})
        it = self.issuetype_by_name(issuetype)
        if it is None:
            raise SiteError(errors={"issuetype": "The issue type selected is invalid."})
        st = self.status_by_name(status) if status is not None else self.statuses[10000]
        if st is None:
            raise SiteError(errors={"status": f"Status '{status}' does not exist."})
        if not summary:
            raise SiteError(errors={"summary": "You must specify a summary of the issue."})
        parent_issue = None
        if parent is not None:
            parent_issue = self.issue(parent)
            if parent_issue is None:
                raise SiteError(errors={"parent": f"Issue '{parent}' not found."})
        if it.subtask and parent_issue is None:
            raise SiteError(errors={"parent": "Given parent issue does not belong to appropriate hierarchy."})
        ts = created if created is not None else now_ms()
        key = f"{proj.key}-{proj.next_number}"
        proj.next_number += 1
        issue = Issue(next(self._ids["issue"]), key, proj.id, it.id, st.id, summary, ts, ts,
                      reporter=user or DEFAULT_ADMIN_ACCOUNT_ID)
        if parent_issue is not None:
            _check_parent(self, issue, it, parent_issue)
        self.issues[issue.id] = issue
        self.key_index[key] = issue.id
        self.by_project[proj.id][issue.id] = None
        if parent_issue is not None:
            issue.parent_id = parent_issue.id
            self.children.setdefault(parent_issue.id, []).append(issue.id)
        if fields:
            try:
                _apply_fields(self, issue, fields, set_system=True)
            except SiteError:
                self._forget(issue)
                raise
        if emit:
            self.emit(ChangeEvent("issue_created", self._snapshot(issue), None, None, self._user_json(user), ts,
                                  issue))
        return issue

    def edit_issue(self, issue: Issue | str | int, fields: dict, *, user: str | None = None,
                   emit: bool = True) -> dict | None:
        """Set fields given as Jira REST values (`{"summary": "x", "duedate": "2024-01-02",
        "customfield_10015": …, "parent": {"key": …}, "status": {"name": …}, …}`).
        Validates everything before changing anything; raises `SiteError` with `errors` per field.
        Returns the changelog (None when nothing changed)."""
        target = issue if isinstance(issue, Issue) else self.issue(issue)
        if target is None:
            raise SiteError(["Issue does not exist or you do not have permission to see it."], status=404)
        items = _apply_fields(self, target, fields, set_system=True)
        if not items:
            return None
        ts = now_ms()
        target.updated = max(ts, target.updated + 1)
        changelog = self._record(target, items, user, target.updated)
        if emit:
            self.emit(ChangeEvent("issue_updated", self._snapshot(target), changelog, None,
                                  self._user_json(user), target.updated, target))
        return changelog

    def delete_issue(self, issue: Issue | str | int, *, user: str | None = None, delete_subtasks: bool = True) -> None:
        target = issue if isinstance(issue, Issue) else self.issue(issue)
        if target is None:
            raise SiteError(["Issue does not exist or you do not have permission to see it."], status=404)
        kids = list(self.children.get(target.id, ()))
        subtasks = [k for k in kids if self.issue_types[self.issues[k].issuetype_id].subtask]
        if subtasks and not delete_subtasks:
            raise SiteError([f"The issue '{target.key}' has subtasks. You must specify the 'deleteSubtasks' parameter to delete this issue with subtasks."])
        for sid in subtasks:
            self.delete_issue(sid, user=user)
        snapshot = self._snapshot(target)
        for lid in list(target.link_ids):
            self.remove_link(lid, user=user, cascade=True)
        # Epic children lose their parent silently, like Jira.
        for kid in self.children.pop(target.id, []):
            if kid in self.issues:
                self.issues[kid].parent_id = None
        self._forget(target)
        self.emit(ChangeEvent("issue_deleted", snapshot, None, None, self._user_json(user), now_ms(), target))

    def _forget(self, issue: Issue) -> None:
        self.issues.pop(issue.id, None)
        for k in _keys_of(self, issue):
            self.key_index.pop(k, None)
        self.by_project.get(issue.project_id, {}).pop(issue.id, None)
        if issue.parent_id is not None and issue.parent_id in self.children:
            try:
                self.children[issue.parent_id].remove(issue.id)
            except ValueError:
                pass
        self.changelogs.pop(issue.id, None)

    def move_issue(self, issue: Issue | str | int, project: Project | str | int, *, user: str | None = None) -> Issue:
        """Move to another project: a new key (the old one keeps resolving) and sub-tasks follow."""
        target = issue if isinstance(issue, Issue) else self.issue(issue)
        if target is None:
            raise SiteError(["Issue does not exist or you do not have permission to see it."], status=404)
        proj = project if isinstance(project, Project) else self.project_by_key(project)
        if proj is None:
            raise SiteError(errors={"project": "valid project is required"})
        if proj.id == target.project_id:
            return target
        old_proj = self.projects[target.project_id]
        old_key = target.key
        new_key = f"{proj.key}-{proj.next_number}"
        proj.next_number += 1
        self.by_project[old_proj.id].pop(target.id, None)
        self.by_project[proj.id][target.id] = None
        target.project_id = proj.id
        target.key = new_key
        self.key_index[new_key] = target.id  # the old key stays in the index, as on Jira
        # Versions and components are per project; Jira drops them on a move.
        target.fix_version_ids = []
        target.component_ids = []
        items = [
            _item("project", "jira", "project", str(old_proj.id), old_proj.name, str(proj.id), proj.name),
            _item("Key", "jira", "key", None, old_key, None, new_key),
        ]
        ts = max(now_ms(), target.updated + 1)
        target.updated = ts
        changelog = self._record(target, items, user, ts)
        self.emit(ChangeEvent("issue_updated", self._snapshot(target), changelog, None, self._user_json(user), ts,
                              target))
        for kid in list(self.children.get(target.id, ())):
            child = self.issues.get(kid)
            if child and self.issue_types[child.issuetype_id].subtask:
                self.move_issue(child, proj, user=user)
        return target

    def add_link(self, type_ref: LinkType | str | int | dict, source: Issue | str | int, destination: Issue | str | int,
                 *, user: str | None = None, emit: bool = True) -> Link:
        """`source` <type.outward> `destination` (Blocks: source *blocks* destination). In
        `POST /issueLink` the source is the request's `inwardIssue` — Jira's well-known naming quirk.
        An identical existing link is returned unchanged (Jira answers 201 to a duplicate request)."""
        if isinstance(type_ref, LinkType):
            lt: LinkType | None = type_ref
        elif isinstance(type_ref, dict):
            lt = self.link_type(type_ref)
        elif str(type_ref).isdigit():
            lt = self.link_types.get(int(type_ref))
        else:
            lt = self.link_type({"name": type_ref})
        if lt is None:
            raise SiteError([f"No issue link type with name '{type_ref}' found."], status=404)
        out_i = source if isinstance(source, Issue) else self.issue(source)
        in_i = destination if isinstance(destination, Issue) else self.issue(destination)
        if out_i is None or in_i is None:
            raise SiteError(["Issue does not exist or you do not have permission to see it."], status=404)
        if out_i.id == in_i.id:
            raise SiteError(["You cannot link an issue to itself."])
        existing = self.find_link(lt.id, out_i.id, in_i.id)
        if existing is not None:
            return existing
        link = Link(next(self._ids["link"]), lt.id, out_i.id, in_i.id)
        self.links[link.id] = link
        out_i.link_ids.append(link.id)
        in_i.link_ids.append(link.id)
        ts = self._link_history(lt, out_i, in_i, user, added=True)
        if emit:
            self.emit(ChangeEvent("issuelink_created", None, None, _link_event(lt, link), self._user_json(user), ts))
        return link

    def _link_history(self, lt: LinkType, source: Issue | None, destination: Issue | None, user: str | None,
                      *, added: bool) -> int:
        """Jira records a link on both issues' history ("Link": "This issue blocks X-1") and bumps
        their `updated`, so `updated >= …` JQL sees it. The webhook for it is the issuelink_* event
        alone (no jira:issue_updated)."""
        ts = now_ms()
        for this, other, phrase in ((source, destination, lt.outward), (destination, source, lt.inward)):
            if this is None or other is None:
                continue
            text = f"This issue {phrase} {other.key}"
            item = _item("Link", "jira", "issuelinks", *((None, None, other.key, text) if added else (other.key, text, None, None)))
            this.updated = max(ts, this.updated + 1)
            self._record(this, [item], user, this.updated)
        return ts

    def remove_link(self, link_id: int, *, user: str | None = None, cascade: bool = False) -> None:
        link = self.links.pop(int(link_id), None)
        if link is None:
            raise SiteError([f"No issue link with id '{link_id}' exists."], status=404)
        for iid in (link.source_id, link.destination_id):
            issue = self.issues.get(iid)
            if issue is not None and link.id in issue.link_ids:
                issue.link_ids.remove(link.id)
        lt = self.link_types[link.type_id]
        ts = self._link_history(lt, self.issues.get(link.source_id), self.issues.get(link.destination_id), user, added=False)
        self.emit(ChangeEvent("issuelink_deleted", None, None, _link_event(lt, link), self._user_json(user), ts,
                              cascade=cascade))


class Sites:
    """Several simulated sites sharing a seed: what the web layer (host, app) works with. The site
    runner above it, jirasim.simulator.Simulator, adds the building and serving of sites."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.sites: dict[str, Site] = {}

    def site(self, name: str) -> Site:
        return self.sites[name]


# --- helpers -------------------------------------------------------------------------------------


def _keys_of(site: Site, issue: Issue) -> list[str]:
    # Former keys are only kept for moved issues, so this scan is rare (delete of a moved issue).
    keys = [issue.key]
    if site.changelogs.get(issue.id):
        for entry in site.changelogs[issue.id]:
            for item in entry["items"]:
                if item["field"] == "Key" and item["fromString"]:
                    keys.append(item["fromString"])
    return keys


def _item(field_name: str, fieldtype: str, field_id: str, frm: Any, frm_s: Any, to: Any, to_s: Any) -> dict:
    return {"field": field_name, "fieldtype": fieldtype, "fieldId": field_id,
            "from": frm, "fromString": frm_s, "to": to, "toString": to_s}


def _link_event(lt: LinkType, link: Link) -> dict:
    return {
        "id": link.id,
        "sourceIssueId": link.source_id,
        "destinationIssueId": link.destination_id,
        "issueLinkType": {"id": lt.id, "name": lt.name, "outwardName": lt.outward, "inwardName": lt.inward,
                          "isSubTaskLinkType": False, "isSystemLinkType": False},
        "systemLink": False,
    }


def _check_parent(site: Site, issue: Issue, it: IssueType, parent: Issue) -> None:
    pit = site.issue_types[parent.issuetype_id]
    if parent.id == issue.id or pit.hierarchy_level != it.hierarchy_level + 1:
        raise SiteError(errors={"parent": "Given parent issue does not belong to appropriate hierarchy."})
    if it.subtask and parent.project_id != issue.project_id:
        raise SiteError(errors={"parent": "Given parent issue does not belong to appropriate hierarchy."})


def _valid_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _ids_of(value: Any, key: str = "id") -> list[Any] | None:
    if value is None:
        return []
    if not isinstance(value, list):
        return None
    out = []
    for v in value:
        if isinstance(v, dict) and (v.get(key) is not None or v.get("name") is not None):
            out.append(v)
        else:
            return None
    return out


# Fields a REST client may set with PUT /issue (the rest are read-only or need transitions).
EDITABLE_FIELDS = frozenset({
    "summary", "description", "duedate", "parent", "assignee", "reporter", "labels", "fixVersions",
    "components", "priority", "issuetype", START_DATE_FIELD, STORY_POINTS_FIELD, SPRINT_FIELD,
})


def _apply_fields(site: Site, issue: Issue, fields: dict, *, set_system: bool) -> list[dict]:
    """Validate all values, then apply them; return changelog items. `status` is accepted here (the
    control API plays a person using the UI); REST rejects it before."""
    changes, errors = validate_fields(site, issue, fields, set_system=set_system)
    if errors:
        raise SiteError(errors=errors)
    items: list[dict] = []
    for fid, new in changes:
        items.extend(_set(site, issue, fid, new))
    return items


def validate_fields(site: Site, issue: Issue, fields: dict, *, set_system: bool = True) -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """Check Jira REST field values against `issue` without changing it: (changes, errors)."""
    errors: dict[str, str] = {}
    changes: list[tuple[str, Any]] = []
    for own_id, value in fields.items():
        fid = site.usual_field_id(own_id)  # errors name the site's own id (below: `errors[own_id]`)
        if fid == "summary":
            if not isinstance(value, str) or not value.strip():
                errors[own_id] = "You must specify a summary of the issue."
            elif len(value) > 255:
                errors[own_id] = "Summary must be less than 255 characters."
            else:
                changes.append((fid, value))
        elif fid == "description":
            if value is not None and not isinstance(value, (dict, str)):
                errors[own_id] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            else:
                changes.append((fid, value))
        elif fid in ("duedate", START_DATE_FIELD):
            if value is not None and not _valid_date(value):
                name = "Due date" if fid == "duedate" else "Start date"
                errors[own_id] = f"Error parsing date string: {value}" if fid == "duedate" else f"{name}: invalid date format, expected yyyy-MM-dd"
            else:
                changes.append((fid, value))
        elif fid == STORY_POINTS_FIELD:
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                errors[own_id] = "Operation value must be a number"
            else:
                changes.append((fid, None if value is None else float(value)))
        elif fid == SPRINT_FIELD:
            # Jira takes a single sprint id (number) on edit; also accept a list for convenience.
            ids = value if isinstance(value, list) else ([] if value is None else [value])
            if not all(isinstance(v, int) and not isinstance(v, bool) and v in site.sprints for v in ids):
                errors[own_id] = "Number value expected as the Sprint id."
            else:
                changes.append((fid, list(ids)))
        elif fid == "labels":
            if not isinstance(value, list) or not all(isinstance(v, str) and " " not in v for v in value):
                errors[own_id] = "The label must not contain spaces."
            else:
                changes.append((fid, list(value)))
        elif fid in ("assignee", "reporter"):
            if value is None:
                if fid == "reporter":
                    errors[own_id] = "Reporter is required."
                else:
                    changes.append((fid, None))
            elif isinstance(value, dict) and value.get("accountId") in site.users:
                changes.append((fid, value["accountId"]))
            elif isinstance(value, dict) and value.get("accountId") == "-1":
                changes.append((fid, None))
            else:
                errors[own_id] = f"Specified user does not exist or you do not have required permissions"
        elif fid in ("fixVersions", "components"):
            refs = _ids_of(value)
            pool = site.versions if fid == "fixVersions" else site.components
            resolved = []
            for ref in refs or []:
                obj = None
                if ref.get("id") is not None and str(ref["id"]).isdigit():
                    obj = pool.get(int(ref["id"]))
                elif ref.get("name") is not None:
                    obj = next((o for o in pool.values() if o.name == ref["name"] and o.project_id == issue.project_id), None)
                if obj is None or obj.project_id != issue.project_id:
                    resolved = None
                    break
                resolved.append(obj.id)
            if refs is None or resolved is None:
                errors[own_id] = ("Version id" if fid == "fixVersions" else "Component id") + " is not valid"
            else:
                changes.append((fid, resolved))
        elif fid == "priority":
            if isinstance(value, dict) and str(value.get("id", "")) in {"1", "2", "3", "4", "5"}:
                changes.append((fid, int(value["id"])))
            else:
                errors[own_id] = "Specify the Priority (id or name) in the string format"
        elif fid == "issuetype":
            it = None
            if isinstance(value, dict):
                it = site.issuetype_by_name(value.get("id") or value.get("name") or "")
            if it is None:
                errors[own_id] = "The issue type selected is invalid."
            elif it.subtask != site.issue_types[issue.issuetype_id].subtask or it.hierarchy_level != site.issue_types[issue.issuetype_id].hierarchy_level:
                errors[own_id] = "The issue type selected is invalid."
            else:
                changes.append((fid, it.id))
        elif fid == "parent":
            if value is None or (isinstance(value, dict) and value.get("none") is True):
                if site.issue_types[issue.issuetype_id].subtask:
                    errors[own_id] = "Given parent issue does not belong to appropriate hierarchy."
                else:
                    changes.append((fid, None))
            elif isinstance(value, dict) and (value.get("key") or value.get("id")):
                parent = site.issue(value.get("id") or value.get("key"))
                if parent is None:
                    errors[own_id] = f"Issue '{value.get('key') or value.get('id')}' not found."
                else:
                    try:
                        _check_parent(site, issue, site.issue_types[issue.issuetype_id], parent)
                    except SiteError as exc:
                        errors.update(exc.errors)
                        continue
                    # No cycles: the new parent may not be a descendant of this issue.
                    anc = parent
                    while anc is not None and anc.parent_id is not None:
                        if anc.parent_id == issue.id:
                            errors[own_id] = "Given parent issue does not belong to appropriate hierarchy."
                            break
                        anc = site.issues.get(anc.parent_id)
                    else:
                        changes.append((fid, parent.id))
            else:
                errors[own_id] = "Could not find issue by id or key."
        elif fid == "status" and set_system:
            st = site.status_by_name(value.get("id") or value.get("name")) if isinstance(value, dict) else site.status_by_name(str(value))
            if st is None:
                errors[own_id] = f"Status '{value}' does not exist."
            else:
                changes.append((fid, st.id))
        else:
            errors[own_id] = f"Field '{own_id}' cannot be set. It is not on the appropriate screen, or unknown."
    return changes, errors


def _set(site: Site, issue: Issue, fid: str, new: Any) -> list[dict]:
    """Apply one validated value; return the changelog items (empty when unchanged)."""
    if fid == "summary":
        old = issue.summary
        issue.summary = new
        return [] if old == new else [_item("summary", "jira", "summary", None, old, None, new)]
    if fid == "description":
        old = issue.description
        issue.description = new
        return [] if old == new else [_item("description", "jira", "description", None, _plain(old), None, _plain(new))]
    if fid == "duedate":
        old = issue.duedate
        issue.duedate = new
        return [] if old == new else [_item("duedate", "jira", "duedate", old, _dts(old), new, _dts(new))]
    if fid == START_DATE_FIELD:
        old = issue.start_date
        issue.start_date = new
        return [] if old == new else [_item("Start date", "custom", site.field_id(START_DATE_FIELD), old, old, new, new)]
    if fid == STORY_POINTS_FIELD:
        old = issue.story_points
        issue.story_points = new
        return [] if old == new else [_item("Story Points", "custom", site.field_id(STORY_POINTS_FIELD), None, _num(old), None, _num(new))]
    if fid == SPRINT_FIELD:
        old = issue.sprint_ids
        issue.sprint_ids = new
        names = lambda ids: ", ".join(site.sprints[i].name for i in ids) or None  # noqa: E731
        ids_s = lambda ids: ", ".join(str(i) for i in ids) or None  # noqa: E731
        return [] if old == new else [_item("Sprint", "custom", site.field_id(SPRINT_FIELD), ids_s(old), names(old), ids_s(new), names(new))]
    if fid == "labels":
        old = issue.labels
        issue.labels = new
        return [] if old == new else [_item("labels", "jira", "labels", None, " ".join(old) or None, None, " ".join(new) or None)]
    if fid in ("assignee", "reporter"):
        old = getattr(issue, fid)
        setattr(issue, fid, new)
        name = lambda a: site.users[a].display_name if a in site.users else None  # noqa: E731
        return [] if old == new else [_item(fid, "jira", fid, old, name(old), new, name(new))]
    if fid in ("fixVersions", "components"):
        attr = "fix_version_ids" if fid == "fixVersions" else "component_ids"
        pool = site.versions if fid == "fixVersions" else site.components
        label = "Fix Version" if fid == "fixVersions" else "Component"
        old = getattr(issue, attr)
        setattr(issue, attr, new)
        items = [_item(label, "jira", fid, str(i), pool[i].name if i in pool else None, None, None) for i in old if i not in new]
        items += [_item(label, "jira", fid, None, None, str(i), pool[i].name) for i in new if i not in old]
        return items
    if fid == "priority":
        old = issue.priority_id
        issue.priority_id = new
        return [] if old == new else [_item("priority", "jira", "priority", str(old), PRIORITIES[old], str(new), PRIORITIES[new])]
    if fid == "issuetype":
        old = issue.issuetype_id
        issue.issuetype_id = new
        return [] if old == new else [_item("issuetype", "jira", "issuetype", str(old), site.issue_types[old].name,
                                             str(new), site.issue_types[new].name)]
    if fid == "status":
        old = issue.status_id
        issue.status_id = new
        return [] if old == new else [_item("status", "jira", "status", str(old), site.statuses[old].name,
                                             str(new), site.statuses[new].name)]
    if fid == "parent":
        old = issue.parent_id
        if old == new:
            return []
        if old is not None and issue.id in site.children.get(old, []):
            site.children[old].remove(issue.id)
        if new is not None:
            site.children.setdefault(new, []).append(issue.id)
        issue.parent_id = new
        key = lambda i: site.issues[i].key if i in site.issues else None  # noqa: E731
        return [_item("IssueParentAssociation", "jira", "parent", str(old) if old else None, key(old) if old else None,
                      str(new) if new else None, key(new) if new else None)]
    raise AssertionError(fid)


PRIORITIES = {1: "Highest", 2: "High", 3: "Medium", 4: "Low", 5: "Lowest"}


def _plain(doc: Any) -> str | None:
    if doc is None or isinstance(doc, str):
        return doc
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                parts.append(node.get("text", ""))
            for c in node.get("content", []) or []:
                walk(c)

    walk(doc)
    return "".join(parts)


def _dts(d: str | None) -> str | None:
    return f"{d} 00:00:00.0" if d else None


def _num(v: float | None) -> str | None:
    if v is None:
        return None
    return str(int(v)) if float(v).is_integer() else str(v)


def _system_fields() -> list[Field]:
    def sys(id: str, name: str, schema: dict | None, *, navigable: bool = True, orderable: bool = True,
            searchable: bool = True, clauses: tuple[str, ...] = ()) -> Field:
        return Field(id, name, schema, False, navigable, orderable, searchable, clauses or (id,))

    fields = [
        sys("summary", "Summary", {"type": "string", "system": "summary"}),
        sys("description", "Description", {"type": "string", "system": "description"}),
        sys("issuetype", "Issue Type", {"type": "issuetype", "system": "issuetype"}, clauses=("issuetype", "type")),
        sys("status", "Status", {"type": "status", "system": "status"}, orderable=False),
        sys("statusCategory", "Status Category", {"type": "statusCategory", "system": "statusCategory"}, orderable=False),
        sys("project", "Project", {"type": "project", "system": "project"}),
        sys("parent", "Parent", None, clauses=("parent",)),
        sys("priority", "Priority", {"type": "priority", "system": "priority"}),
        sys("assignee", "Assignee", {"type": "user", "system": "assignee"}),
        sys("reporter", "Reporter", {"type": "user", "system": "reporter"}),
        sys("created", "Created", {"type": "datetime", "system": "created"}, orderable=False, clauses=("created", "createdDate")),
        sys("updated", "Updated", {"type": "datetime", "system": "updated"}, orderable=False, clauses=("updated", "updatedDate")),
        sys("duedate", "Due date", {"type": "date", "system": "duedate"}, clauses=("due", "duedate")),
        sys("labels", "Labels", {"type": "array", "items": "string", "system": "labels"}),
        sys("fixVersions", "Fix versions", {"type": "array", "items": "version", "system": "fixVersions"}, clauses=("fixVersion",)),
        sys("components", "Components", {"type": "array", "items": "component", "system": "components"}, clauses=("component",)),
        sys("issuelinks", "Linked Issues", {"type": "array", "items": "issuelinks", "system": "issuelinks"}, clauses=("issueLink",)),
        sys("subtasks", "Sub-tasks", {"type": "array", "items": "issuelinks", "system": "subtasks"}, orderable=False, clauses=("subtasks",)),
        sys("resolution", "Resolution", {"type": "resolution", "system": "resolution"}),
        sys("resolutiondate", "Resolved", {"type": "datetime", "system": "resolutiondate"}, orderable=False, clauses=("resolutiondate", "resolved")),
        sys("issuekey", "Key", None, orderable=False, clauses=("id", "issue", "issuekey", "key")),
        sys("thumbnail", "Images", None, orderable=False, searchable=False),
        sys("comment", "Comment", {"type": "comments-page", "system": "comment"}, navigable=False, clauses=("comment",)),
        sys("attachment", "Attachment", {"type": "array", "items": "attachment", "system": "attachment"}, navigable=False, clauses=("attachments",)),
        sys("worklog", "Log Work", {"type": "array", "items": "worklog", "system": "worklog"}, navigable=False, clauses=("worklogAuthor",)),
        Field(START_DATE_FIELD, "Start date", {"type": "date", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datepicker", "customId": 10015},
              True, True, True, True, ("cf[10015]", "Start date", "Start date[Date]")),
        Field(STORY_POINTS_FIELD, "Story Points", {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float", "customId": 10016},
              True, True, True, True, ("cf[10016]", "Story Points", "Story Points[Number]")),
        Field(SPRINT_FIELD, "Sprint", {"type": "array", "items": "json", "custom": "com.pyxis.greenhopper.jira:gh-sprint", "customId": 10020},
              True, True, True, True, ("cf[10020]", "Sprint", "Sprint[Sprint]")),
    ]
    return fields
