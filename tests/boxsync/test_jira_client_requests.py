"""What the Jira client actually asks for: paging, fields/expand, permission context, bodies.

Against jirasim on loopback, with enough projects, webhooks and a user of limited permissions that a
dropped parameter changes the answer (with the two projects of test_jira_client.py, a client that
never sent startAt still "paged" correctly).
"""
from __future__ import annotations

import math

import httpx
import pytest

from boxsync.netpolicy import DEVELOPMENT  # test servers and the simulator listen on loopback
from boxsync.jira import (
    JiraBadRequest, JiraClient, JiraUnavailable, RetryPolicy, UnsafeUrlError, app_client, basic_client,
    new_http_client,
)
from boxsync.jira import operations as ops
from boxsync.connect.tenants import Tenant
from jirasim.model import BROWSE, EDIT, InstalledApp
from jirasim.simulator import Simulator
from tests.support.servers import serve

APP_KEY = "boxsync-test"
SECRET = "jira-client-requests-secret-0123456789abc"
FAST = RetryPolicy(max_attempts=3, max_wait=1, backoff_base=0.01, backoff_max=0.05, jitter=0.01)
LIMITED = ("limited@example.com", "limited-api-token")


@pytest.fixture(scope="module")
def jira():
    import datetime as dt

    sim = Simulator(seed=21)
    with serve(lambda url: sim.add_site("requests", url, issues=30, projects=5)) as base_url:
        site = sim.site("requests")
        site.apps[APP_KEY] = InstalledApp(
            key=APP_KEY, base_url="http://127.0.0.1:9", client_key="jira:requests", shared_secret=SECRET,
            oauth_client_id="oauth-requests", descriptor={"key": APP_KEY},
            scopes=frozenset({"READ", "WRITE", "DELETE"}), enabled=True, app_account_id="557058:app-requests")
        projects = sorted(site.projects.values(), key=lambda p: p.key)
        user = site.add_user(LIMITED[0], "Limited", api_token=LIMITED[1], default_permissions={BROWSE})
        site.set_permissions(user.account_id, {BROWSE, EDIT}, project_id=projects[0].id)
        now = dt.datetime.now(dt.timezone.utc)
        tenant = Tenant(id=1, client_key="jira:requests", base_url=base_url, display_url=None, product_type="jira",
                        oauth_client_id=None, installed=True, enabled=True, installed_at=now, updated_at=now,
                        shared_secret=SECRET)
        with httpx.Client(base_url=base_url, timeout=10) as control:
            yield {"site": site, "url": base_url, "tenant": tenant, "control": control, "projects": projects,
                   "limited": user.account_id}


@pytest.fixture(autouse=True)
def clean(jira):
    jira["control"].delete("/_jirasim/faults").raise_for_status()
    jira["control"].delete("/_jirasim/counters").raise_for_status()


@pytest.fixture
async def http():
    client = new_http_client(addresses=DEVELOPMENT)
    yield client
    await client.aclose()


@pytest.fixture
def app(http, jira) -> JiraClient:
    return app_client(http, jira["tenant"], APP_KEY, policy=FAST)


def calls(jira, route: str) -> int:
    return jira["control"].get("/_jirasim/counters").json()["routes"].get(route, 0)


def issues_of(jira, project) -> list:
    return [i for i in jira["site"].issues.values() if i.project_id == project.id]


# -- paging ----------------------------------------------------------------------------------------------

async def test_projects_are_paged_with_start_at(app, jira):
    keys = [p.key for p in jira["projects"]]
    assert len(keys) == 5
    assert [p["key"] async for p in app.iter_projects(page_size=2)] == keys
    assert calls(jira, "searchProjects") == 3
    assert [p["key"] async for p in app.iter_projects(keys=keys[1:3])] == keys[1:3]
    assert [p["key"] async for p in app.iter_projects()] == keys  # default page: one request
    assert calls(jira, "searchProjects") == 5


