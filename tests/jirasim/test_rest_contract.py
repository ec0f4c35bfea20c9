"""Every REST endpoint jirasim serves: status codes and bodies validated against Jira's OpenAPI spec."""
from __future__ import annotations

from jirasim import rest
from jirasim.model import SPRINT_FIELD, START_DATE_FIELD, STORY_POINTS_FIELD

from tests.jirasim.openapi import connect_scope, validate_response
from tests.jirasim.simsite import ALICE, BOB, CAROL, DAVE, RunningSite


async def check(client, method: str, url: str, template: str, status: int, **kwargs):
    response = await client.request(method, url, **kwargs)
    assert response.status_code == status, (method, url, response.status_code, response.text[:500])
    body = response.json() if response.content else None
    validate_response(method, template, status, body)
    return body


# --- site-level reads ------------------------------------------------------------------------------

async def test_server_info_anonymous_and_authenticated(jira: RunningSite) -> None:
    async with jira.client(auth=None) as anon:
        body = await check(anon, "GET", "/rest/api/3/serverInfo", "/rest/api/3/serverInfo", 200)
    assert body["baseUrl"] == jira.base_url and body["deploymentType"] == "Cloud"
    async with jira.client() as c:
        await check(c, "GET", "/rest/api/3/serverInfo", "/rest/api/3/serverInfo", 200)
    async with jira.client(auth=("admin@example.com", "wrong")) as bad:
        await check(bad, "GET", "/rest/api/3/serverInfo", "/rest/api/3/serverInfo", 401)


async def test_myself(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "GET", "/rest/api/3/myself", "/rest/api/3/myself", 200)
    assert body["emailAddress"] == "admin@example.com" and body["accountType"] == "atlassian"
    async with jira.client(auth=None) as anon:
        await check(anon, "GET", "/rest/api/3/myself", "/rest/api/3/myself", 401)


