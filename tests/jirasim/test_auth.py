"""Authentication (Basic, OAuth bearer, Connect JWT) and authorisation (scopes, permissions)."""
from __future__ import annotations

import base64
import time

import httpx
import jwt
import pytest

from jirasim.model import InstalledApp, OAuthToken
from jirasim.qsh import qsh_for_url
from tests.jirasim.openapi import validate_response
from tests.jirasim.simsite import ADMIN, ALICE, BOB, CAROL, RunningSite

SECRET = "s3cret-shared-between-jirasim-and-the-test-app-0123456789"
APP_KEY = "com.example.testapp"


def install(site, key: str = APP_KEY, scopes=("READ", "WRITE"), enabled: bool = True) -> InstalledApp:
    app = InstalledApp(key=key, base_url="https://app.example", client_key=f"client-{key}", shared_secret=SECRET,
                       oauth_client_id=f"oauth-{key}", descriptor={"key": key, "scopes": list(scopes)},
                       scopes=frozenset(scopes), enabled=enabled, app_account_id=f"app-user-{key}")
    site.apps[key] = app
    return app


def app_token(method: str, url: httpx.URL, *, iss: str = APP_KEY, secret: str = SECRET, exp_in: int = 180,
              qsh: str | None = None, drop: tuple[str, ...] = ()) -> str:
    now = int(time.time())
    claims = {"iss": iss, "iat": now, "exp": now + exp_in, "qsh": qsh or qsh_for_url(method, str(url))}
    for name in drop:
        claims.pop(name)
    return jwt.encode(claims, secret, algorithm="HS256")


async def call_as_app(running: RunningSite, method: str, path: str, params=None, json=None, **token_kw) -> httpx.Response:
    url = httpx.URL(running.base_url + path, params=params)
    token = app_token(method, url, **token_kw)
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(method, url, json=json, headers={"Authorization": f"JWT {token}"})


# --- Basic -------------------------------------------------------------------------------------

async def test_basic_good_and_bad(jira: RunningSite) -> None:
    async with jira.client(auth=ALICE) as c:
        r = await c.get("/rest/api/3/myself")
    assert r.status_code == 200 and r.json()["emailAddress"] == "alice@example.com"
    for creds in (("alice@example.com", "wrong"), ("nobody@example.com", "x")):
        async with jira.client(auth=creds) as c:
            r = await c.get("/rest/api/3/myself")
        assert r.status_code == 401
        validate_response("GET", "/rest/api/3/myself", 401, r.json())
        assert r.json()["errorMessages"]
    async with httpx.AsyncClient(base_url=jira.base_url) as c:
        r = await c.get("/rest/api/3/myself", headers={"Authorization": "Basic !!notbase64!!"})
        assert r.status_code == 401
        r = await c.get("/rest/api/3/myself", headers={"Authorization": "Negotiate abc"})
        assert r.status_code == 401


