"""Seeded site content: projects, users with varied permissions, versions, components, sprints, and
issues in an Epic → Story/Task/Bug → Sub-task hierarchy with Blocks/Relates links and dates.

Same seed, same site (ids, keys, dates, links): everything comes from one `random.Random(seed)` and
a fixed epoch, never from the clock. Issues are inserted directly (no events, no validation
round-trips) so 100,000 issues build in a few seconds.
"""
from __future__ import annotations

import random
from datetime import date, timedelta

from jirasim.model import (
    ADMIN_PROJECT,
    BROWSE,
    EDIT,
    LINK,
    SCHEDULE,
    Issue,
    Link,
    Site,
)

PROJECT_NAMES = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL", "INDIA", "JULIET"]
EPOCH = date(2025, 1, 1)
EPOCH_MS = 1735689600000  # 2025-01-01T00:00:00Z
DAY_MS = 86_400_000

WORDS = ("api", "billing", "login", "report", "search", "export", "sync", "cache", "dashboard", "invoice",
         "mobile", "payment", "audit", "import", "webhook", "timeline", "roadmap", "backlog", "schema", "quota")
VERBS = ("Fix", "Add", "Improve", "Refactor", "Document", "Remove", "Migrate", "Test", "Design", "Review")

# Users beyond the admin, with the permission shapes tests need.
USERS = [
    # email, name, token, default perms, per-first-project override
    ("alice@example.com", "Alice Editor", "alice-token", {BROWSE, EDIT, LINK, SCHEDULE, ADMIN_PROJECT}, None),
    ("bob@example.com", "Bob Viewer", "bob-token", {BROWSE}, None),
    ("carol@example.com", "Carol Outsider", "carol-token", {BROWSE, EDIT, LINK, SCHEDULE}, set()),
    ("dave@example.com", "Dave Nolink", "dave-token", {BROWSE, EDIT, SCHEDULE}, None),
]