async def test_fields_include_custom_fields(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "GET", "/rest/api/3/field", "/rest/api/3/field", 200)
    by_id = {f["id"]: f for f in body}
    assert by_id[START_DATE_FIELD]["name"] == "Start date" and by_id[START_DATE_FIELD]["schema"]["type"] == "date"
    assert by_id[STORY_POINTS_FIELD]["schema"]["type"] == "number"
    assert by_id[SPRINT_FIELD]["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-sprint"
    assert by_id["summary"]["custom"] is False
    async with jira.client(auth=None) as anon:
        await check(anon, "GET", "/rest/api/3/field", "/rest/api/3/field", 401)


async def test_issue_link_types(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "GET", "/rest/api/3/issueLinkType", "/rest/api/3/issueLinkType", 200)
    types = {t["name"]: t for t in body["issueLinkTypes"]}
    assert types["Blocks"] == {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks",
                               "self": f"{jira.base_url}/rest/api/3/issueLinkType/10000"}
    assert {types[n]["id"] for n in ("Relates", "Duplicate", "Cloners")} == {"10003", "10002", "10001"}


async def test_project_search_paging_and_visibility(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "GET", "/rest/api/3/project/search?maxResults=1", "/rest/api/3/project/search", 200)
        assert body["total"] == 2 and body["isLast"] is False and len(body["values"]) == 1 and "nextPage" in body
        body = await check(c, "GET", "/rest/api/3/project/search?startAt=1&maxResults=500", "/rest/api/3/project/search", 200)
        assert body["maxResults"] == 100 and body["isLast"] is True and body["values"][0]["key"] == "BRAVO"
        body = await check(c, "GET", "/rest/api/3/project/search?keys=ALPHA", "/rest/api/3/project/search", 200)
        assert [p["key"] for p in body["values"]] == ["ALPHA"]
        await check(c, "GET", "/rest/api/3/project/search?startAt=x", "/rest/api/3/project/search", 400)
    async with jira.client(auth=CAROL) as carol:
        body = await check(carol, "GET", "/rest/api/3/project/search", "/rest/api/3/project/search", 200)
    assert [p["key"] for p in body["values"]] == ["BRAVO"]


async def test_all_projects(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "GET", "/rest/api/3/project", "/rest/api/3/project", 200)
    assert [p["key"] for p in body] == ["ALPHA", "BRAVO"]
    async with jira.client(auth=CAROL) as carol:
        body = await check(carol, "GET", "/rest/api/3/project", "/rest/api/3/project", 200)
    assert [p["key"] for p in body] == ["BRAVO"]
    async with jira.client() as c:
        body = await check(c, "GET", "/rest/api/3/project/ALPHA", "/rest/api/3/project/{projectIdOrKey}", 200)
        assert body["key"] == "ALPHA" and len(body["versions"]) == 3 and body["issueTypes"]
        await check(c, "GET", "/rest/api/3/project/10001", "/rest/api/3/project/{projectIdOrKey}", 200)
        await check(c, "GET", "/rest/api/3/project/NOPE", "/rest/api/3/project/{projectIdOrKey}", 404)
    async with jira.client(auth=CAROL) as carol:
        await check(carol, "GET", "/rest/api/3/project/ALPHA", "/rest/api/3/project/{projectIdOrKey}", 404)


async def test_legacy_search_is_gone(jira: RunningSite) -> None:
    async with jira.client() as c:
        for method in ("GET", "POST"):
            r = await c.request(method, "/rest/api/3/search", params={"jql": "project = ALPHA"})
            assert r.status_code == 410
            assert "migrate to the /rest/api/3/search/jql API" in r.json()["errorMessages"][0]
            assert r.json()["errors"] == {}


async def test_index_summary_shape_and_corruption(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as c:
        r = await c.get("/rest/api/2/index/summary")
        assert r.status_code == 200
        body = r.json()
        idx = body["issueIndex"]
        assert set(idx) >= {"indexReadable", "countInDatabase", "countInIndex", "countInArchive",
                            "lastUpdatedInDatabase", "lastUpdatedInIndex"}
        assert isinstance(body["nodeId"], str) and isinstance(body["reportTime"], str)
        assert idx["countInDatabase"] == idx["countInIndex"] == len(fresh_jira.site.issues)
        assert (await c.put("/_jirasim/index", json={"corrupted": True})).json() == {"corrupted": True}
        idx = (await c.get("/rest/api/2/index/summary")).json()["issueIndex"]
        assert idx["countInDatabase"] != idx["countInIndex"]
        assert idx["lastUpdatedInIndex"] < idx["lastUpdatedInDatabase"]
    async with fresh_jira.client(auth=ALICE) as alice:
        assert (await alice.get("/rest/api/2/index/summary")).status_code == 403


# --- search ------------------------------------------------------------------------------------------

async def test_search_jql_get_pages_ids_with_tokens(jira: RunningSite) -> None:
    expected = {i.id for i in jira.site.issues.values() if i.project_id == 10000}
    seen: list[int] = []
    token = None
    async with jira.client() as c:
        while True:
            params = {"jql": "project = ALPHA ORDER BY key", "maxResults": 40}
            if token:
                params["nextPageToken"] = token
            body = await check(c, "GET", "/rest/api/3/search/jql", "/rest/api/3/search/jql", 200, params=params)
            assert "total" not in body and "startAt" not in body
            assert all(set(issue) == {"id"} for issue in body["issues"])  # default: ids only
            seen += [int(i["id"]) for i in body["issues"]]
            if body["isLast"]:
                assert "nextPageToken" not in body
                break
            token = body["nextPageToken"]
    assert len(seen) == len(expected) and set(seen) == expected


async def test_search_jql_post_with_fields_caps_at_100(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "POST", "/rest/api/3/search/jql", "/rest/api/3/search/jql", 200,
                           json={"jql": "project in (ALPHA, BRAVO) order by key", "maxResults": 1000,
                                 "fields": ["summary", "status", "issuetype", "parent", "duedate", START_DATE_FIELD,
                                            "issuelinks", "updated"], "expand": "names"})
        assert len(body["issues"]) == 100 and body["isLast"] is False
        issue = body["issues"][0]
        assert set(issue["fields"]) >= {"summary", "status", "issuetype", "updated", "issuelinks"}
        assert issue["key"] == "ALPHA-1" and issue["id"].isdigit()
        assert body["names"]["summary"] == "Summary"
        ids_only = await check(c, "POST", "/rest/api/3/search/jql", "/rest/api/3/search/jql", 200,
                               json={"jql": "project in (ALPHA, BRAVO)", "maxResults": 10000, "fields": ["id"]})
        assert len(ids_only["issues"]) == len(jira.site.issues)  # ≤ 5000 ids per page


async def test_search_jql_errors(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "GET", "/rest/api/3/search/jql?jql=project%20%3D", "/rest/api/3/search/jql", 400)
        assert body["errorMessages"][0].startswith("Error in the JQL Query:") and body["errors"] == {}
        for unbounded in ("", "order by key desc"):
            body = await check(c, "POST", "/rest/api/3/search/jql", "/rest/api/3/search/jql", 400, json={"jql": unbounded})
            assert body["errorMessages"] == ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."]
        body = await check(c, "GET", "/rest/api/3/search/jql", "/rest/api/3/search/jql", 400,
                           params={"jql": "project = ALPHA", "nextPageToken": "garbage"})
        await check(c, "POST", "/rest/api/3/search/jql", "/rest/api/3/search/jql", 400, content=b"{not json")
    async with jira.client(auth=None) as anon:
        await check(anon, "GET", "/rest/api/3/search/jql?jql=project%3DALPHA", "/rest/api/3/search/jql", 401)


async def test_search_only_returns_browsable_issues(jira: RunningSite) -> None:
    async with jira.client(auth=CAROL) as carol:
        body = await check(carol, "POST", "/rest/api/3/search/jql", "/rest/api/3/search/jql", 200,
                           json={"jql": "project in (ALPHA, BRAVO)", "maxResults": 5000})
    bravo = {i.id for i in jira.site.issues.values() if i.project_id == 10001}
    assert {int(i["id"]) for i in body["issues"]} == bravo


async def test_approximate_count(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "POST", "/rest/api/3/search/approximate-count", "/rest/api/3/search/approximate-count",
                           200, json={"jql": "project = ALPHA"})
        assert body == {"count": len(jira.site.by_project[10000])}
        await check(c, "POST", "/rest/api/3/search/approximate-count", "/rest/api/3/search/approximate-count",
                    400, json={"jql": "order by key"})
        await check(c, "POST", "/rest/api/3/search/approximate-count", "/rest/api/3/search/approximate-count",
                    400, json={"jql": "project = NOPE"})


async def test_bulkfetch(jira: RunningSite) -> None:
    site = jira.site
    wanted = ["ALPHA-3", str(site.issue("ALPHA-1").id), "BRAVO-2", "NOPE-1", "ALPHA-3"]
    async with jira.client() as c:
        body = await check(c, "POST", "/rest/api/3/issue/bulkfetch", "/rest/api/3/issue/bulkfetch", 200,
                           json={"issueIdsOrKeys": wanted, "fields": ["summary", "status", "issuelinks"]})
        ids = [int(i["id"]) for i in body["issues"]]
        assert ids == sorted(ids) and len(ids) == 3
        assert body["issueErrors"] == [{"id": "NOPE-1", "errorMessage": "Issue does not exist or you do not have permission to see it."}]
        assert set(body["issues"][0]["fields"]) == {"summary", "status", "issuelinks"}
        await check(c, "POST", "/rest/api/3/issue/bulkfetch", "/rest/api/3/issue/bulkfetch", 400,
                    json={"issueIdsOrKeys": [str(i) for i in range(10000, 10101)]})
        await check(c, "POST", "/rest/api/3/issue/bulkfetch", "/rest/api/3/issue/bulkfetch", 400, json={})
    async with jira.client(auth=CAROL) as carol:
        body = await check(carol, "POST", "/rest/api/3/issue/bulkfetch", "/rest/api/3/issue/bulkfetch", 200,
                           json={"issueIdsOrKeys": ["ALPHA-1", "BRAVO-1"]})
    assert [i["key"] for i in body["issues"]] == ["BRAVO-1"] and body["issueErrors"][0]["id"] == "ALPHA-1"


async def test_jql_match(jira: RunningSite) -> None:
    site = jira.site
    a1, b1 = site.issue("ALPHA-1").id, site.issue("BRAVO-1").id
    async with jira.client() as c:
        body = await check(c, "POST", "/rest/api/3/jql/match", "/rest/api/3/jql/match", 200,
                           json={"jqls": ["project = ALPHA", "project = BRAVO OR key = ALPHA-1", "project = ="],
                                 "issueIds": [a1, b1, 1]})
        assert body["matches"][0] == {"matchedIssues": [a1], "errors": []}
        assert sorted(body["matches"][1]["matchedIssues"]) == sorted([a1, b1])
        assert body["matches"][2]["matchedIssues"] == [] and body["matches"][2]["errors"]
        await check(c, "POST", "/rest/api/3/jql/match", "/rest/api/3/jql/match", 400, json={"jqls": ["project = A"]})


# --- issues --------------------------------------------------------------------------------------

async def test_get_issue_shape(jira: RunningSite) -> None:
    site = jira.site
    sub = next(i for i in site.issues.values() if i.issuetype_id == 10004)
    async with jira.client() as c:
        body = await check(c, "GET", f"/rest/api/3/issue/{sub.key}", "/rest/api/3/issue/{issueIdOrKey}", 200)
    f = body["fields"]
    assert body["id"] == str(sub.id) and body["key"] == sub.key and body["self"].endswith(f"/rest/api/3/issue/{sub.id}")
    assert f["issuetype"]["subtask"] is True and f["issuetype"]["hierarchyLevel"] == -1
    assert f["parent"]["key"] == site.issues[sub.parent_id].key and "status" in f["parent"]["fields"]
    assert set(f["status"]["statusCategory"]) >= {"id", "key", "name", "colorName"}
    assert f["created"][-5:] == "+0000" and len(f["created"]) == len("2024-07-26T16:22:24.349+0000")
    assert f["project"]["key"] == sub.key.split("-")[0]
    linked = next(i for i in site.issues.values() if i.link_ids)
    async with jira.client() as c:
        body = await check(c, "GET", f"/rest/api/3/issue/{linked.id}?fields=issuelinks,-summary,summary",
                           "/rest/api/3/issue/{issueIdOrKey}", 200)
    assert set(body["fields"]) == {"issuelinks"}
    link = body["fields"]["issuelinks"][0]
    assert ("inwardIssue" in link) != ("outwardIssue" in link)
    assert link["type"]["name"] in ("Blocks", "Relates")


async def test_get_issue_errors(jira: RunningSite) -> None:
    async with jira.client() as c:
        body = await check(c, "GET", "/rest/api/3/issue/NOPE-1", "/rest/api/3/issue/{issueIdOrKey}", 404)
    assert body == {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
    async with jira.client(auth=CAROL) as carol:
        await check(carol, "GET", "/rest/api/3/issue/ALPHA-1", "/rest/api/3/issue/{issueIdOrKey}", 404)
    async with jira.client(auth=None) as anon:
        await check(anon, "GET", "/rest/api/3/issue/ALPHA-1", "/rest/api/3/issue/{issueIdOrKey}", 401)


async def test_edit_issue(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    story = next(i for i in site.issues.values() if i.issuetype_id == 10001)
    epic = next(i for i in site.issues.values() if i.issuetype_id == 10000 and i.id != story.parent_id)
    before = story.updated
    url = f"/rest/api/3/issue/{story.key}"
    t = "/rest/api/3/issue/{issueIdOrKey}"
    async with fresh_jira.client() as c:
        await check(c, "PUT", url + "?notifyUsers=false", t, 204, json={
            "fields": {"summary": "Renamed", "duedate": "2026-02-03", START_DATE_FIELD: "2026-01-05",
                       STORY_POINTS_FIELD: 5, "parent": {"key": epic.key}},
            "update": {"labels": [{"add": "boxsync"}]}})
        body = await check(c, "GET", url, t, 200)
        f = body["fields"]
        assert (f["summary"], f["duedate"], f[START_DATE_FIELD], f[STORY_POINTS_FIELD]) == ("Renamed", "2026-02-03", "2026-01-05", 5.0)
        assert f["parent"]["key"] == epic.key and f["labels"] == ["boxsync"]
        assert story.updated > before
        body = await check(c, "PUT", url + "?returnIssue=true", t, 200, json={"update": {"parent": [{"set": {"none": True}}]}})
        assert "parent" not in body["fields"]
        body = await check(c, "PUT", url, t, 400, json={"fields": {"duedate": "03/02/2026", "status": {"name": "Done"},
                                                                   "nosuch": 1, STORY_POINTS_FIELD: "five"}})
        assert set(body["errors"]) == {"duedate", "status", "nosuch", STORY_POINTS_FIELD}
        await check(c, "PUT", url, t, 400, json={"fields": {"parent": {"key": story.key}}})
        await check(c, "PUT", "/rest/api/3/issue/NOPE-9", t, 404, json={"fields": {"summary": "x"}})
    async with fresh_jira.client(auth=BOB) as bob:
        await check(bob, "PUT", url, t, 403, json={"fields": {"summary": "x"}})
    async with fresh_jira.client(auth=CAROL) as carol:
        await check(carol, "PUT", url, t, 404, json={"fields": {"summary": "x"}})


async def test_issue_links(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    a, b = site.issue("ALPHA-2"), site.issue("ALPHA-4")
    async with fresh_jira.client() as c:
        body = await check(c, "POST", "/rest/api/3/issueLink", "/rest/api/3/issueLink", 201,
                           json={"type": {"name": "Blocks"}, "inwardIssue": {"key": a.key}, "outwardIssue": {"key": b.key}})
        assert body is None
        # Duplicate request: still 201, no second link.
        await check(c, "POST", "/rest/api/3/issueLink", "/rest/api/3/issueLink", 201,
                    json={"type": {"id": "10000"}, "inwardIssue": {"id": str(a.id)}, "outwardIssue": {"key": b.key}})
        links = (await c.get(f"/rest/api/3/issue/{a.key}?fields=issuelinks")).json()["fields"]["issuelinks"]
        mine = [l for l in links if l.get("outwardIssue", {}).get("key") == b.key]
        assert len(mine) == 1 and mine[0]["type"]["outward"] == "blocks"  # a blocks b
        back = (await c.get(f"/rest/api/3/issue/{b.key}?fields=issuelinks")).json()["fields"]["issuelinks"]
        assert any(l.get("inwardIssue", {}).get("key") == a.key for l in back)
        link_id = mine[0]["id"]
        body = await check(c, "GET", f"/rest/api/3/issueLink/{link_id}", "/rest/api/3/issueLink/{linkId}", 200)
        assert body["inwardIssue"]["key"] == a.key and body["outwardIssue"]["key"] == b.key
        await check(c, "POST", "/rest/api/3/issueLink", "/rest/api/3/issueLink", 404,
                    json={"type": {"name": "Blocks"}, "inwardIssue": {"key": "NOPE-1"}, "outwardIssue": {"key": b.key}})
        await check(c, "POST", "/rest/api/3/issueLink", "/rest/api/3/issueLink", 400,
                    json={"type": {"name": "Nope"}, "inwardIssue": {"key": a.key}, "outwardIssue": {"key": b.key}})
        await check(c, "GET", "/rest/api/3/issueLink/abc", "/rest/api/3/issueLink/{linkId}", 400)
        await check(c, "GET", "/rest/api/3/issueLink/999999", "/rest/api/3/issueLink/{linkId}", 404)
    async with fresh_jira.client(auth=DAVE) as dave:
        # No Link issues permission: the spec documents 404 for both.
        body = await check(dave, "POST", "/rest/api/3/issueLink", "/rest/api/3/issueLink", 404,
                           json={"type": {"name": "Relates"}, "inwardIssue": {"key": a.key}, "outwardIssue": {"key": b.key}})
        assert "Link Issue Permission" in body["errorMessages"][0]
        await check(dave, "DELETE", f"/rest/api/3/issueLink/{link_id}", "/rest/api/3/issueLink/{linkId}", 404)
        assert int(link_id) in site.links
    async with fresh_jira.client() as c:
        await check(c, "DELETE", f"/rest/api/3/issueLink/{link_id}", "/rest/api/3/issueLink/{linkId}", 204)
        await check(c, "DELETE", f"/rest/api/3/issueLink/{link_id}", "/rest/api/3/issueLink/{linkId}", 404)


# --- permissions -----------------------------------------------------------------------------------

async def test_mypermissions(jira: RunningSite) -> None:
    t = "/rest/api/3/mypermissions"
    async with jira.client(auth=BOB) as bob:
        body = await check(bob, "GET", t + "?permissions=BROWSE_PROJECTS,EDIT_ISSUES&projectKey=ALPHA", t, 200)
        assert body["permissions"]["BROWSE_PROJECTS"]["havePermission"] is True
        assert body["permissions"]["EDIT_ISSUES"]["havePermission"] is False
        body = await check(bob, "GET", t + "?permissions=LINK_ISSUES&issueKey=BRAVO-1", t, 200)
        assert body["permissions"]["LINK_ISSUES"]["havePermission"] is False
        await check(bob, "GET", t, t, 400)
        await check(bob, "GET", t + "?permissions=NOT_A_PERMISSION", t, 400)
    async with jira.client(auth=CAROL) as carol:
        body = await check(carol, "GET", t + "?permissions=BROWSE_PROJECTS", t, 200)
        assert body["permissions"]["BROWSE_PROJECTS"]["havePermission"] is True  # in some project
        await check(carol, "GET", t + "?permissions=BROWSE_PROJECTS&projectKey=ALPHA", t, 404)


async def test_bulk_permission_check(jira: RunningSite) -> None:
    t = "/rest/api/3/permissions/check"
    site = jira.site
    carol = site.user_by_email("carol@example.com").account_id
    a1, b1 = site.issue("ALPHA-1").id, site.issue("BRAVO-1").id
    request = {"accountId": carol, "globalPermissions": ["ADMINISTER"],
               "projectPermissions": [{"permissions": ["BROWSE_PROJECTS", "EDIT_ISSUES"], "projects": [10000, 10001],
                                       "issues": [a1, b1]}]}
    async with jira.client() as admin:
        body = await check(admin, "POST", t, t, 200, json=request)
    assert body["globalPermissions"] == []
    assert body["projectPermissions"][0] == {"permission": "BROWSE_PROJECTS", "projects": [10001], "issues": [b1]}
    async with jira.client(auth=BOB) as bob:
        await check(bob, "POST", t, t, 403, json=request)
        body = await check(bob, "POST", t, t, 200, json={"projectPermissions": [
            {"permissions": ["EDIT_ISSUES"], "projects": [10000]}]})
        assert body["projectPermissions"] == [{"permission": "EDIT_ISSUES", "projects": [], "issues": []}]
        await check(bob, "POST", t, t, 400, json={"globalPermissions": ["NOPE"]})


# --- Connect scopes declared per route match the spec ----------------------------------------------

def test_route_scopes_match_spec() -> None:
    checked = 0
    for (method, path), scope in rest.connect_scopes().items():
        if not path.startswith("/rest/api/3/"):
            continue
        assert scope == connect_scope(method, path), (method, path)
        checked += 1
    assert checked >= 17


def test_every_route_exists_under_v2_and_v3() -> None:
    paths = {(m, p) for m, p in rest.connect_scopes()}
    for method, path in list(paths):
        if path.startswith("/rest/api/3/"):
            assert (method, path.replace("/3/", "/2/", 1)) in paths


async def test_v2_and_v3_representations(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as c:
        r = await c.put("/rest/api/2/issue/ALPHA-1", json={"fields": {"description": "Plain words"}})
        assert r.status_code == 204
        v2 = (await c.get("/rest/api/2/issue/ALPHA-1?fields=description,status")).json()
        v3 = (await check(c, "GET", "/rest/api/3/issue/ALPHA-1?fields=description,status",
                          "/rest/api/3/issue/{issueIdOrKey}", 200))
        assert v2["fields"]["description"] == "Plain words" and v2["self"].endswith("/rest/api/2/issue/" + v2["id"])
        assert v3["fields"]["description"]["type"] == "doc" and v3["self"].endswith("/rest/api/3/issue/" + v3["id"])
        assert "/rest/api/2/status/" in v2["fields"]["status"]["self"]
        body = await check(c, "PUT", "/rest/api/3/issue/ALPHA-1", "/rest/api/3/issue/{issueIdOrKey}", 400,
                           json={"fields": {"description": "not ADF"}})
        assert "description" in body["errors"]
        doc = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "ADF words"}]}]}
        await check(c, "PUT", "/rest/api/3/issue/ALPHA-1", "/rest/api/3/issue/{issueIdOrKey}", 204, json={"fields": {"description": doc}})
        v2 = (await c.get("/rest/api/2/issue/ALPHA-1?fields=description")).json()
        assert v2["fields"]["description"] == "ADF words"


async def test_create_and_delete_issue(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    t = "/rest/api/3/issue"
    td = "/rest/api/3/issue/{issueIdOrKey}"
    async with fresh_jira.client() as c:
        body = await check(c, "POST", t, t, 201, json={"fields": {
            "project": {"key": "ALPHA"}, "issuetype": {"name": "Story"}, "summary": "Created over REST",
            "duedate": "2026-04-01", START_DATE_FIELD: "2026-03-01"}})
        assert body["key"].startswith("ALPHA-") and body["self"].endswith("/rest/api/3/issue/" + body["id"])
        story = body["key"]
        sub = await check(c, "POST", t, t, 201, json={"fields": {
            "project": {"id": "10000"}, "issuetype": {"id": "10004"}, "summary": "A sub-task", "parent": {"key": story}}})
        body = await check(c, "POST", t, t, 400, json={"fields": {"project": {"key": "NOPE"}, "summary": "",
                                                                    "issuetype": {"name": "Nope"}, "status": {"name": "Done"}}})
        assert set(body["errors"]) == {"project", "summary", "issuetype", "status"}
        body = await check(c, "POST", t, t, 400, json={"fields": {"project": {"key": "ALPHA"}, "summary": "x",
                                                                    "issuetype": {"name": "Sub-task"}}})
        assert "parent" in body["errors"]
        await check(c, "DELETE", f"/rest/api/3/issue/{story}", td, 400)  # it has a sub-task
    async with fresh_jira.client(auth=BOB) as bob:
        await check(bob, "POST", t, t, 403, json={"fields": {"project": {"key": "ALPHA"}, "summary": "x",
                                                              "issuetype": {"name": "Task"}}})
    async with fresh_jira.client(auth=DAVE) as dave:
        await check(dave, "DELETE", f"/rest/api/3/issue/{story}", td, 403)
    async with fresh_jira.client(auth=ALICE) as alice:
        await check(alice, "DELETE", f"/rest/api/3/issue/{story}?deleteSubtasks=true", td, 204)
        await check(alice, "DELETE", f"/rest/api/3/issue/{story}", td, 404)
    assert site.issue(sub["key"]) is None