async def test_webhooks_are_listed_across_pages(app, jira):
    project = jira["projects"][0].key
    results = await app.register_webhooks("http://127.0.0.1:9/webhooks/jira", [
        {"events": ["jira:issue_updated"], "jqlFilter": f"project = {project} AND issuekey = {project}-{n}"}
        for n in range(1, 6)])
    ids = [r["createdWebhookId"] for r in results]
    try:
        assert sorted(h["id"] for h in await app.list_webhooks(page_size=2)) == sorted(ids)
        listed = jira["control"].get("/_jirasim/counters").json()["endpoints"]
        assert sum(n for e, n in listed.items() if e.startswith("GET /rest/api/3/webhook")) == 3, listed
    finally:
        await app.delete_webhooks(ids)
    assert await app.list_webhooks() == []


async def test_search_pages_fields_and_expand(app, jira):
    project = jira["projects"][0]
    expected = len(issues_of(jira, project))
    assert expected > 4
    pages = [page async for page in app.search_issues(f"project = {project.key}", ["summary"], page_size=4,
                                                      expand=["changelog"])]
    assert [len(p) for p in pages[:-1]] == [4] * (len(pages) - 1) and sum(len(p) for p in pages) == expected
    assert all(set(issue["fields"]) == {"summary"} and "changelog" in issue for p in pages for issue in p)
    ids = [i async for i in app.iter_issue_ids(f"project = {project.key}", page_size=4)]
    assert len(ids) == expected and calls(jira, "searchAndReconsileIssuesUsingJqlPost") == 2 * math.ceil(expected / 4)
    plain = [page async for page in app.search_issues(f"project = {project.key}", ["summary"])]
    assert all("changelog" not in issue for p in plain for issue in p)


async def test_approximate_count(app, jira):
    project = jira["projects"][1]
    assert await app.approximate_count(f"project = {project.key}") == len(issues_of(jira, project))


# -- issues ------------------------------------------------------------------------------------------------

async def test_get_issue_fields_and_expand(app, jira):
    key = next(iter(jira["site"].key_index))
    assert "changelog" in await app.get_issue(key, ["summary"], expand=["changelog"])
    assert "changelog" not in await app.get_issue(key, ["summary"])
    everything = await app.get_issue(key)
    assert {"summary", "status"} <= set(everything["fields"])


async def test_edit_issue_with_fields_and_update_operations(app, jira):
    key = list(jira["site"].key_index)[3]
    await app.edit_issue(key, {"summary": "Both at once"}, update={"labels": [{"add": "boxsync"}]})
    issue = await app.get_issue(key, ["summary", "labels"])
    assert issue["fields"]["summary"] == "Both at once" and "boxsync" in issue["fields"]["labels"]


async def test_field_errors_reach_the_caller(app, jira):
    key = list(jira["site"].key_index)[4]
    with pytest.raises(JiraBadRequest) as info:
        await app.edit_issue(key, {"duedate": "not a date"})
    error = info.value
    assert error.status == 400 and error.method == "PUT" and "duedate" in error.errors
    assert "duedate" in str(error) and key in error.url


async def test_bulkfetch_fields(app, jira):
    ids = [str(i) for i in list(jira["site"].issues)[:5]]
    result = await app.bulkfetch(ids, ["summary"])
    assert sorted(i["id"] for i in result["issues"]) == sorted(ids)
    assert all(set(i["fields"]) == {"summary"} for i in result["issues"])


async def test_links_by_id_and_by_key(app, jira):
    site = jira["site"]
    first, second, third = list(site.issues.values())[5:8]
    before = len(site.links)
    await app.create_link("Relates", first.id, second.id)  # numeric ids
    await app.create_link("Relates", second.key, third.key)  # keys
    assert len(site.links) == before + 2


# -- permissions -------------------------------------------------------------------------------------------