def project_keys(projects: int | list[str] | None, issues: int) -> list[str]:
    if isinstance(projects, list):
        return [p.upper() for p in projects]
    count = projects if isinstance(projects, int) else (2 if issues < 1000 else min(10, 2 + issues // 10_000))
    return [PROJECT_NAMES[i] if i < len(PROJECT_NAMES) else f"P{i}" for i in range(count)]


def populate(site: Site, *, issues: int = 0, projects: int | list[str] | None = None, seed: int = 0) -> None:
    """Fill an empty site. Deterministic for a given (issues, projects, seed)."""
    rng = random.Random(seed)
    keys = project_keys(projects, issues)
    made = [site.add_project(k, k.title() + " Project", id=10000 + i) for i, k in enumerate(keys)]
    for n, (email, name, token, perms, first_override) in enumerate(USERS):
        u = site.add_user(email, name, api_token=token, default_permissions=perms,
                          account_id=f"557058:00000000-0000-4000-8000-{100 + n:012d}")
        if first_override is not None and made:
            u.project_permissions[made[0].id] = frozenset(first_override)
    people = list(site.users)
    for pi, p in enumerate(made):
        for v in range(3):
            d = EPOCH + timedelta(days=90 * (v + 1))
            site.add_version(p.id, f"{p.key} v{v + 1}.0", released=v == 0, release_date=d.isoformat())
        for c in ("Backend", "Frontend", "Infrastructure"):
            site.add_component(p.id, c)
        for s in range(4):
            state = ("closed", "active", "future", "future")[s]
            start = EPOCH + timedelta(days=14 * (s + pi))
            site.add_sprint(f"{p.key} Sprint {s + 1}", state, board_id=pi + 1,
                            start_date=f"{start.isoformat()}T09:00:00.000Z",
                            end_date=f"{(start + timedelta(days=14)).isoformat()}T17:00:00.000Z")
    if issues <= 0 or not made:
        return
    _issues(site, rng, made, issues, people)


def _issues(site: Site, rng: random.Random, projects: list, total: int, people: list[str]) -> None:
    statuses = [10000] * 40 + [3] * 25 + [10001] * 10 + [10002] * 25
    per_project = [total // len(projects) + (1 if i < total % len(projects) else 0) for i in range(len(projects))]
    versions_by_project = {p.id: [v.id for v in site.versions.values() if v.project_id == p.id] for p in projects}
    components_by_project = {p.id: [c.id for c in site.components.values() if c.project_id == p.id] for p in projects}
    sprints_by_board = {}
    for s in site.sprints.values():
        sprints_by_board.setdefault(s.board_id, []).append(s.id)
    next_id = 10000
    standard: list[int] = []  # ids usable as link ends
    for pi, (p, quota) in enumerate(zip(projects, per_project)):
        epics: list[int] = []
        parents: list[int] = []
        n_epics = max(1, quota // 25)
        n_sub = quota * 15 // 100
        n_std = quota - n_epics - n_sub
        sprint_ids = sprints_by_board.get(pi + 1, [])
        for n in range(quota):
            if n < n_epics:
                type_id, parent = 10000, None
            elif n < n_epics + n_std:
                type_id = rng.choice((10001, 10001, 10002, 10002, 10003))
                parent = rng.choice(epics) if rng.random() < 0.7 else None
            else:
                if not parents:
                    break
                type_id, parent = 10004, rng.choice(parents)
            created = EPOCH_MS + rng.randrange(0, 300) * DAY_MS + rng.randrange(DAY_MS)
            updated = created + rng.randrange(0, 60) * DAY_MS + rng.randrange(DAY_MS)
            start = None
            due = None
            if rng.random() < 0.8:
                s = EPOCH + timedelta(days=rng.randrange(0, 330))
                start = s.isoformat()
                due = (s + timedelta(days=rng.randrange(1, 45 if type_id != 10000 else 120))).isoformat()
            issue = Issue(
                id=next_id,
                key=f"{p.key}-{p.next_number}",
                project_id=p.id,
                issuetype_id=type_id,
                status_id=rng.choice(statuses),
                summary=f"{rng.choice(VERBS)} {rng.choice(WORDS)} {rng.choice(WORDS)} ({p.key}-{p.next_number})",
                created=created,
                updated=updated,
                reporter=rng.choice(people),
                assignee=rng.choice(people) if rng.random() < 0.7 else None,
                parent_id=parent,
                duedate=due,
                start_date=start,
                story_points=float(rng.choice((1, 2, 3, 5, 8, 13))) if type_id == 10001 else None,
                sprint_ids=[rng.choice(sprint_ids)] if sprint_ids and type_id in (10001, 10002, 10003) and rng.random() < 0.5 else [],
                fix_version_ids=[rng.choice(versions_by_project[p.id])] if rng.random() < 0.3 else [],
                component_ids=[rng.choice(components_by_project[p.id])] if rng.random() < 0.4 else [],
                priority_id=rng.choice((2, 3, 3, 3, 4)),
            )
            next_id += 1
            p.next_number += 1
            site.issues[issue.id] = issue
            site.key_index[issue.key] = issue.id
            site.by_project[p.id][issue.id] = None
            if parent is not None:
                site.children.setdefault(parent, []).append(issue.id)
            if type_id == 10000:
                epics.append(issue.id)
            elif type_id != 10004:
                parents.append(issue.id)
                standard.append(issue.id)
    # Keep the site's id counter ahead of the generated ids.
    site._ids["issue"] = iter(range(next_id, 1 << 62))  # noqa: SLF001
    _links(site, rng, standard)


def _links(site: Site, rng: random.Random, ends: list[int]) -> None:
    if len(ends) < 2:
        return
    link_id = 10000
    seen: set[tuple[int, int, int]] = set()
    for _ in range(len(ends) // 5):
        a = rng.choice(ends)
        # Mostly near neighbours (same project, similar age), sometimes anywhere.
        if rng.random() < 0.8:
            i = ends.index(a) if len(ends) < 64 else None
            b = ends[min(len(ends) - 1, max(0, (i if i is not None else _pos(ends, a)) + rng.randint(-30, 30)))]
        else:
            b = rng.choice(ends)
        if a == b:
            continue
        type_id = 10000 if rng.random() < 0.75 else 10003
        if (type_id, a, b) in seen:
            continue
        seen.add((type_id, a, b))
        site.links[link_id] = Link(link_id, type_id, a, b)
        site.issues[a].link_ids.append(link_id)
        site.issues[b].link_ids.append(link_id)
        link_id += 1
    site._ids["link"] = iter(range(link_id, 1 << 62))  # noqa: SLF001


def _pos(ends: list[int], value: int) -> int:
    # `ends` is ascending (ids are assigned in order), so bisect finds the position in O(log n).
    import bisect

    return bisect.bisect_left(ends, value)
