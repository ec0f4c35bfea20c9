"""Issue #6: a verified request checks out at most one database connection, on both backends.

The verifier and the endpoint share the request's one connection (boxsync.request_db), opened only
when needed; a tenant found in the cache needs none for the verification. Counted with SQLAlchemy
pool events on the running app's own engine, one request at a time.
"""
from __future__ import annotations

import pytest

from tests.boxsync.connectkit import key_server
from tests.boxsync.serverkit import Checkouts, Site, boxsync_app


@pytest.fixture(params=["with_cache", "cache_off"])
def stack(request, database_url):
    extra = {} if request.param == "with_cache" else {"tenant_cache_seconds": 0}
    with key_server() as keys, boxsync_app(database_url, keys.url, **extra) as (url, app):
        site = Site("client-a", "a" * 64, "http://127.0.0.1:2990")
        assert site.install(url, keys).status_code == 204
        yield {"url": url, "app": app, "site": site, "cached": request.param == "with_cache",
               "checkouts": Checkouts(app)}


def test_each_verified_request_checks_out_at_most_one_connection(stack):
    url, site, checkouts = stack["url"], stack["site"], stack["checkouts"]
    for _ in range(3):  # the first of each may miss the cache, the next ones hit it
        resp, n = checkouts.during(lambda: site.webhook(url))  # verify + a write in the handler
        assert resp.status_code == 204 and n == 1, n
        resp, n = checkouts.during(lambda: site.page(url))  # verify only
        assert resp.status_code == 200 and n <= 1, n
        resp, n = checkouts.during(lambda: site.panel(url))  # verify + the Boxes holding the issue
        assert resp.status_code == 200 and n <= 1, n
    for event_name in ("disabled", "enabled"):  # verify + the lifecycle write, one transaction
        resp, n = checkouts.during(lambda: site.toggle(url, event_name))
        assert resp.status_code == 204 and n == 1, (event_name, n)
    resp, n = checkouts.during(lambda: site.panel(url, secret="w" * 64))  # refused: still at most one
    assert resp.status_code == 401 and n <= 1, n
    resp, n = checkouts.during(lambda: site.panel(url, iss="unknown-site"))
    assert resp.status_code == 401 and n <= 1, n


def test_a_cached_tenant_is_verified_without_the_database(stack):
    url, site, checkouts = stack["url"], stack["site"], stack["checkouts"]
    counts = []
    # On PostgreSQL the cache serves only once its change listener is connected: a few requests'
    # time after start. Bounded in count, no timing asserted.
    for _ in range(50):
        resp, n = checkouts.during(lambda: site.page(url))
        assert resp.status_code == 200
        counts.append(n)
        if stack["cached"] and counts[-3:] == [0, 0, 0]:
            break
    if stack["cached"]:
        assert counts[-3:] == [0, 0, 0], counts
    else:
        assert set(counts) == {1}, counts  # BOXSYNC_TENANT_CACHE_SECONDS=0: read on every request
