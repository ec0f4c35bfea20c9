"""The Jira client over real HTTP against the simulator (jirasim) on a loopback port.

The app is "installed" by registering an `InstalledApp` on the in-process simulated site: simulator
setup, not a stand-in for our code. Faults and counters go through the simulator's control API.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from dataclasses import dataclass

import httpx
import pytest

from boxsync.connect.tenants import Tenant
from boxsync.jira import (
    AppJwt,
    JiraBadRequest,
    JiraClient,
    JiraForbidden,
    JiraNotFound,
    JiraRateLimited,
    JiraUnauthorized,
    JiraUnavailable,
    OAuthTokens,
    RetryPolicy,
    UnsafeUrlError,
    app_client,
    basic_client,
    new_http_client,
    user_client,
)
from boxsync.jira import operations as ops
from boxsync.netpolicy import DEVELOPMENT
from jirasim.model import DEFAULT_ADMIN_ACCOUNT_ID, DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_TOKEN, InstalledApp, Site
from jirasim.simulator import Simulator
from tests.support.servers import serve

APP_KEY = "boxsync-test"
SECRET = "jira-client-test-shared-secret-0123456789"  # ≥ 32 bytes (HMAC key length warning is fatal)
CLIENT_KEY = "jira:client-test"
OAUTH_CLIENT_ID = "oauth-client-boxsync-test"
READONLY_KEY = "boxsync-readonly"
ISSUES = 260
FAST = RetryPolicy(max_attempts=4, max_wait=5, backoff_base=0.05, backoff_max=0.2, jitter=0.1)


@dataclass
class Jira:
    site: Site
    base_url: str
    tenant: Tenant
    control: httpx.Client

    def fault(self, **spec) -> None:
        self.control.post("/_jirasim/faults", json=spec).raise_for_status()

    def calls(self, route: str) -> int:
        return self.control.get("/_jirasim/counters").json()["routes"].get(route, 0)

    def endpoint_calls(self, endpoint: str) -> int:
        return self.control.get("/_jirasim/counters").json()["endpoints"].get(endpoint, 0)


def _install(site: Site, key: str, client_key: str, scopes: set[str], oauth_client_id: str) -> None:
    site.apps[key] = InstalledApp(
        key=key, base_url="http://127.0.0.1:9", client_key=client_key, shared_secret=SECRET,
        oauth_client_id=oauth_client_id, descriptor={"key": key}, scopes=frozenset(scopes), enabled=True,
        app_account_id=f"557058:app-{key}",
    )


@pytest.fixture(scope="module")
def jira():
    sim = Simulator(seed=11)
    with serve(lambda url: sim.add_site("client-test", url, issues=ISSUES)) as base_url:
        site = sim.site("client-test")
        _install(site, APP_KEY, CLIENT_KEY, {"READ", "WRITE", "DELETE", "ACT_AS_USER"}, OAUTH_CLIENT_ID)
        _install(site, READONLY_KEY, "jira:readonly", {"READ"}, "oauth-client-readonly")
        now = dt.datetime.now(dt.timezone.utc)
        tenant = Tenant(id=1, client_key=CLIENT_KEY, base_url=base_url, display_url=None, product_type="jira",
                        oauth_client_id=OAUTH_CLIENT_ID, installed=True, enabled=True, installed_at=now,
                        updated_at=now, shared_secret=SECRET)
        with httpx.Client(base_url=base_url, timeout=10) as control:
            yield Jira(site, base_url, tenant, control)


@pytest.fixture(autouse=True)
def clean(jira):
    jira.control.delete("/_jirasim/faults").raise_for_status()
    jira.control.delete("/_jirasim/counters").raise_for_status()
    yield


@pytest.fixture
async def http():
    client = new_http_client(addresses=DEVELOPMENT)  # jirasim runs on loopback
    yield client
    await client.aclose()


@pytest.fixture
def app(http, jira) -> JiraClient:
    return app_client(http, jira.tenant, APP_KEY, policy=FAST)


# -- as the app ----------------------------------------------------------------------------------------

async def test_signed_app_calls(app, jira):
    info = await app.server_info()
    assert info["deploymentType"] == "Cloud" and info["baseUrl"] == jira.base_url
    me = await app.myself()
    assert me["accountId"] == f"557058:app-{APP_KEY}"
    assert {lt["name"] for lt in await app.link_types()} >= {"Blocks", "Relates"}
    assert any(f["id"] == "summary" for f in await app.fields())
    key = next(iter(jira.site.key_index))
    issue = await app.get_issue(key, ["summary", "status"])
    assert issue["key"] == key and set(issue["fields"]) == {"summary", "status"}


async def test_query_strings_with_spaces_and_commas_are_signed_correctly(app, jira):
    project = next(iter(jira.site.projects.values()))
    # "permissions=BROWSE_PROJECTS,EDIT_ISSUES": a comma inside a value is %2C in the qsh.
    permissions = await app.my_permissions(["BROWSE_PROJECTS", "EDIT_ISSUES"], project_key=project.key)
    assert permissions["BROWSE_PROJECTS"]["havePermission"] is True
    # A space in a query value: sent as %20, hashed decoded, as Jira does.
    assert " " in project.name
    found = [p async for p in app.iter_projects(query=project.name.lower())]
    assert [p["key"] for p in found] == [project.key]
    # Following Jira's own absolute `nextPage` link (form-encoded, "+" for spaces) on the same site.
    page = await app.call(ops.PROJECT_SEARCH, params={"maxResults": 1, "query": " project"})
    assert "query=+project" in page["nextPage"]
    second = await app.request("GET", page["nextPage"])
    assert second["startAt"] == 1 and second["values"][0]["key"] != page["values"][0]["key"]


async def test_other_secret_or_tampered_qsh_is_refused(http, jira):
    wrong = JiraClient(http, jira.base_url, AppJwt(APP_KEY, "another-secret-of-sufficient-length-42"))
    with pytest.raises(JiraUnauthorized) as info:
        await wrong.myself()
    assert "another-secret" not in str(info.value)

    class OtherRequestsQsh(AppJwt):
        async def authorization(self, method, path, query):  # signs a different request
            return "JWT " + self.token(method, "/rest/api/3/serverInfo", query)

    tampered = JiraClient(http, jira.base_url, OtherRequestsQsh(APP_KEY, SECRET))
    with pytest.raises(JiraUnauthorized) as info:
        await tampered.myself()
    assert "qsh" in str(info.value)


async def test_request_by_url_on_the_site_and_refusal_elsewhere(app, jira):
    me = await app.request("GET", f"{jira.base_url}/rest/api/3/myself")
    assert me["accountId"].startswith("557058:app-")
    other_port = jira.base_url.rsplit(":", 1)[0] + ":9"
    before = jira.control.get("/_jirasim/counters").json()["total"]
    with pytest.raises(UnsafeUrlError):
        await app.request("GET", f"{other_port}/rest/api/3/myself")
    with pytest.raises(UnsafeUrlError):
        await app.request("GET", jira.base_url.replace("http://", "https://") + "/rest/api/3/myself")
    assert jira.control.get("/_jirasim/counters").json()["total"] == before


# -- search and bulk fetch -------------------------------------------------------------------------------

async def test_ids_only_search_pages_collect_every_id_once(app, jira):
    keys = [p.key for p in jira.site.projects.values()]
    jql = f"project in ({', '.join(keys)}) ORDER BY key ASC"
    ids = [i async for i in app.iter_issue_ids(jql, page_size=40)]
    assert len(ids) == len(set(ids)) == ISSUES
    assert set(ids) == {str(i) for i in jira.site.issues}
    assert jira.calls("searchAndReconsileIssuesUsingJqlPost") == math.ceil(ISSUES / 40)


async def test_search_with_fields_pages_of_at_most_100(app, jira):
    key = next(iter(jira.site.projects.values())).key
    pages = [page async for page in app.search_issues(f"project = {key}", ["summary", "status"])]
    expected = sum(1 for i in jira.site.issues.values() if jira.site.projects[i.project_id].key == key)
    assert sum(len(p) for p in pages) == expected
    assert all(len(p) <= 100 for p in pages)
    assert all(set(issue["fields"]) == {"summary", "status"} for p in pages for issue in p)


async def test_bulkfetch_chunks_of_100(app, jira):
    ids = [str(i) for i in jira.site.issues][:250] + ["99999999"]
    result = await app.bulkfetch(ids, ["summary"])
    assert sorted(issue["id"] for issue in result["issues"]) == sorted(ids[:250])
    assert [e["id"] for e in result["issueErrors"]] == ["99999999"]
    assert jira.calls("bulkFetchIssues") == 3


async def test_projects_paging_and_match_jql(app, jira):
    projects = [p async for p in app.iter_projects(page_size=2)]
    assert [p["key"] for p in projects] == sorted(p.key for p in jira.site.projects.values())
    assert jira.calls("searchProjects") == math.ceil(len(projects) / 2)
    issue = next(iter(jira.site.issues.values()))
    project = jira.site.projects[issue.project_id].key
    matches = await app.match_jql([f"project = {project}", "project = NOPE"], [issue.id])
    assert matches[0]["matchedIssues"] == [issue.id]
    assert matches[1]["errors"]


# -- writes --------------------------------------------------------------------------------------------

async def test_edit_issue_link_and_unlink(app, jira):
    first, second = [i.key for i in list(jira.site.issues.values())[:2]]
    await app.edit_issue(first, {"summary": "Edited by the client test"})
    assert (await app.get_issue(first, ["summary"]))["fields"]["summary"] == "Edited by the client test"

    await app.create_link("Blocks", first, second)
    links = (await app.get_issue(first, ["issuelinks"]))["fields"]["issuelinks"]
    link = next(link for link in links if link.get("outwardIssue", {}).get("key") == second)
    assert (await app.get_link(link["id"]))["type"]["name"] == "Blocks"
    await app.delete_link(link["id"])
    with pytest.raises(JiraNotFound):
        await app.get_link(link["id"])


async def test_dynamic_webhooks(app):
    results = await app.register_webhooks("http://127.0.0.1:9/webhooks/jira", [
        {"events": ["jira:issue_updated"], "jqlFilter": "project = ALPHA"},
        {"events": ["no_such_event"], "jqlFilter": "project = ALPHA"},
    ])
    hook_id = results[0]["createdWebhookId"]
    assert results[1]["errors"]
    assert [h["id"] for h in await app.list_webhooks()] == [hook_id]
    assert (await app.refresh_webhooks([hook_id]))["expirationDate"] > time.time() * 1000
    await app.delete_webhooks([hook_id])
    assert await app.list_webhooks() == []


async def test_permissions_check(app, jira):
    project = next(iter(jira.site.projects.values()))
    result = await app.check_permissions([{"permissions": ["EDIT_ISSUES"], "projects": [project.id]}],
                                         account_id=DEFAULT_ADMIN_ACCOUNT_ID)
    assert result["projectPermissions"][0]["projects"] == [project.id]


# -- typed errors --------------------------------------------------------------------------------------

async def test_typed_errors_carry_jiras_message(app, http, jira):
    with pytest.raises(JiraBadRequest) as bad:
        await app.approximate_count("ORDER BY key")  # unbounded
    assert "Unbounded JQL" in str(bad.value) and bad.value.status == 400
    with pytest.raises(JiraNotFound) as missing:
        await app.get_issue("NOPE-99999")
    assert missing.value.messages == ["Issue does not exist or you do not have permission to see it."]
    assert "/rest/api/3/issue/NOPE-99999" in str(missing.value)
    readonly = JiraClient(http, jira.base_url, AppJwt(READONLY_KEY, SECRET))
    with pytest.raises(JiraForbidden) as forbidden:
        await readonly.edit_issue(next(iter(jira.site.key_index)), {"summary": "x"})
    assert "WRITE scope" in str(forbidden.value)
    assert SECRET not in str(forbidden.value)


# -- retries -------------------------------------------------------------------------------------------

async def test_429_retry_after_is_waited_out(app, jira, caplog):
    jira.fault(kind="rate_limit", endpoint="getServerInfo", count=1, retry_after=1, reason="jira-burst-based")
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="boxsync.jira"):
        await app.server_info()
    assert time.monotonic() - started >= 1.0
    assert jira.calls("getServerInfo") == 2
    [record] = [r for r in caplog.records if r.name == "boxsync.jira"]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "GET" in message and "/rest/api/3/serverInfo" in message and "429" in message
    assert "jira-burst-based" in message and "JWT" not in message and "?" not in message


async def test_429_on_a_creating_post_is_retried_once_processed_once(app, jira):
    first, second = [i.key for i in list(jira.site.issues.values())[2:4]]
    links_before = len(jira.site.links)
    jira.fault(kind="rate_limit", endpoint="linkIssues", count=1, retry_after=0)
    await app.create_link("Relates", first, second)
    assert jira.calls("linkIssues") == 2
    assert len(jira.site.links) == links_before + 1


async def test_retry_after_beyond_the_cap_raises_rate_limited(app, jira):
    jira.fault(kind="rate_limit", endpoint="getCurrentUser", count=1, retry_after=3600,
               reason="jira-quota-tenant-based")
    with pytest.raises(JiraRateLimited) as info:
        await app.myself()
    assert info.value.retry_after == 3600 and info.value.reason == "jira-quota-tenant-based"
    assert jira.calls("getCurrentUser") == 1


async def test_503_is_retried(app, jira):
    jira.fault(kind="error", status=503, endpoint="getIssueLinkTypes", count=2)
    assert await app.link_types()
    assert jira.calls("getIssueLinkTypes") == 3


async def test_503_with_retry_after_is_honoured(app, jira):
    jira.fault(kind="error", status=503, endpoint="getFields", count=1, retry_after=1)
    started = time.monotonic()
    assert await app.fields()
    assert time.monotonic() - started >= 1.0
    assert jira.calls("getFields") == 2


async def test_issue_link_post_is_not_retried_on_500(app, jira):
    first, second = [i.key for i in list(jira.site.issues.values())[4:6]]
    jira.fault(kind="error", status=500, endpoint="linkIssues", count=1)
    with pytest.raises(JiraUnavailable) as info:
        await app.create_link("Blocks", first, second)
    assert info.value.status == 500
    assert jira.calls("linkIssues") == 1


async def test_attempts_are_bounded(app, jira):
    jira.fault(kind="error", status=502, endpoint="getIssue")
    with pytest.raises(JiraUnavailable) as info:
        await app.get_issue(next(iter(jira.site.key_index)))
    assert info.value.status == 502 and "Bad Gateway" in str(info.value)
    assert jira.calls("getIssue") == FAST.max_attempts


async def test_read_timeout_retried_for_idempotent_calls(jira):
    client = new_http_client(addresses=DEVELOPMENT, timeout=httpx.Timeout(5.0, read=0.5))
    try:
        app = app_client(client, jira.tenant, APP_KEY, policy=FAST)
        jira.fault(kind="timeout", endpoint="getServerInfo", count=1)
        assert (await app.server_info())["deploymentType"] == "Cloud"
        assert jira.calls("getServerInfo") == 2
        jira.fault(kind="timeout", endpoint="getServerInfo")
        with pytest.raises(JiraUnavailable) as info:
            await app.server_info()
        assert "ReadTimeout" in str(info.value)
    finally:
        await client.aclose()


async def test_connection_refused_is_unavailable(http):
    dead = JiraClient(http, "http://127.0.0.1:9", AppJwt(APP_KEY, SECRET), policy=FAST)
    with pytest.raises(JiraUnavailable) as info:
        await dead.server_info()
    assert info.value.status is None and "ConnectError" in str(info.value)


# -- as a user (OAuth 2.0 JWT-bearer) --------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_act_as_user_token_cached_and_renewed(http, jira):
    clock = FakeClock()
    tokens = OAuthTokens(http, jira.base_url, clock=clock)  # the simulated site is the token server
    jira_as_admin = user_client(http, tokens, jira.tenant, DEFAULT_ADMIN_ACCOUNT_ID, policy=FAST)
    assert (await jira_as_admin.myself())["accountId"] == DEFAULT_ADMIN_ACCOUNT_ID
    assert (await jira_as_admin.myself())["emailAddress"] == DEFAULT_ADMIN_EMAIL
    assert jira.endpoint_calls("POST /oauth2/token") == 1
    assert jira.site.traffic.by_caller[f"user:{DEFAULT_ADMIN_ACCOUNT_ID}"] >= 2

    clock.now += 900  # past expires_in minus the margin
    await jira_as_admin.myself()
    assert jira.endpoint_calls("POST /oauth2/token") == 2

    # Narrower scopes (sent as `scope=READ`) are another cache entry: one more exchange, then cached.
    read_only = user_client(http, tokens, jira.tenant, DEFAULT_ADMIN_ACCOUNT_ID, scopes=["read"], policy=FAST)
    await read_only.myself()
    await read_only.myself()
    assert jira.endpoint_calls("POST /oauth2/token") == 3


async def test_concurrent_callers_share_one_exchange(http, jira):
    tokens = OAuthTokens(http, jira.base_url)
    clients = [user_client(http, tokens, jira.tenant, DEFAULT_ADMIN_ACCOUNT_ID) for _ in range(5)]
    results = await asyncio.gather(*(c.myself() for c in clients))
    assert {r["accountId"] for r in results} == {DEFAULT_ADMIN_ACCOUNT_ID}
    assert jira.endpoint_calls("POST /oauth2/token") == 1


async def test_revoked_user_token_is_exchanged_again_once(http, jira):
    tokens = OAuthTokens(http, jira.base_url)
    client = user_client(http, tokens, jira.tenant, DEFAULT_ADMIN_ACCOUNT_ID)
    await client.myself()
    jira.site.oauth_tokens.clear()  # revoked on the Jira side
    assert (await client.myself())["accountId"] == DEFAULT_ADMIN_ACCOUNT_ID
    assert jira.endpoint_calls("POST /oauth2/token") == 2


async def test_token_exchange_refused_is_auth_error(http, jira):
    from boxsync.jira import JiraAuthError

    tokens = OAuthTokens(http, jira.base_url)
    client = user_client(http, tokens, jira.tenant, "557058:no-such-user")
    with pytest.raises(JiraAuthError) as info:
        await client.myself()
    assert "invalid_grant" in str(info.value)
    assert SECRET not in str(info.value)
    # The assertion's aud must name the server it is posted to: "localhost" is this server under
    # another name, so an assertion for it is refused (the same check Atlassian's server makes).
    aliased = OAuthTokens(http, jira.base_url.replace("127.0.0.1", "localhost"))
    with pytest.raises(JiraAuthError) as info:
        await user_client(http, aliased, jira.tenant, DEFAULT_ADMIN_ACCOUNT_ID).myself()
    assert "aud must be" in str(info.value)
    assert jira.endpoint_calls("GET /rest/api/3/myself") == 0  # nothing sent to Jira without a token


# -- as a technical user (Basic) ----------------------------------------------------------------------

async def test_basic_auth(http, jira):
    client = basic_client(http, jira.base_url, DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_TOKEN)
    assert (await client.myself())["accountId"] == DEFAULT_ADMIN_ACCOUNT_ID
    bad = basic_client(http, jira.base_url, DEFAULT_ADMIN_EMAIL, "wrong-api-token")
    with pytest.raises(JiraUnauthorized) as info:
        await bad.myself()
    assert "wrong-api-token" not in str(info.value) and "wrong-api-token" not in repr(bad)
