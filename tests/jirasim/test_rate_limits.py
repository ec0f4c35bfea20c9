"""Jira's rate limits in jirasim (ratelimits.py): burst, quota and per-issue writes, over real HTTP.

What each 429 must carry comes from bigpicture-and-jira.md §2.4; the body is Jira's ErrorCollection,
checked against the OpenAPI spec.
"""
from __future__ import annotations

import asyncio
import calendar
import re
import subprocess
import sys
import time

import httpx
import pytest

from jirasim.cli import main as jirasim_main
from jirasim.model import OAuthToken
from tests.jirasim.openapi import validate
from tests.jirasim.simsite import ALICE, RunningSite
from tests.jirasim.test_auth import APP_KEY, call_as_app, install
from tests.jirasim.test_cli import free_port_pair

ISO_MINUTE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")
OTHER_APP = "com.example.otherapp"


async def set_limits(site: RunningSite, **spec) -> dict:
    async with site.client() as c:
        r = await c.put("/_jirasim/rate-limits", json=spec)
        assert r.status_code == 200, r.text
        return r.json()


async def get_limits(site: RunningSite) -> dict:
    async with site.client() as c:
        return (await c.get("/_jirasim/rate-limits")).json()


def assert_jira_429(r: httpx.Response, reason: str, limit: int) -> int:
    """Jira's 429: its headers and an ErrorCollection body; returns Retry-After."""
    assert r.status_code == 429, r.text
    assert r.headers["RateLimit-Reason"] == reason
    assert r.headers["X-RateLimit-Limit"] == str(limit) and r.headers["X-RateLimit-Remaining"] == "0"
    assert ISO_MINUTE.match(r.headers["X-RateLimit-Reset"]), r.headers["X-RateLimit-Reset"]
    validate(r.json(), {"$ref": "#/components/schemas/ErrorCollection"})
    assert r.json()["errorMessages"]
    retry_after = int(r.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


async def test_off_by_default(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as c:
        statuses = await asyncio.gather(*(c.get("/rest/api/3/serverInfo") for _ in range(30)))
    assert {r.status_code for r in statuses} == {200}
    assert "Beta-RateLimit" not in statuses[0].headers
    assert await get_limits(fresh_jira) == {"burst": None, "quota": None, "issueWrites": None,
                                            "quotaUsage": {}, "rejected": {}}


async def test_burst_is_per_caller_endpoint_and_method(fresh_jira: RunningSite) -> None:
    await set_limits(fresh_jira, burst={"rate": 0.5, "capacity": 2})
    search = {"jql": "project = ALPHA", "maxResults": 1}
    async with fresh_jira.client() as admin:
        for _ in range(2):
            assert (await admin.get("/rest/api/3/search/jql", params=search)).status_code == 200
        r = await admin.get("/rest/api/3/search/jql", params=search)
        assert assert_jira_429(r, "jira-burst-based", 2) == 2  # one token at 0.5/s
        # Another method on the same path, and another endpoint, have buckets of their own.
        assert (await admin.post("/rest/api/3/search/jql", json=search)).status_code == 200
        assert (await admin.get("/rest/api/3/serverInfo")).status_code == 200
        counters = (await admin.get("/_jirasim/counters")).json()
    # Another caller on the same endpoint is not held back by the admin's burst.
    async with fresh_jira.client(auth=ALICE) as alice:
        assert (await alice.get("/rest/api/3/search/jql", params=search)).status_code == 200
    assert counters["statuses"]["429"] == 1  # counted by the traffic middleware like any response
    assert (await get_limits(fresh_jira))["rejected"] == {"jira-burst-based": 1}


async def test_quota_is_points_per_app_and_tenant(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    install(site)
    install(site, key=OTHER_APP)
    await set_limits(fresh_jira, quota={"points": 5})
    # A search returning 3 issues costs 1 + 3 points; the beta headers count this call's base point.
    r = await call_as_app(fresh_jira, "POST", "/rest/api/3/search/jql",
                          json={"jql": "project = ALPHA", "maxResults": 3, "fields": ["summary"]})
    assert r.status_code == 200 and len(r.json()["issues"]) == 3
    assert r.headers["Beta-RateLimit-Policy"] == '"tenant-app-quota";q=5;w=3600'
    assert r.headers["Beta-RateLimit"] == '"tenant-app-quota";r=4;t=3600'
    assert (await get_limits(fresh_jira))["quotaUsage"][APP_KEY] == {"used": 4, "remaining": 1, "resetsIn": 3600}
    # A single-object GET costs the base point: the quota is now spent.
    assert (await call_as_app(fresh_jira, "GET", "/rest/api/3/serverInfo")).status_code == 200
    r = await call_as_app(fresh_jira, "GET", "/rest/api/3/serverInfo")
    retry_after = assert_jira_429(r, "jira-quota-tenant-based", 5)
    assert 3590 <= retry_after <= 3600
    reset = calendar.timegm(time.strptime(r.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%MZ"))
    assert reset - time.time() >= 3590
    # Acting as a user through the same app spends the same app's quota.
    alice = site.user_by_email("alice@example.com").account_id
    site.oauth_tokens["alice"] = OAuthToken("alice", alice, APP_KEY, time.time() + 600)
    async with httpx.AsyncClient(base_url=fresh_jira.base_url) as c:
        r = await c.get("/rest/api/3/myself", headers={"Authorization": "Bearer alice"})
    assert_jira_429(r, "jira-quota-tenant-based", 5)
    # Another app on the tenant has a quota of its own; API-token (Basic) traffic has none.
    assert (await call_as_app(fresh_jira, "GET", "/rest/api/3/serverInfo", iss=OTHER_APP)).status_code == 200
    async with fresh_jira.client() as admin:
        assert (await admin.get("/rest/api/3/serverInfo")).status_code == 200
    limits = await get_limits(fresh_jira)
    assert limits["quotaUsage"][APP_KEY]["used"] == 5  # refused calls are not charged
    assert limits["quotaUsage"][OTHER_APP]["used"] == 1
    assert limits["rejected"] == {"jira-quota-tenant-based": 2}


async def test_quota_resets_after_its_window(fresh_jira: RunningSite) -> None:
    install(fresh_jira.site)
    await set_limits(fresh_jira, quota={"points": 1, "window": 0.3})
    assert (await call_as_app(fresh_jira, "GET", "/rest/api/3/serverInfo")).status_code == 200
    r = await call_as_app(fresh_jira, "GET", "/rest/api/3/serverInfo")
    assert assert_jira_429(r, "jira-quota-tenant-based", 1) == 1  # whole seconds, never 0
    await asyncio.sleep(0.35)
    assert (await call_as_app(fresh_jira, "GET", "/rest/api/3/serverInfo")).status_code == 200


async def test_writes_to_one_issue(fresh_jira: RunningSite) -> None:
    await set_limits(fresh_jira, issueWrites={"rate": 0.5, "capacity": 1})
    alpha1 = fresh_jira.site.issue("ALPHA-1")
    async with fresh_jira.client() as c:
        edit = {"fields": {"summary": "edited"}}
        assert (await c.put("/rest/api/3/issue/ALPHA-1", json=edit)).status_code == 204
        r = await c.put("/rest/api/3/issue/ALPHA-1", json=edit)
        assert assert_jira_429(r, "jira-per-issue-on-write", 1) == 2
        # The same issue by id is the same issue; another issue and reads are not limited.
        assert (await c.put(f"/rest/api/3/issue/{alpha1.id}", json=edit)).status_code == 429
        assert (await c.put("/rest/api/3/issue/ALPHA-2", json=edit)).status_code == 204
        assert (await c.get("/rest/api/3/issue/ALPHA-1")).status_code == 200
        # Control calls and non-REST paths are never limited.
        assert (await c.get("/_jirasim/site")).status_code == 200


async def test_bad_limits_are_400_and_change_nothing(fresh_jira: RunningSite) -> None:
    before = await set_limits(fresh_jira, burst={"rate": 10})
    assert before["burst"] == {"rate": 10.0, "capacity": 10.0}
    async with fresh_jira.client() as c:
        for spec in ({"burst": {"rate": 0}}, {"burst": {"rate": -1}}, {"burst": {"rate": "fast"}},
                     {"burst": {"rate": 1, "capacity": 0.5}}, {"burst": {"rate": 1, "size": 3}},
                     {"quota": {"points": 0}}, {"quota": {"points": 1.5}}, {"quota": {"points": 5, "window": 0}},
                     {"quota": 5}, {"issueWrites": {"rate": True}}, {"everything": {}}):
            r = await c.put("/_jirasim/rate-limits", json=spec)
            assert r.status_code == 400 and r.json()["error"], spec
        assert (await c.put("/_jirasim/rate-limits", content=b"[1]")).status_code == 400
        # Resetting the site's data keeps its limits; DELETE turns them off.
        assert (await c.post("/_jirasim/reset", json={"issues": 5})).status_code == 200
        assert (await get_limits(fresh_jira))["burst"] == before["burst"]
        assert (await c.delete("/_jirasim/rate-limits")).status_code == 204
    assert (await get_limits(fresh_jira))["burst"] is None


def test_cli_flags() -> None:
    assert jirasim_main(["serve", "--burst", "0"]) == 2
    assert jirasim_main(["serve", "--quota", "0"]) == 2
    assert jirasim_main(["serve", "--burst-capacity", "3"]) == 2
    port = free_port_pair()
    proc = subprocess.Popen([sys.executable, "-m", "jirasim.cli", "serve", "--port", str(port), "--issues", "5",
                             "--burst", "0.5", "--burst-capacity", "1", "--quota", "100100"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while "control API" not in (line := proc.stdout.readline()):
            assert line, "jirasim serve exited"
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):  # the banner is printed just before the server starts listening
            try:
                limits = httpx.get(base + "/_jirasim/rate-limits").json()
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert limits["burst"] == {"rate": 0.5, "capacity": 1.0}
        assert limits["quota"] == {"points": 100100, "window": 3600.0}
        assert httpx.get(base + "/rest/api/3/serverInfo").status_code == 200
        r = httpx.get(base + "/rest/api/3/serverInfo")
        assert r.status_code == 429 and r.headers["RateLimit-Reason"] == "jira-burst-based"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("epoch,expected", [(0, "1970-01-01T00:00Z"), (1, "1970-01-01T00:01Z"),
                                            (60, "1970-01-01T00:01Z"), (61, "1970-01-01T00:02Z")])
def test_reset_instant_is_rounded_up_to_the_minute(epoch, expected) -> None:
    from jirasim.ratelimits import iso_minute

    assert iso_minute(epoch) == expected
