"""The control API plays people editing in Jira; every change emits the events webhooks are built from."""
from __future__ import annotations

import asyncio

from jirasim.model import ChangeEvent
from tests.jirasim.simsite import ALICE, BOB, RunningSite

ADMIN_ID = "557058:00000000-0000-4000-8000-000000000001"


def listen(running: RunningSite) -> list[ChangeEvent]:
    events: list[ChangeEvent] = []
    running.site.listeners.append(events.append)
    return events


async def test_create_edit_events(fresh_jira: RunningSite) -> None:
    events = listen(fresh_jira)
    alice = fresh_jira.site.user_by_email("alice@example.com").account_id
    async with fresh_jira.client() as c:
        r = await c.post("/_jirasim/issues", json={"project": "ALPHA", "summary": "Made by Alice", "issuetype": "Story",
                                                    "fields": {"duedate": "2026-03-01"}, "user": "alice@example.com"})
        assert r.status_code == 201
        key = r.json()["key"]
        created = events[-1]
        assert created.kind == "issue_created" and created.issue["key"] == key and created.changelog is None
        assert created.user["accountId"] == alice and isinstance(created.timestamp, int)
        assert created.issue["fields"]["duedate"] == "2026-03-01"
        r = await c.put(f"/_jirasim/issues/{key}", json={"fields": {"status": {"name": "In Progress"}, "summary": "Renamed"},
                                                          "user": alice})
        assert r.status_code == 200
        updated = events[-1]
        assert updated.kind == "issue_updated" and updated.issue["fields"]["summary"] == "Renamed"
        items = {i["fieldId"]: i for i in updated.changelog["items"]}
        assert items["status"]["fromString"] == "To Do" and items["status"]["toString"] == "In Progress"
        assert items["summary"] == {"field": "summary", "fieldtype": "jira", "fieldId": "summary", "from": None,
                                    "fromString": "Made by Alice", "to": None, "toString": "Renamed"}
        assert updated.changelog["id"] == r.json()["changelog"]["id"]
        # The same edit through REST is attributed to the REST caller.
    async with fresh_jira.client(auth=ALICE) as a:
        r = await a.put(f"/rest/api/3/issue/{key}", json={"fields": {"customfield_10016": 3}})
        assert r.status_code == 204
    assert events[-1].user["accountId"] == alice
    assert events[-1].changelog["items"][0]["field"] == "Story Points"


async def test_no_change_no_event(fresh_jira: RunningSite) -> None:
    events = listen(fresh_jira)
    summary = fresh_jira.site.issue("ALPHA-1").summary
    async with fresh_jira.client() as c:
        r = await c.put("/rest/api/3/issue/ALPHA-1", json={"fields": {"summary": summary}})
        assert r.status_code == 204
    assert events == []


async def test_move_keeps_old_key_resolving(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    events = listen(fresh_jira)
    parent = next(i for i in site.issues.values() if i.project_id == 10000 and
                  any(site.issues[k].issuetype_id == 10004 for k in site.children.get(i.id, [])))
    old_key = parent.key
    sub_ids = [k for k in site.children[parent.id] if site.issues[k].issuetype_id == 10004]
    async with fresh_jira.client() as c:
        r = await c.post(f"/_jirasim/issues/{old_key}/move", json={"project": "BRAVO"})
        assert r.status_code == 200 and r.json()["key"].startswith("BRAVO-")
        new_key = r.json()["key"]
        r = await c.get(f"/rest/api/3/issue/{old_key}")
        assert r.status_code == 200 and r.json()["key"] == new_key and r.json()["fields"]["project"]["key"] == "BRAVO"
        r = await c.post("/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": [old_key], "fields": ["summary"]})
        assert r.json()["issues"][0]["key"] == new_key
    move = next(e for e in events if e.issue and e.issue["id"] == str(parent.id))
    key_item = next(i for i in move.changelog["items"] if i["field"] == "Key")
    assert (key_item["fromString"], key_item["toString"]) == (old_key, new_key)
    assert all(site.issues[s].key.startswith("BRAVO-") for s in sub_ids)


