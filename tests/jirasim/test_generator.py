"""The seeded generator: same seed → same site; the shapes tests rely on; fast at scale."""
from __future__ import annotations

import time

from jirasim.generator import populate
from jirasim.model import Site
from jirasim.render import render_issue


def build(seed: int, issues: int = 1500) -> Site:
    site = Site("g", "http://jira.test")
    populate(site, issues=issues, seed=seed)
    return site


def fingerprint(site: Site) -> list:
    return [(i.id, i.key, i.issuetype_id, i.status_id, i.parent_id, i.duedate, i.start_date, i.summary,
             tuple(i.link_ids), i.created, i.updated) for i in site.issues.values()]


def test_same_seed_same_site_and_different_seed_differs() -> None:
    a, b, c = build(42), build(42), build(43)
    assert fingerprint(a) == fingerprint(b)
    assert [(l.id, l.type_id, l.source_id, l.destination_id) for l in a.links.values()] == \
        [(l.id, l.type_id, l.source_id, l.destination_id) for l in b.links.values()]
    assert fingerprint(a) != fingerprint(c)
    assert render_issue(a, a.issue("ALPHA-7")) == render_issue(b, b.issue("ALPHA-7"))


def test_hierarchy_links_dates_and_users() -> None:
    site = build(1)
    assert len(site.issues) == 1500
    types = {site.issue_types[i.issuetype_id].name for i in site.issues.values()}
    assert types == {"Epic", "Story", "Task", "Bug", "Sub-task"}
    for issue in site.issues.values():
        it = site.issue_types[issue.issuetype_id]
        if it.subtask:
            parent = site.issues[issue.parent_id]
            assert site.issue_types[parent.issuetype_id].hierarchy_level == 0
            assert parent.project_id == issue.project_id
        elif issue.parent_id is not None:
            assert site.issue_types[site.issues[issue.parent_id].issuetype_id].name == "Epic"
        if issue.start_date and issue.duedate:
            assert issue.start_date <= issue.duedate
    link_types = {l.type_id for l in site.links.values()}
    assert link_types == {10000, 10003}
    assert all(l.source_id != l.destination_id for l in site.links.values())
    assert any(i.sprint_ids for i in site.issues.values())
    assert any(i.fix_version_ids for i in site.issues.values())
    assert any(i.component_ids for i in site.issues.values())
    assert {s.state for s in site.sprints.values()} == {"closed", "active", "future"}
    emails = {u.email for u in site.users.values()}
    assert {"admin@example.com", "bob@example.com", "carol@example.com"} <= emails
    bob = site.user_by_email("bob@example.com")
    assert site.has_permission(bob.account_id, "BROWSE_PROJECTS", 10000)
    assert not site.has_permission(bob.account_id, "EDIT_ISSUES", 10000)
    carol = site.user_by_email("carol@example.com")
    assert not site.has_permission(carol.account_id, "BROWSE_PROJECTS", 10000)
    assert site.has_permission(carol.account_id, "BROWSE_PROJECTS", 10001)


def test_new_issues_get_ids_and_keys_after_generated_ones() -> None:
    site = build(2, issues=100)
    top = max(site.issues)
    issue = site.create_issue("ALPHA", "fresh")
    assert issue.id == top + 1
    assert issue.key == f"ALPHA-{len(site.by_project[10000])}"


def test_100k_issues_build_in_seconds() -> None:
    started = time.perf_counter()
    site = build(9, issues=100_000)
    elapsed = time.perf_counter() - started
    assert len(site.issues) == 100_000
    assert elapsed < 15, elapsed


def test_projects_added_after_generation_get_fresh_ids():
    from jirasim.model import Site
    from jirasim.generator import populate

    site = Site("s", "http://127.0.0.1:1")
    populate(site, issues=20, projects=2, seed=1)
    before = {p.id: p.key for p in site.projects.values()}
    extra = site.add_project("EXTRA", "Extra")
    assert extra.id not in before and {p.id: p.key for p in site.projects.values() if p.id in before} == before
