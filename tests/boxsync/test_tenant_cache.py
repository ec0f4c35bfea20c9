"""The in-process tenant cache (issue #6): fast, and never serving a tenant a lifecycle change
has replaced, in this process or (PostgreSQL LISTEN/NOTIFY) in another server on the same database.

Entries live `LONG` seconds in the server tests, far beyond any test, so only an invalidation can
explain a refusal; whether a server is serving from its cache is observed by counting the pool
checkouts a verified request makes (none on a hit).
"""
from __future__ import annotations

import time
from typing import Callable

import httpx
import pytest
import sqlalchemy as sa

from boxsync.config import ConfigError, Settings
from boxsync.connect.tables import tenants
from boxsync.connect.tenant_cache import LISTENER_NAME, TenantCache
from boxsync.connect.tenants import Tenant, now
from tests.boxsync.connectkit import key_server
from tests.boxsync.serverkit import Checkouts, Site, boxsync_app

LONG = 300


# -- the cache itself ------------------------------------------------------------------------------

def tenant(client_key: str, secret: str = "s" * 64) -> Tenant:
    return Tenant(id=1, client_key=client_key, base_url="https://x.atlassian.net", display_url=None,
                  product_type="jira", oauth_client_id=None, installed=True, enabled=True,
                  installed_at=now(), updated_at=now(), shared_secret=secret)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl_and_the_least_recent_goes_first():
    clock = Clock()
    cache = TenantCache(5, max_entries=2, clock=clock)
    cache.put(tenant("a"), cache.epoch)
    cache.put(tenant("b"), cache.epoch)
    assert cache.get("a").client_key == "a"  # a is now the most recent
    cache.put(tenant("c"), cache.epoch)
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    clock.now += 4.9
    assert cache.get("a") is not None
    clock.now += 0.2
    assert cache.get("a") is None and cache.get("c") is None


def test_a_lookup_that_raced_an_invalidation_is_not_stored():
    cache = TenantCache(5)
    epoch = cache.epoch                      # a request starts reading the row...
    cache.invalidate("a")                    # ...a lifecycle change commits meanwhile...
    cache.put(tenant("a", "old"), epoch)     # ...and what the request read is already old
    assert cache.get("a") is None
    cache.put(tenant("a", "new"), cache.epoch)
    assert cache.get("a").shared_secret == "new"


def test_a_suspended_cache_serves_and_keeps_nothing():
    cache = TenantCache(5, live=False)
    cache.put(tenant("a"), cache.epoch)
    assert cache.get("a") is None and not cache.live
    cache.resume()
    cache.put(tenant("a"), cache.epoch)
    assert cache.get("a") is not None
    cache.suspend()
    assert cache.get("a") is None
    cache.resume()
    assert cache.get("a") is None  # notifications missed while suspended: start empty
    assert not TenantCache(0).live  # BOXSYNC_TENANT_CACHE_SECONDS=0 turns it off


@pytest.mark.parametrize("value,expected", [(None, 5.0), ("0", 0.0), ("30", 30.0)])
def test_cache_seconds_setting(tmp_path, value, expected):
    env = {} if value is None else {"BOXSYNC_TENANT_CACHE_SECONDS": value}
    assert Settings.from_env(env, var_dir=tmp_path).tenant_cache_seconds == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "soon", "301"])
def test_bad_cache_seconds_are_refused_with_a_reason(tmp_path, value):
    with pytest.raises(ConfigError, match="BOXSYNC_TENANT_CACHE_SECONDS"):
        Settings.from_env({"BOXSYNC_TENANT_CACHE_SECONDS": value}, var_dir=tmp_path)


# -- servers ---------------------------------------------------------------------------------------

@pytest.fixture
def keys():
    with key_server() as ks:
        ks.new_key()
        yield ks


def poll(request: Callable[[], httpx.Response], status: int, attempts: int = 200) -> list[int]:
    """Repeat `request` (bounded in count) until it is answered `status`; return what was seen."""
    seen = []
    for _ in range(attempts):
        seen.append(request().status_code)
        if seen[-1] == status:
            break
        time.sleep(0.05)
    return seen


def warm(site: Site, url: str, checkouts: Checkouts) -> None:
    """Until the server verifies a page from its cache (no checkout). On PostgreSQL this also
    waits for the change listener, without which the cache does not serve."""
    counts = []
    for _ in range(200):
        resp, n = checkouts.during(lambda: site.page(url))
        assert resp.status_code == 200, resp.text
        counts.append(n)
        if counts[-2:] == [0, 0]:
            return
        time.sleep(0.02)
    raise AssertionError(f"the tenant never came from the cache: checkouts {counts[-10:]}")


