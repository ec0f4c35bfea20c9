"""Injected faults (429, 5xx, latency, timeouts) and request counters, over real HTTP."""
from __future__ import annotations

import time

import httpx
import pytest

from tests.jirasim.simsite import ALICE, BOB, RunningSite

SEARCH = {"jql": "project = ALPHA"}


async def add_fault(c: httpx.AsyncClient, **spec) -> dict:
    r = await c.post("/_jirasim/faults", json=spec)
    assert r.status_code == 201, r.text
    return r.json()


async def test_rate_limit_with_retry_after_and_reason(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as c:
        await add_fault(c, kind="rate_limit", endpoint="searchAndReconsileIssuesUsingJql", count=2, retry_after=7,
                        reason="jira-burst-based")
        for _ in range(2):
            r = await c.get("/rest/api/3/search/jql", params=SEARCH)
            assert r.status_code == 429
            assert r.headers["Retry-After"] == "7" and r.headers["RateLimit-Reason"] == "jira-burst-based"
            assert r.json()["errorMessages"] and r.json()["errors"] == {}
        assert (await c.get("/rest/api/3/search/jql", params=SEARCH)).status_code == 200
        # Other endpoints were never affected.
        assert (await c.get("/rest/api/3/issue/ALPHA-1")).status_code == 200
        faults = (await c.get("/_jirasim/faults")).json()["faults"]
        assert faults[0]["hits"] == 2 and faults[0]["count"] == 0


async def test_5xx_by_path_glob_method_and_caller(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as c:
        await add_fault(c, kind="error", status=503, endpoint="/rest/api/3/issue/*", method="GET", retry_after=2)
        r = await c.get("/rest/api/3/issue/ALPHA-1")
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        r = await c.put("/rest/api/3/issue/ALPHA-1", json={"fields": {"summary": "still works"}})
        assert r.status_code == 204
        await c.delete("/_jirasim/faults")
        assert (await c.get("/rest/api/3/issue/ALPHA-1")).status_code == 200
        bob = fresh_jira.site.user_by_email("bob@example.com").account_id
        await add_fault(c, kind="error", status=500, caller=f"user:{bob}")
        assert (await c.get("/rest/api/3/issue/ALPHA-1")).status_code == 200
    async with fresh_jira.client(auth=BOB) as b:
        assert (await b.get("/rest/api/3/issue/ALPHA-1")).status_code == 500


async def test_latency(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as c:
        await add_fault(c, kind="latency", seconds=0.3, endpoint="/rest/api/3/issue/{issueIdOrKey}", count=1)
        started = time.perf_counter()
        r = await c.get("/rest/api/3/issue/ALPHA-1")
        assert r.status_code == 200 and time.perf_counter() - started >= 0.3
        started = time.perf_counter()
        await c.get("/rest/api/3/issue/ALPHA-1")
        assert time.perf_counter() - started < 0.3


async def test_timeout_hangs_until_the_client_gives_up(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as c:
        await add_fault(c, kind="timeout", endpoint="getIssue", count=1)
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/rest/api/3/issue/ALPHA-1", timeout=0.5)
        assert (await c.get("/rest/api/3/issue/ALPHA-1")).status_code == 200
        await add_fault(c, kind="timeout", endpoint="getIssue", count=1, seconds=0.2)
        assert (await c.get("/rest/api/3/issue/ALPHA-1")).status_code == 504


async def test_probability_is_seeded(fresh_jira: RunningSite) -> None:
    async def run() -> list[int]:
        async with fresh_jira.client() as c:
            await c.delete("/_jirasim/faults")
            await add_fault(c, kind="error", status=502, endpoint="getServerInfo", probability=0.5, seed=123)
            return [(await c.get("/rest/api/3/serverInfo")).status_code for _ in range(20)]

    first, second = await run(), await run()
    assert first == second
    assert 0 < first.count(502) < 20 and set(first) == {200, 502}


async def test_counters_per_endpoint_and_caller(fresh_jira: RunningSite) -> None:
    site = fresh_jira.site
    admin_id = "557058:00000000-0000-4000-8000-000000000001"
    alice_id = site.user_by_email("alice@example.com").account_id
    async with fresh_jira.client() as c:
        assert (await c.delete("/_jirasim/counters")).status_code == 204
        await c.get("/rest/api/3/issue/ALPHA-1")
        await c.get("/rest/api/3/issue/ALPHA-2")
        await c.post("/rest/api/3/search/jql", json=SEARCH)
        await add_fault(c, kind="rate_limit", endpoint="getServerInfo", count=1)
        await c.get("/rest/api/3/serverInfo")
    async with fresh_jira.client(auth=ALICE) as a:
        await a.get("/rest/api/3/issue/ALPHA-1")
    async with fresh_jira.client(auth=None) as anon:
        await anon.get("/rest/api/3/serverInfo")
    async with fresh_jira.client() as c:
        counters = (await c.get("/_jirasim/counters")).json()
    assert counters["total"] == 6  # control calls are not counted
    assert counters["endpoints"]["GET /rest/api/3/issue/{issueIdOrKey}"] == 3
    assert counters["routes"]["getIssue"] == 3 and counters["routes"]["searchAndReconsileIssuesUsingJqlPost"] == 1
    assert counters["callers"] == {f"user:{admin_id}": 4, f"user:{alice_id}": 1, "anonymous": 1}
    assert counters["byEndpointAndCaller"]["GET /rest/api/3/issue/{issueIdOrKey}"] == {f"user:{admin_id}": 2, f"user:{alice_id}": 1}
    assert counters["statuses"]["429"] == 1
    assert site.traffic.by_route["getServerInfo"] == 2


async def test_bad_fault_specs_are_400(fresh_jira: RunningSite) -> None:
    async with fresh_jira.client() as c:
        for spec in ({"kind": "explode"}, {"kind": "error", "status": 404}, {"kind": "latency"},
                     {"kind": "rate_limit", "count": 0}, {"kind": "rate_limit", "probability": 2},
                     {"kind": "rate_limit", "nonsense": 1}):
            r = await c.post("/_jirasim/faults", json=spec)
            assert r.status_code == 400 and r.json()["error"], spec
        assert (await c.post("/_jirasim/faults", content=b"[")).status_code == 400
        assert (await c.delete("/_jirasim/faults/999")).status_code == 404
