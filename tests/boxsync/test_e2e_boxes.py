"""Boxes end to end against jirasim over real HTTP, on SQLite and PostgreSQL: create a Box through
the API, sync it as its Scope Owner, see Jira's changes arrive, and the rules around a sync."""
from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from boxsync.boxes.tables import boxes, tasks, wbs_nodes
from tests.boxsync.boxkit import ADMIN, ALICE, CAROL, world


@pytest.fixture
def w(database_url):
    with world(database_url) as made:
        yield made


def alpha_ids(w) -> set[str]:
    site = w.jira
    project = site.project_by_key("ALPHA")
    return {str(i) for i in site.by_project[project.id]}


def issue_nodes(wbs: dict) -> dict[str, dict]:
    return {n["issueId"]: n for n in wbs["nodes"] if n["kind"] == "issue"}


def test_an_admin_creates_a_box_and_its_sync_fills_the_wbs(w):
    box = w.create_box(builders=["jira-parent"], taskMode="manual")
    assert box["id"].isdigit() and box["scopeOwner"] == ADMIN and box["taskMode"] == "manual"
    assert box["scope"] == {"projects": ["ALPHA"], "jql": None, "filterId": None}
    assert w.api("GET", f"/api/boxes/{box['id']}").json() == box
    assert w.wbs(box["id"])["nodes"] == []  # reading the WBS never starts a sync
    assert w.api("GET", f"/api/boxes/{box['id']}/sync").json()["state"] == "idle"

    status = w.sync(box["id"])
    assert status["state"] == "done", status
    assert status["triggeredBy"] == ADMIN and status["readAs"] == ADMIN
    assert status["counts"]["added"] == len(alpha_ids(w)) and status["counts"]["removed"] == 0
    wbs = w.wbs(box["id"])
    nodes = issue_nodes(wbs)
    assert set(nodes) == alpha_ids(w)
    some = w.jira.issue(int(next(iter(nodes))))
    node = nodes[str(some.id)]
    assert node["issueKey"] == some.key and node["summary"] == some.summary
    assert node["taskMode"] == "manual"  # the Box's default, for tasks new to any Box
    assert all(n["parentId"] is None or n["parentId"] in {m["id"] for m in wbs["nodes"]} for n in wbs["nodes"])


def test_a_resync_picks_up_edits_and_an_issue_leaving_the_scope(w):
    box = w.create_box()
    assert w.sync(box["id"])["state"] == "done"
    key = w.jira.issue(int(sorted(alpha_ids(w))[0])).key
    edit = httpx.put(f"{w.site}/_jirasim/issues/{key}", json={"fields": {"summary": "Renamed <b>in</b> Jira"}})
    assert edit.status_code == 200, edit.text
    w.reset_counters()
    status = w.sync(box["id"])
    assert status["counts"]["changed"] == 1 and status["counts"]["added"] == 0, status
    # Only the changed issue was read again: one bulkfetch call, not every issue.
    assert w.calls("bulkFetchIssues") == 1
    node = next(n for n in w.wbs(box["id"])["nodes"] if n["issueKey"] == key)
    assert node["summary"] == "Renamed <b>in</b> Jira"

    moved = httpx.post(f"{w.site}/_jirasim/issues/{key}/move", json={"project": "BETA"})
    assert moved.status_code == 200, moved.text
    status = w.sync(box["id"])
    assert status["counts"]["removed"] == 1, status
    assert str(moved.json()["id"]) not in issue_nodes(w.wbs(box["id"]))


def test_an_unchanged_box_resyncs_without_reading_issues_again(w):
    box = w.create_box()
    w.sync(box["id"])
    w.reset_counters()
    status = w.sync(box["id"])
    assert status["counts"] == {"added": 0, "changed": 0, "removed": 0, "moved": 0, "read": 0}
    assert w.calls("bulkFetchIssues") == 0


def test_a_corrupted_index_refuses_the_sync_until_continue_anyway(w):
    box = w.create_box()
    assert httpx.put(f"{w.site}/_jirasim/index", json={"corrupted": True}).status_code == 200
    status = w.sync(box["id"])
    assert status["state"] == "refused" and "index" in status["reason"], status
    assert w.wbs(box["id"])["nodes"] == []
    status = w.sync(box["id"], continueOnCorruptedIndex=True)
    assert status["state"] == "done", status
    assert set(issue_nodes(w.wbs(box["id"]))) == alpha_ids(w)


def test_a_scope_owner_who_cannot_see_a_project_never_gets_its_issues(w):
    box = w.create_box(scope={"projects": ["ALPHA", "BETA"]}, scopeOwner=CAROL)
    status = w.sync(box["id"])
    assert status["state"] == "done" and status["readAs"] == CAROL, status
    held = set(issue_nodes(w.wbs(box["id"])))
    beta = {str(i) for i in w.jira.by_project[w.jira.project_by_key("BETA").id]}
    assert held == beta and not held & alpha_ids(w)