async def test_inactive_user_is_rejected(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as control:
        r = await control.put("/_jirasim/permissions", json={"email": "alice@example.com", "active": False,
                                                              "permissions": ["BROWSE_PROJECTS"]})
        assert r.status_code == 200
    async with fresh_jira.client(auth=ALICE) as c:
        assert (await c.get("/rest/api/3/myself")).status_code == 401


# --- OAuth bearer --------------------------------------------------------------------------------

async def test_bearer_good_expired_unknown(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    install(site)
    alice = site.user_by_email("alice@example.com").account_id
    site.oauth_tokens["good-token"] = OAuthToken("good-token", alice, APP_KEY, time.time() + 600,
                                                  frozenset({"READ"}))
    site.oauth_tokens["old-token"] = OAuthToken("old-token", alice, APP_KEY, time.time() - 1,
                                                 frozenset({"READ"}))
    async with httpx.AsyncClient(base_url=fresh_jira.base_url) as c:
        r = await c.get("/rest/api/3/myself", headers={"Authorization": "Bearer good-token"})
        assert r.status_code == 200 and r.json()["accountId"] == alice
        for token in ("old-token", "never-issued"):
            r = await c.get("/rest/api/3/myself", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401


async def test_bearer_is_limited_by_user_permissions_and_app_scopes(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    install(site, key="reader", scopes=("READ",))
    bob = site.user_by_email("bob@example.com").account_id
    alice = site.user_by_email("alice@example.com").account_id
    # Tokens that claim more than the app holds are still bounded by the app's scopes.
    everything = frozenset({"READ", "WRITE", "DELETE", "ADMIN"})
    site.oauth_tokens["bob"] = OAuthToken("bob", bob, "reader", time.time() + 600, everything)
    site.oauth_tokens["alice"] = OAuthToken("alice", alice, "reader", time.time() + 600, everything)
    async with httpx.AsyncClient(base_url=fresh_jira.base_url) as c:
        r = await c.get("/rest/api/3/issue/ALPHA-1", headers={"Authorization": "Bearer bob"})
        assert r.status_code == 200
        # Alice may edit, but the app only holds READ: the WRITE operation is refused.
        r = await c.put("/rest/api/3/issue/ALPHA-1", json={"fields": {"summary": "x"}}, headers={"Authorization": "Bearer alice"})
        assert r.status_code == 403


# --- Connect JWT --------------------------------------------------------------------------------

async def test_jwt_good(fresh_jira: RunningSite) -> None:
    install(fresh_jira.site)
    r = await call_as_app(fresh_jira, "GET", "/rest/api/3/search/jql",
                          params={"jql": 'project = ALPHA AND status = "To Do"', "fields": "summary,status", "maxResults": 5})
    assert r.status_code == 200, r.text
    r = await call_as_app(fresh_jira, "PUT", "/rest/api/3/issue/ALPHA-2", json={"fields": {"summary": "set by app"}})
    assert r.status_code == 204, r.text
    assert fresh_jira.site.issue("ALPHA-2").summary == "set by app"
    assert fresh_jira.site.changelogs[fresh_jira.site.issue("ALPHA-2").id][-1]["author"] == f"app-user-{APP_KEY}"


@pytest.mark.parametrize("case", ["bad_qsh", "expired", "wrong_secret", "unknown_iss", "no_exp", "no_qsh", "context_qsh", "disabled"])
async def test_jwt_rejected(fresh_jira: RunningSite, case: str) -> None:
    install(fresh_jira.site, enabled=case != "disabled")
    kwargs: dict = {
        "bad_qsh": {"qsh": qsh_for_url("GET", fresh_jira.base_url + "/rest/api/3/issue/ALPHA-2")},
        "expired": {"exp_in": -600},
        "wrong_secret": {"secret": "another-secret-that-is-long-enough-for-hs256-ok"},
        "unknown_iss": {"iss": "com.example.unknown"},
        "no_exp": {"drop": ("exp",)},
        "no_qsh": {"drop": ("qsh",)},
        "context_qsh": {"qsh": "context-qsh"},
        "disabled": {},
    }[case]
    r = await call_as_app(fresh_jira, "GET", "/rest/api/3/issue/ALPHA-1", **kwargs)
    assert r.status_code == 401, (case, r.text)
    validate_response("GET", "/rest/api/3/issue/{issueIdOrKey}", 401, r.json())


async def test_jwt_qsh_covers_the_query(fresh_jira: RunningSite) -> None:
    install(fresh_jira.site)
    url = httpx.URL(fresh_jira.base_url + "/rest/api/3/issue/ALPHA-1", params={"fields": "summary"})
    token = app_token("GET", url)
    async with httpx.AsyncClient() as c:
        ok = await c.get(url, headers={"Authorization": f"JWT {token}"})
        tampered = await c.get(url.copy_merge_params({"expand": "names"}), headers={"Authorization": f"JWT {token}"})
        as_param = await c.get(url.copy_merge_params({"jwt": token}))  # the jwt param itself is ignored by qsh
    assert ok.status_code == 200 and tampered.status_code == 401 and as_param.status_code == 200


async def test_jwt_missing_scope_is_403(fresh_jira: RunningSite) -> None:
    install(fresh_jira.site, scopes=("READ",))
    r = await call_as_app(fresh_jira, "GET", "/rest/api/3/issue/ALPHA-1")
    assert r.status_code == 200
    r = await call_as_app(fresh_jira, "PUT", "/rest/api/3/issue/ALPHA-1", json={"fields": {"summary": "x"}})
    assert r.status_code == 403
    validate_response("PUT", "/rest/api/3/issue/{issueIdOrKey}", 403, r.json())
    r = await call_as_app(fresh_jira, "POST", "/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": ["ALPHA-1"]})
    assert r.status_code == 403  # the spec tags bulkfetch WRITE
    r = await call_as_app(fresh_jira, "DELETE", "/rest/api/3/issueLink/1")
    assert r.status_code == 403  # DELETE scope
    install(fresh_jira.site, scopes=("DELETE",))  # DELETE implies WRITE and READ
    r = await call_as_app(fresh_jira, "POST", "/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": ["ALPHA-1"]})
    assert r.status_code == 200


async def test_app_user_permissions_apply(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    app = install(site)
    site.add_user("app@connect.atlassian.com", "Test App", account_id=app.app_account_id, account_type="app",
                  default_permissions=("BROWSE_PROJECTS",))
    r = await call_as_app(fresh_jira, "PUT", "/rest/api/3/issue/ALPHA-1", json={"fields": {"summary": "x"}})
    assert r.status_code == 403
    r = await call_as_app(fresh_jira, "GET", "/rest/api/3/myself")
    assert r.status_code == 200 and r.json()["accountType"] == "app" and "emailAddress" not in r.json()


# --- permissions ----------------------------------------------------------------------------------

async def test_permission_404_and_403(jira: RunningSite) -> None:
    async with jira.client(auth=CAROL) as carol:
        r = await carol.get("/rest/api/3/issue/ALPHA-1")
        assert r.status_code == 404
        assert r.json()["errorMessages"] == ["Issue does not exist or you do not have permission to see it."]
        assert (await carol.get("/rest/api/3/issue/BRAVO-1")).status_code == 200
    async with jira.client(auth=BOB) as bob:
        r = await bob.put("/rest/api/3/issue/BRAVO-1", json={"fields": {"summary": "x"}})
        assert r.status_code == 403
    async with jira.client(auth=ADMIN) as admin:
        assert (await admin.get("/rest/api/3/issue/ALPHA-1")).status_code == 200


def test_authorization_header_shapes() -> None:
    # A guard for the helpers above: httpx's Basic auth is what Jira expects.
    req = httpx.Request("GET", "http://x", headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()})
    assert req.headers["authorization"] == httpx.BasicAuth("a", "b")._auth_header