async def write_behind_the_apps_back(engine, client_key: str, **values) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.update(tenants).where(tenants.c.client_key == client_key).values(**values))


def test_lifecycle_changes_are_seen_at_once_by_the_same_server(database_url, keys):
    site = Site("client-a", "a" * 64, "http://127.0.0.1:2990")
    with boxsync_app(database_url, keys.url, tenant_cache_seconds=LONG) as (url, app):
        checkouts = Checkouts(app)
        assert site.install(url, keys).status_code == 204
        warm(site, url, checkouts)
        assert site.toggle(url, "disabled").status_code == 204
        assert site.panel(url).status_code == 403
        assert site.toggle(url, "enabled").status_code == 204
        assert site.panel(url).status_code == 200
        # A reinstall rotates the secret: tokens signed with the old one are refused at once.
        warm(site, url, checkouts)
        old = site.secret
        assert site.install(url, keys, secret="n" * 64).status_code == 204
        assert site.panel(url, secret=old).status_code == 401
        assert site.panel(url).status_code == 200
        warm(site, url, checkouts)
        assert site.uninstall(url, keys).status_code == 204
        assert site.panel(url).status_code == 403


async def test_a_change_made_outside_the_app_is_seen_within_the_ttl(database_url, keys, engine):
    site = Site("client-a", "a" * 64, "http://127.0.0.1:2990")
    with boxsync_app(database_url, keys.url, tenant_cache_seconds=1) as (url, app):
        assert site.install(url, keys).status_code == 204
        warm(site, url, Checkouts(app))
        await write_behind_the_apps_back(engine, "client-a", enabled=False)  # nobody is told
        assert poll(lambda: site.panel(url), 403)[-1] == 403


@pytest.fixture
def two_servers(database_url, keys):
    """Two BoxSync servers (own event loop, engine, cache and listener each) on one database."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite deployments are one process by design")
    with boxsync_app(database_url, keys.url, tenant_cache_seconds=LONG) as (a, _), \
            boxsync_app(database_url, keys.url, tenant_cache_seconds=LONG) as (b, b_app):
        site = Site("client-a", "a" * 64, "http://127.0.0.1:2990")
        assert site.install(a, keys).status_code == 204
        yield {"a": a, "b": b, "b_checkouts": Checkouts(b_app), "site": site}


async def test_a_change_through_one_server_reaches_the_other(two_servers, keys, engine):
    a, b, site, b_checkouts = two_servers["a"], two_servers["b"], two_servers["site"], two_servers["b_checkouts"]
    warm(site, b, b_checkouts)
    # B answers from memory: a change nobody announces is not seen there...
    await write_behind_the_apps_back(engine, "client-a", enabled=False)
    assert site.panel(b).status_code == 200
    await write_behind_the_apps_back(engine, "client-a", enabled=True)
    # ...but one made through A's /disabled callback is, once PostgreSQL delivers A's NOTIFY.
    assert site.toggle(a, "disabled").status_code == 204
    assert site.panel(a).status_code == 403
    assert poll(lambda: site.panel(b), 403)[-1] == 403
    assert site.toggle(a, "enabled").status_code == 204
    assert poll(lambda: site.panel(b), 200)[-1] == 200
    # A reinstall through A rotates the secret: B stops accepting the old one too.
    warm(site, b, b_checkouts)
    old = site.secret
    assert site.install(a, keys, secret="n" * 64).status_code == 204
    assert poll(lambda: site.panel(b, secret=old), 401)[-1] == 401
    assert site.panel(b).status_code == 200


async def test_while_the_listener_is_down_the_database_is_read(two_servers, engine):
    a, b, site, b_checkouts = two_servers["a"], two_servers["b"], two_servers["site"], two_servers["b_checkouts"]
    warm(site, b, b_checkouts)
    async with engine.connect() as conn:  # cut every server's change listener
        cut = (await conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :name AND datname = current_database()"), {"name": LISTENER_NAME})).scalar()
    assert cut == 2
    # Missed notifications must not leave B serving its entry for the whole (long) TTL.
    await write_behind_the_apps_back(engine, "client-a", enabled=False)
    assert poll(lambda: site.panel(b), 403)[-1] == 403
    await write_behind_the_apps_back(engine, "client-a", enabled=True)
    # The listener reconnects on its own, and B caches (and hears A) again.
    assert poll(lambda: site.panel(b), 200)[-1] == 200
    warm(site, b, b_checkouts)
    assert site.toggle(a, "disabled").status_code == 204
    assert poll(lambda: site.panel(b), 403)[-1] == 403