async def test_delete_issue_removes_links_and_subtasks(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    events = listen(fresh_jira)
    async with fresh_jira.client() as c:
        r = await c.post("/_jirasim/links", json={"type": "Blocks", "source": "ALPHA-2", "destination": "ALPHA-3"})
        assert r.status_code == 201
        link = r.json()
        assert link["issueLinkType"]["name"] == "Blocks" and link["sourceIssueId"] == site.issue("ALPHA-2").id
        assert events[-1].kind == "issuelink_created" and events[-1].link == link
        links_of_2 = list(site.issue("ALPHA-2").link_ids)
        assert (await c.delete("/_jirasim/issues/ALPHA-2")).status_code == 204
        assert (await c.get("/rest/api/3/issue/ALPHA-2")).status_code == 404
    kinds = [e.kind for e in events[1:]]
    assert kinds.count("issuelink_deleted") == len(links_of_2) and kinds[-1] == "issue_deleted"
    assert events[-1].issue["key"] == "ALPHA-2"
    assert all(lid not in site.links for lid in links_of_2)


async def test_rest_link_events_and_direction(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    events = listen(fresh_jira)
    async with fresh_jira.client() as c:
        r = await c.post("/rest/api/3/issueLink", json={"type": {"name": "Blocks"}, "inwardIssue": {"key": "ALPHA-5"},
                                                        "outwardIssue": {"key": "ALPHA-6"}})
        assert r.status_code == 201
        event = events[-1]
        assert event.kind == "issuelink_created" and event.user["accountId"] == ADMIN_ID
        assert event.link["sourceIssueId"] == site.issue("ALPHA-5").id
        assert event.link["destinationIssueId"] == site.issue("ALPHA-6").id
        assert event.link["systemLink"] is False and event.link["issueLinkType"]["isSubTaskLinkType"] is False
        # Both issues record the link in their history and count as updated.
        src, dst = site.issue("ALPHA-5"), site.issue("ALPHA-6")
        assert site.changelogs[src.id][-1]["items"][0]["toString"] == "This issue blocks ALPHA-6"
        assert site.changelogs[dst.id][-1]["items"][0]["toString"] == "This issue is blocked by ALPHA-5"
        r = await c.post("/rest/api/3/search/jql", json={"jql": "project = ALPHA ORDER BY updated DESC", "maxResults": 2})
        assert {int(i["id"]) for i in r.json()["issues"]} == {src.id, dst.id}
        r = await c.delete(f"/rest/api/3/issueLink/{event.link['id']}")
        assert r.status_code == 204
        assert events[-1].kind == "issuelink_deleted" and events[-1].link["id"] == event.link["id"]
        assert (await c.delete(f"/_jirasim/links/{event.link['id']}")).status_code == 404


async def test_permissions_users_reset_and_bad_input(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    events = listen(fresh_jira)
    async with fresh_jira.client() as c:
        r = await c.put("/_jirasim/permissions", json={"email": "bob@example.com", "project": "ALPHA",
                                                       "permissions": ["BROWSE_PROJECTS", "EDIT_ISSUES"]})
        assert r.status_code == 200 and r.json()["projectPermissions"]["ALPHA"] == ["BROWSE_PROJECTS", "EDIT_ISSUES"]
    async with fresh_jira.client(auth=BOB) as b:
        assert (await b.put("/rest/api/3/issue/ALPHA-1", json={"fields": {"summary": "Bob"}})).status_code == 204
        assert (await b.put("/rest/api/3/issue/BRAVO-1", json={"fields": {"summary": "Bob"}})).status_code == 403
    async with fresh_jira.client() as c:
        r = await c.post("/_jirasim/users", json={"email": "erin@example.com", "displayName": "Erin",
                                                  "apiToken": "erin-token", "permissions": ["BROWSE_PROJECTS"]})
        assert r.status_code == 201
    async with fresh_jira.client(auth=("erin@example.com", "erin-token")) as e:
        assert (await e.get("/rest/api/3/issue/ALPHA-1")).status_code == 200
    async with fresh_jira.client() as c:
        bad = [
            ("POST", "/_jirasim/issues", {"summary": "no project"}),
            ("POST", "/_jirasim/issues", {"project": "NOPE", "summary": "x"}),
            ("POST", "/_jirasim/issues", {"project": "ALPHA", "summary": "x", "issuetype": "Sub-task"}),
            ("PUT", "/_jirasim/issues/ALPHA-1", {"fields": {"duedate": "tomorrow"}}),
            ("PUT", "/_jirasim/issues/ALPHA-1", {"fields": {}}),
            ("POST", "/_jirasim/links", {"type": "Nope", "source": "ALPHA-1", "destination": "ALPHA-3"}),
            ("PUT", "/_jirasim/permissions", {"email": "bob@example.com", "permissions": ["FLY"]}),
            ("PUT", "/_jirasim/permissions", {"email": "nobody@example.com", "permissions": []}),
            ("PUT", "/_jirasim/index", {"corrupted": "yes"}),
            ("POST", "/_jirasim/reset", {"issues": -1}),
            ("POST", "/_jirasim/users", {"email": "x@example.com"}),
        ]
        for method, path, body in bad:
            r = await c.request(method, path, json=body)
            assert r.status_code == 400, (path, body, r.status_code, r.text)
        assert (await c.get("/_jirasim/issues/NOPE-1")).status_code == 404
        events.clear()
        r = await c.post("/_jirasim/reset", json={"issues": 10, "seed": 5, "projects": ["ONE", "TWO", "THREE"]})
        assert r.status_code == 200 and r.json()["issues"] == 10 and len(r.json()["projects"]) == 3
        assert len(site.issues) == 10 and site.listeners  # the listener survived the reset
        r = await c.post("/_jirasim/issues", json={"project": "ONE", "summary": "after reset"})
        assert r.status_code == 201
        await asyncio.sleep(0)
    assert [e.kind for e in events] == ["issue_created"]


async def test_site_summary(jira: RunningSite) -> None:
    async with jira.client(auth=None) as c:
        body = (await c.get("/_jirasim/site")).json()
    assert body["baseUrl"] == jira.base_url and body["issues"] == len(jira.site.issues)
    admin = next(u for u in body["users"] if u["email"] == "admin@example.com")
    assert admin["apiToken"] == "jirasim-admin-token" and admin["globalPermissions"] == ["ADMINISTER"]