async def test_my_permissions_in_a_project_or_issue_context(http, jira):
    limited = basic_client(http, jira["url"], *LIMITED, policy=FAST)
    editable, readonly = jira["projects"][0], jira["projects"][1]
    assert (await limited.my_permissions(["EDIT_ISSUES"], project_key=editable.key))["EDIT_ISSUES"]["havePermission"]
    assert not (await limited.my_permissions(["EDIT_ISSUES"], project_key=readonly.key))["EDIT_ISSUES"]["havePermission"]
    issue = issues_of(jira, readonly)[0]
    assert not (await limited.my_permissions(["EDIT_ISSUES"], issue_key=issue.key))["EDIT_ISSUES"]["havePermission"]


async def test_check_permissions_for_another_user(app, jira):
    editable, readonly = jira["projects"][0], jira["projects"][1]
    asked = [{"permissions": ["EDIT_ISSUES"], "projects": [editable.id, readonly.id]}]
    for_user = await app.check_permissions(asked, global_permissions=["ADMINISTER"], account_id=jira["limited"])
    assert for_user["projectPermissions"][0]["projects"] == [editable.id]
    assert for_user["globalPermissions"] == []
    for_app = await app.check_permissions(asked)
    assert sorted(for_app["projectPermissions"][0]["projects"]) == sorted([editable.id, readonly.id])


# -- calls by URL, and options of the constructors ---------------------------------------------------------

async def test_request_by_relative_url_with_params_and_body(app, jira):
    key = next(iter(jira["site"].key_index))
    issue = await app.request("GET", f"/rest/api/3/issue/{key}", params={"fields": "summary"})
    assert set(issue["fields"]) == {"summary"}
    project = jira["projects"][0].key
    page = await app.request("POST", "/rest/api/3/search/jql",
                             json={"jql": f"project = {project}", "fields": ["summary"], "maxResults": 3})
    assert len(page["issues"]) == 3 and all(i["key"].startswith(project + "-") for i in page["issues"])


@pytest.mark.parametrize("url", ["https://user@{host}/rest/api/3/myself", "https://:pw@{host}/rest/api/3/myself"])
async def test_credentials_in_a_url_are_refused_even_for_the_sites_own_host(http, url):
    client = JiraClient(http, "https://site.atlassian.net", basic_client(http, "https://x.test", "a", "b").auth)
    with pytest.raises(UnsafeUrlError) as info:
        await client.request("GET", url.format(host="site.atlassian.net"))
    assert "not the tenant's site https://site.atlassian.net" in str(info.value)


async def test_constructors_pass_their_options_on(http, jira):
    jira["control"].post("/_jirasim/faults", json={"kind": "error", "status": 503, "endpoint": "getCurrentUser"})
    once = RetryPolicy(max_attempts=1)
    with pytest.raises(JiraUnavailable):
        await basic_client(http, jira["url"], *LIMITED, policy=once).myself()
    assert calls(jira, "getCurrentUser") == 1
    with pytest.raises(JiraUnavailable):
        await app_client(http, jira["tenant"], APP_KEY, policy=once).myself()
    assert calls(jira, "getCurrentUser") == 2
    assert ops.MYSELF.idempotent


async def test_a_401_to_the_app_or_a_technical_user_is_not_repeated(http, jira):
    # A fresh JWT or the same API token would fail the same way: one request each, then the error.
    from boxsync.jira import AppJwt, JiraUnauthorized

    wrong_secret = JiraClient(http, jira["url"], AppJwt(APP_KEY, "another-secret-of-sufficient-length-42"),
                              policy=FAST)
    with pytest.raises(JiraUnauthorized):
        await wrong_secret.myself()
    with pytest.raises(JiraUnauthorized):
        await basic_client(http, jira["url"], LIMITED[0], "wrong-token", policy=FAST).myself()
    assert calls(jira, "getCurrentUser") == 2


def test_a_user_token_with_nothing_cached_has_nothing_to_invalidate(http):
    from boxsync.jira import OAuthTokens, UserToken

    auth = UserToken(OAuthTokens(http, "http://127.0.0.1:9"), "ck", "https://x.atlassian.net", "oc", "acc", SECRET)
    assert auth.invalidate() is False