def test_viewers_see_only_tasks_of_projects_they_may_browse(w):
    box = w.create_box(scope={"projects": ["ALPHA", "BETA"]})
    w.sync(box["id"])
    seen = w.wbs(box["id"], as_=CAROL)
    restricted = [n for n in seen["nodes"] if n.get("restricted")]
    assert {n["issueId"] for n in restricted} == alpha_ids(w)
    assert all(n["summary"] is None and n["issueKey"] is None and n["status"] is None for n in restricted)
    assert all(not n.get("restricted") for n in w.wbs(box["id"])["nodes"])


def test_two_concurrent_syncs_of_one_box_run_once(w):
    box = w.create_box()
    httpx.post(f"{w.site}/_jirasim/faults", json={"kind": "latency", "seconds": 0.3, "endpoint": "bulkFetchIssues"})
    first = w.api("POST", f"/api/boxes/{box['id']}/sync")
    second = w.api("POST", f"/api/boxes/{box['id']}/sync", as_=ALICE)
    assert first.status_code == second.status_code == 202
    assert first.json()["runId"] == second.json()["runId"]
    assert second.json()["triggeredBy"] == ADMIN  # joined the admin's run
    assert w.wait(box["id"])["state"] == "done"


def test_box_api_refuses_bad_input_and_changes_nothing(w):
    cases = [
        ({"type": "Project"}, "name"),
        ({"name": "x", "type": "Galaxy"}, "type"),
        ({"name": "x", "type": "Project", "taskMode": "auto"}, "taskMode"),
        ({"name": "x", "type": "Project", "builders": ["project", "project"]}, "builders"),
        ({"name": "x", "type": "Project", "start": "2026-13-01"}, "start"),
        ({"name": "x", "type": "Project", "start": "2026-02-01", "end": "2026-01-01"}, "end"),
        ({"name": "x", "type": "Project", "scope": {"projects": ["not a key"]}}, "scope.projects"),
        ({"name": "x", "type": "Project", "parentId": "12345"}, "parentId"),
        ({"name": "x", "type": "Program", "scopeType": "none", "scope": {"projects": ["ALPHA"]}}, "scope"),
        ({"name": "x", "type": "Project", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        resp = w.api("POST", "/api/boxes", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["field"] == field and field in resp.json()["error"], resp.json()
    bad_json = w.api("POST", "/api/boxes", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]
    assert w.api("GET", "/api/boxes").json() == []
    # Editing: the type and scope type are fixed at creation.
    box = w.create_box()
    resp = w.api("PATCH", f"/api/boxes/{box['id']}", json={"type": "Program"})
    assert resp.status_code == 422 and resp.json()["field"] == "type"
    assert w.api("GET", f"/api/boxes/{box['id']}").json() == box
    assert w.api("GET", "/api/boxes/99999").status_code == 404
    assert w.api("GET", "/api/boxes/abc").status_code == 404


def test_only_jira_admins_create_edit_and_delete_boxes(w):
    assert w.api("POST", "/api/boxes", as_=ALICE, json={"name": "x", "type": "Project"}).status_code == 403
    box = w.create_box()
    assert w.api("PATCH", f"/api/boxes/{box['id']}", as_=ALICE, json={"name": "y"}).status_code == 403
    assert w.api("DELETE", f"/api/boxes/{box['id']}", as_=ALICE).status_code == 403
    assert w.api("GET", f"/api/boxes/{box['id']}", as_=ALICE).status_code == 200
    edited = w.api("PATCH", f"/api/boxes/{box['id']}", json={"name": "Renamed", "status": "in-progress"})
    assert edited.status_code == 200 and edited.json()["name"] == "Renamed"
    parent = w.create_box(name="Portfolio", type="Portfolio", scopeType="none", scope=None)
    child = w.create_box(name="Child", parentId=parent["id"])
    assert w.api("DELETE", f"/api/boxes/{parent['id']}").status_code == 409
    assert w.api("DELETE", f"/api/boxes/{child['id']}").status_code == 204
    assert w.api("DELETE", f"/api/boxes/{parent['id']}").status_code == 204


def test_the_panel_shows_the_issue_in_its_boxes(w):
    box = w.create_box(builders=["jira-parent"])
    w.sync(box["id"])
    issue = w.jira.issue(int(sorted(alpha_ids(w))[0]))
    data = w.api("GET", f"/api/panel/{issue.id}").json()
    assert [b["id"] for b in data["boxes"]] == [box["id"]] and data["boxId"] == box["id"]
    assert data["node"]["issueKey"] == issue.key and data["sync"]["state"] == "done"
    assert any(s["issueId"] == str(issue.id) for s in data["siblings"])
    # CAROL may not browse ALPHA: the issue is not shown to her at all.
    assert w.api("GET", f"/api/panel/{issue.id}", as_=CAROL).status_code == 404
    assert w.api("GET", f"/api/issues/{issue.id}/boxes", as_=CAROL).status_code == 404
    assert [b["id"] for b in w.api("GET", f"/api/issues/{issue.id}/boxes").json()] == [box["id"]]
    # An issue in no Box: an empty answer (the panel's empty state), not an error.
    empty = w.api("GET", "/api/panel/1")
    assert empty.status_code == 200 and empty.json()["boxes"] == [] and empty.json()["node"] is None


async def test_every_new_table_is_scoped_and_the_sync_stored_tasks(w, engine):
    box = w.create_box()
    w.sync(box["id"])
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(tasks))).scalar()
        nodes = (await conn.execute(sa.select(sa.func.count()).select_from(wbs_nodes))).scalar()
        flagged = (await conn.execute(sa.select(boxes.c.needs_full_sync))).scalars().all()
    assert stored == nodes == len(alpha_ids(w)) and flagged == [False]


def test_blocks_links_become_fs_dependencies_with_the_blocker_first(w):
    box = w.create_box()
    first, second = sorted(int(i) for i in alpha_ids(w))[:2]
    a, b = w.jira.issue(first), w.jira.issue(second)
    link = httpx.post(f"{w.site}/_jirasim/links", json={"type": "Blocks", "source": a.key, "destination": b.key})
    assert link.status_code == 201, link.text
    w.sync(box["id"])
    deps = [d for d in w.wbs(box["id"])["dependencies"] if d["linkId"] == str(link.json()["id"])]
    assert deps == [{"fromIssueId": str(a.id), "toIssueId": str(b.id), "type": "FS", "linkId": str(link.json()["id"])}]
    # A viewer who may not browse ALPHA sees no dependency between its tasks.
    assert w.wbs(box["id"], as_=CAROL)["dependencies"] == []
    httpx.delete(f"{w.site}/_jirasim/links/{link.json()['id']}")
    w.sync(box["id"])
    assert not [d for d in w.wbs(box["id"])["dependencies"] if d["linkId"] == str(link.json()["id"])]


def test_a_scope_jira_refuses_fails_the_sync_with_jiras_reason_and_keeps_the_wbs(w):
    box = w.create_box()
    w.sync(box["id"])
    before = w.wbs(box["id"])["nodes"]
    edited = w.api("PATCH", f"/api/boxes/{box['id']}", json={"scope": {"projects": [], "jql": "projectt = ALPHA"}})
    assert edited.status_code == 200
    status = w.sync(box["id"])
    assert status["state"] == "failed" and "scope" in status["reason"], status
    assert w.wbs(box["id"])["nodes"] == before  # nothing half-applied
    w.api("PATCH", f"/api/boxes/{box['id']}", json={"scope": {"projects": ["ALPHA"]}})
    assert w.sync(box["id"])["state"] == "done"


def test_structure_builders_shape_the_stored_wbs_and_hide_groups_of_hidden_work(w):
    box = w.create_box(scope={"projects": ["ALPHA", "BETA"]}, builders=["project", "jira-parent"])
    w.sync(box["id"])
    nodes = w.wbs(box["id"])["nodes"]
    top = [n for n in nodes if n["parentId"] is None]
    assert [(n["kind"], n["summary"]) for n in top] == [("project", "Alpha Project"), ("project", "Beta Project")]
    by_id = {n["id"]: n for n in nodes}
    for n in nodes:
        if n["kind"] == "issue":
            issue = w.jira.issue(int(n["issueId"]))
            root = n
            while root["parentId"] is not None:
                root = by_id[root["parentId"]]
            assert root["id"] == f"project:{issue.project_id}"
            parent = by_id.get(n["parentId"])
            if issue.parent_id and str(issue.parent_id) in issue_nodes({"nodes": nodes}):
                assert parent["issueId"] == str(issue.parent_id)  # under its Jira parent
    carol = {n["id"]: n for n in w.wbs(box["id"], as_=CAROL)["nodes"]}
    alpha = f"project:{w.jira.project_by_key('ALPHA').id}"
    assert carol[alpha]["restricted"] and carol[alpha]["summary"] is None
    assert carol[f"project:{w.jira.project_by_key('BETA').id}"]["summary"] == "Beta Project"


def test_the_panel_looks_for_boxes_to_sync_at_most_every_few_seconds_per_issue(monkeypatch):
    from types import SimpleNamespace

    from boxsync.panel import routes

    state, clock = SimpleNamespace(), [100.0]
    monkeypatch.setattr(routes.time, "monotonic", lambda: clock[0])
    assert routes._check_due(state, 1, 10) is True
    assert routes._check_due(state, 1, 10) is False  # the same issue a moment later
    assert routes._check_due(state, 1, 11) is True and routes._check_due(state, 2, 10) is True  # others
    clock[0] += routes.DUE_CHECK_SECONDS + 0.1
    assert routes._check_due(state, 1, 10) is True
