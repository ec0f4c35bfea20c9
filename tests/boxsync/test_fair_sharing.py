"""Fair sharing of the one HTTP pool between tenants (jira/limits.py), over real HTTP against two
simulated Jira sites on loopback: a per-site cap on calls in flight, and one shared pause per site
when Jira throttles it. What the sites saw is read from jirasim's counters.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from boxsync.netpolicy import DEVELOPMENT  # the simulated sites listen on loopback
from boxsync.app import create_app
from boxsync.config import ConfigError, Settings
from boxsync.connect.tenants import Tenant
from boxsync.jira import JiraRateLimited, OAuthTokens, RetryPolicy, app_client, new_http_client, user_client
from boxsync.jira.limits import SITE, Limits, Throttled, attach, for_pool, pause_scope
from boxsync.jira.retry import parse_rate_limit_reset, throttle_delay, throttled
from jirasim.model import DEFAULT_ADMIN_ACCOUNT_ID, InstalledApp, Site
from jirasim.simulator import Simulator
from tests.support.servers import serve

APP_KEY = "boxsync-fair"
SECRET = "fair-sharing-test-shared-secret-0123456789"
FAST = RetryPolicy(max_attempts=4, max_wait=5, backoff_base=0.05, backoff_max=0.2, jitter=0.1)


@dataclass
class Jira:
    site: Site
    tenant: Tenant
    control: httpx.Client

    def counters(self) -> dict:
        return self.control.get("/_jirasim/counters").json()

    def received(self, route: str) -> int:
        return self.counters()["routes"].get(route, 0)

    def fault(self, **spec) -> None:
        self.control.post("/_jirasim/faults", json=spec).raise_for_status()

    def limit(self, **spec) -> None:
        self.control.put("/_jirasim/rate-limits", json=spec).raise_for_status()


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[Jira, Jira]]:
    """Two tenants: two simulated Jira sites, each on its own server, with the app installed."""
    sim = Simulator(seed=5)
    with serve(lambda url: sim.add_site("tenant-a", url, issues=10)) as url_a, \
            serve(lambda url: sim.add_site("tenant-b", url, issues=10)) as url_b:
        jiras = []
        for name, url in (("tenant-a", url_a), ("tenant-b", url_b)):
            site = sim.site(name)
            site.apps[APP_KEY] = InstalledApp(
                key=APP_KEY, base_url="http://127.0.0.1:9", client_key=f"jira:{name}", shared_secret=SECRET,
                oauth_client_id=f"oauth-{name}", descriptor={"key": APP_KEY},
                scopes=frozenset({"READ", "ACT_AS_USER"}), enabled=True, app_account_id=f"557058:app-{name}")
            now = dt.datetime.now(dt.timezone.utc)
            tenant = Tenant(id=len(jiras) + 1, client_key=f"jira:{name}", base_url=url, display_url=None,
                            product_type="jira", oauth_client_id=f"oauth-{name}", installed=True, enabled=True,
                            installed_at=now, updated_at=now, shared_secret=SECRET)
            jiras.append(Jira(site, tenant, httpx.Client(base_url=url, timeout=10)))
        try:
            yield jiras[0], jiras[1]
        finally:
            for jira in jiras:
                jira.control.close()


@pytest.fixture(autouse=True)
def clean(sites):
    for jira in sites:
        jira.control.delete("/_jirasim/faults").raise_for_status()
        jira.control.delete("/_jirasim/rate-limits").raise_for_status()
        jira.control.delete("/_jirasim/counters").raise_for_status()
    yield


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (without blocking the loop for long) for something the test needs before it goes on."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


async def finish(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- over HTTP ---------------------------------------------------------------------------------------

async def test_a_slow_site_does_not_hold_up_another(sites):
    a, b = sites
    # Every call to A hangs until its caller gives up: A is as slow as a site can be.
    a.fault(kind="timeout", endpoint="getServerInfo")
    # A pool smaller than one slow site's demand, as the 100-connection pool is for many tenants.
    http = new_http_client(addresses=DEVELOPMENT, limits=httpx.Limits(max_connections=6),
                           timeout=httpx.Timeout(30.0, connect=5.0, pool=2.0))
    attach(http, Limits(max_concurrency_per_site=3))
    stuck: list[asyncio.Task] = []
    try:
        jira_a = app_client(http, a.tenant, APP_KEY, policy=FAST)
        jira_b = app_client(http, b.tenant, APP_KEY, policy=FAST)
        stuck = [asyncio.create_task(jira_a.server_info()) for _ in range(12)]
        await until(lambda: a.received("getServerInfo") >= 3, "A's first calls to arrive")

        infos = await asyncio.gather(*(jira_b.server_info() for _ in range(12)))

        assert {info["baseUrl"] for info in infos} == {b.tenant.base_url}
        assert not any(task.done() for task in stuck)  # B finished while all of A's calls hang
        # The cap: of A's 12 callers, 3 are in flight (hanging) and the rest wait their turn
        # without taking a connection B needs.
        counters = a.counters()
        assert counters["callers"] == {f"app:{APP_KEY}": 3}
        assert b.counters()["callers"] == {f"app:{APP_KEY}": 12}
    finally:
        await finish(stuck)
        await http.aclose()


async def test_a_throttled_site_pauses_all_its_callers_together(sites, caplog):
    a, b = sites
    a.limit(quota={"points": 10, "window": 2})
    http = new_http_client(addresses=DEVELOPMENT)
    attach(http, Limits(max_concurrency_per_site=2))
    try:
        jira_a = app_client(http, a.tenant, APP_KEY, policy=FAST)
        jira_b = app_client(http, b.tenant, APP_KEY, policy=FAST)
        await asyncio.gather(*(jira_a.server_info() for _ in range(10)))  # A's quota is spent
        a.control.delete("/_jirasim/counters").raise_for_status()

        with caplog.at_level(logging.WARNING, logger="boxsync.jira"):
            on_a = [asyncio.create_task(jira_a.server_info()) for _ in range(10)]
            on_b = await asyncio.gather(*(jira_b.server_info() for _ in range(10)))
            assert not any(task.done() for task in on_a)  # B is not slowed by A's pause
            on_a_results = await asyncio.gather(*on_a)

        assert len(on_b) == 10 and b.counters()["statuses"] == {"200": 10}
        # A answered 429 only to the 2 calls in flight when its quota ran out; the other 8 callers
        # waited out the same pause without sending, then all 10 went through after the reset.
        assert len(on_a_results) == 10
        assert a.counters()["statuses"] == {"429": 2, "200": 10}
        assert a.received("getServerInfo") == 12
        # One warning for the throttle (naming Jira's reason), not one per caller.
        [warning] = [r.getMessage() for r in caplog.records if "429" in r.getMessage()]
        assert "jira-quota-tenant-based" in warning and "every call to the site paused" in warning
    finally:
        await http.aclose()


async def test_a_pause_longer_than_the_policy_waits_fails_fast_for_every_client_of_the_site(sites):
    a, b = sites
    a.limit(quota={"points": 1})  # an hour's quota of one point
    http = new_http_client(addresses=DEVELOPMENT)
    try:
        await app_client(http, a.tenant, APP_KEY, policy=FAST).server_info()
        with pytest.raises(JiraRateLimited) as first:
            await app_client(http, a.tenant, APP_KEY, policy=FAST).server_info()
        assert first.value.retry_after > FAST.max_wait and first.value.reason == "jira-quota-tenant-based"
        sent = a.received("getServerInfo")

        # New clients for the tenant (one per request, as the app makes them), as the app or as a
        # user, fail at once without sending: the pause is the site's, not the client's.
        tokens = OAuthTokens(http, a.tenant.base_url)
        as_user = user_client(http, tokens, a.tenant, DEFAULT_ADMIN_ACCOUNT_ID, policy=FAST)
        calls = [app_client(http, a.tenant, APP_KEY, policy=FAST).server_info() for _ in range(5)]
        results = await asyncio.gather(*calls, as_user.server_info(), return_exceptions=True)
        assert all(isinstance(r, JiraRateLimited) for r in results), results
        assert all(r.reason == "jira-quota-tenant-based" and r.retry_after > 3000 for r in results)
        assert "not sent" in str(results[0])
        assert a.received("getServerInfo") == sent
        # The other tenant is untouched.
        assert (await app_client(http, b.tenant, APP_KEY, policy=FAST).server_info())["baseUrl"] == b.tenant.base_url
    finally:
        await http.aclose()


async def test_what_a_pause_covers_follows_the_reason(sites):
    a, _ = sites
    http = new_http_client(addresses=DEVELOPMENT)
    try:
        jira_a = app_client(http, a.tenant, APP_KEY, policy=FAST)
        # A burst limit holds one endpoint + method: calls to it fail fast, others go ahead.
        a.fault(kind="rate_limit", endpoint="getServerInfo", count=1, retry_after=600, reason="jira-burst-based")
        for _ in range(2):
            with pytest.raises(JiraRateLimited):
                await jira_a.server_info()
        assert a.received("getServerInfo") == 1
        assert (await jira_a.myself())["accountId"] == "557058:app-tenant-a"
        # A quota limit (or none given) holds every call to the site.
        a.fault(kind="rate_limit", endpoint="getCurrentUser", count=1, retry_after=600,
                reason="jira-quota-tenant-based")
        with pytest.raises(JiraRateLimited):
            await jira_a.myself()
        with pytest.raises(JiraRateLimited) as held:
            await jira_a.fields()
        assert held.value.reason == "jira-quota-tenant-based"
        assert a.received("getFields") == 0
    finally:
        await http.aclose()


async def test_short_pauses_are_waited_out_and_the_call_succeeds(sites):
    a, _ = sites
    http = new_http_client(addresses=DEVELOPMENT)
    try:
        jira_a = app_client(http, a.tenant, APP_KEY, policy=FAST)
        a.fault(kind="error", status=503, endpoint="getFields", count=1, retry_after=1)
        a.fault(kind="rate_limit", endpoint="getServerInfo", count=1, retry_after=0)
        assert await jira_a.fields()
        assert (await jira_a.server_info())["deploymentType"] == "Cloud"
        assert a.received("getFields") == 2 and a.received("getServerInfo") == 2
    finally:
        await http.aclose()


def test_the_app_shares_its_pools_limits(tmp_path: Path):
    settings = Settings.from_env({"BOXSYNC_JIRA_MAX_CONCURRENCY_PER_SITE": "3",
                                  "BOXSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/fair.db"},
                                 var_dir=tmp_path)
    app = create_app(settings)

    async def check() -> None:
        async with app.router.lifespan_context(app):
            limits = for_pool(app.state.http)
            assert limits is app.state.jira_limits and limits.max_concurrency_per_site == 3
            client = app_client(app.state.http, _tenant("https://acme.atlassian.net"), APP_KEY)
            assert client.limit is limits.site("https://acme.atlassian.net:443")

    asyncio.run(check())


@pytest.mark.parametrize("value", ["0", "-1", "101", "eight", "", "2.5"])
def test_concurrency_setting_is_validated(tmp_path, value):
    with pytest.raises(ConfigError, match="BOXSYNC_JIRA_MAX_CONCURRENCY_PER_SITE"):
        Settings.from_env({"BOXSYNC_JIRA_MAX_CONCURRENCY_PER_SITE": value}, var_dir=tmp_path)
    assert Settings.from_env({}, var_dir=tmp_path).jira_max_concurrency_per_site == 8


# -- the pure parts --------------------------------------------------------------------------------------

def _tenant(base_url: str) -> Tenant:
    now = dt.datetime.now(dt.timezone.utc)
    return Tenant(id=9, client_key="jira:x", base_url=base_url, display_url=None, product_type="jira",
                  oauth_client_id=None, installed=True, enabled=True, installed_at=now, updated_at=now,
                  shared_secret=SECRET)


def test_one_site_one_limit_whatever_the_spelling():
    http = httpx.AsyncClient()
    clients = [app_client(http, _tenant(url), APP_KEY) for url in
               ("https://acme.atlassian.net", "https://ACME.atlassian.net:443/", "https://acme.atlassian.net")]
    assert len({id(c.limit) for c in clients}) == 1
    other = app_client(http, _tenant("https://other.atlassian.net"), APP_KEY)
    assert other.limit is not clients[0].limit
    # Another pool has limits of its own (and its own event loop).
    assert app_client(httpx.AsyncClient(), _tenant("https://acme.atlassian.net"), APP_KEY).limit is not clients[0].limit


def test_rate_limit_reset_header():
    now = dt.datetime(2026, 3, 2, 12, 0, 30, tzinfo=dt.timezone.utc).timestamp()
    # Atlassian documents yyyy-MM-ddTHH:mmZ; a full ISO instant is read too.
    assert parse_rate_limit_reset("2026-03-02T12:05Z", now=now) == 270
    assert parse_rate_limit_reset("2026-03-02T13:00:30+01:00", now=now) == 0
    for bad in (None, "", "soon", "2026-03-02T12:05"):  # no zone: cannot tell when it is
        assert parse_rate_limit_reset(bad, now=now) is None
    # Retry-After wins; X-RateLimit-Reset is used when it is the only hint.
    assert throttle_delay({"Retry-After": "7", "X-RateLimit-Reset": "2026-03-02T12:05Z"}, now=now) == 7
    assert throttle_delay({"X-RateLimit-Reset": "2026-03-02T12:05Z"}, now=now) == 270
    assert throttle_delay({}, now=now) is None
    assert throttled(429, None) and throttled(503, 5) and not throttled(503, None) and not throttled(500, 5)


def test_pause_scope_by_reason():
    args = ("PUT", "/rest/api/3/issue/{issueIdOrKey}", "/rest/api/3/issue/ABC-1")
    assert pause_scope("jira-burst-based", *args) == "PUT /rest/api/3/issue/{issueIdOrKey}"
    assert pause_scope("jira-per-issue-on-write", *args) == "PUT /rest/api/3/issue/ABC-1"
    for reason in ("jira-quota-tenant-based", "jira-cost-based", None, "something-new"):
        assert pause_scope(reason, *args) == SITE


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_turns_wait_out_pauses_and_refuse_long_ones():
    clock = Clock()
    site = Limits(2, clock=clock).site("https://acme.atlassian.net:443")
    scopes = (SITE, "GET /e", "GET /p")
    assert site.pause("GET /e", 4, "jira-burst-based")
    assert not site.pause("GET /e", 3, "jira-burst-based")  # not longer: the same throttle again
    assert site.paused(scopes) == (4, "jira-burst-based") and site.paused((SITE, "GET /other")) == (0, None)
    async with site.turn(scopes, max_wait=5, jitter=0.5, sleep=clock.sleep, rand=lambda: 1.0):
        assert clock.slept == [4.5]
    site.pause(SITE, 60, "jira-quota-tenant-based")
    with pytest.raises(Throttled) as info:
        async with site.turn(scopes, max_wait=5, jitter=0.5, sleep=clock.sleep):
            pass
    assert info.value.seconds == 60 and info.value.reason == "jira-quota-tenant-based"
    clock.now += 60
    assert site.paused(scopes) == (0, None)


async def test_turns_are_capped_per_site():
    limits = Limits(2)
    busy, other = limits.site("a"), limits.site("b")
    entered: list[str] = []
    release = asyncio.Event()

    async def call(site, name: str) -> None:
        async with site.turn((SITE,), max_wait=1, jitter=0):
            entered.append(name)
            await release.wait()

    tasks = [asyncio.create_task(call(busy, f"a{i}")) for i in range(4)]
    tasks.append(asyncio.create_task(call(other, "b0")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert sorted(entered) == ["a0", "a1", "b0"]
    release.set()
    await asyncio.gather(*tasks)
    assert sorted(entered) == ["a0", "a1", "a2", "a3", "b0"]


def test_limits_refuse_a_cap_below_one():
    with pytest.raises(ValueError):
        Limits(0)
