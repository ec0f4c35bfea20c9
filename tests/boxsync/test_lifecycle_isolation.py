"""A lifecycle callback of one site changes that site only, with two sites installed side by side.

Every check goes through HTTP (signed lifecycle callbacks, signed panel requests) plus a read of the
tenants table, so any implementation that keeps the tenants apart passes.
"""
from __future__ import annotations

import itertools
import time

import httpx
import pytest
import sqlalchemy as sa

from boxsync.connect.tables import lifecycle_events, tenants
from tests.boxsync.connectkit import (
    boxsync_server, install_body, install_token, key_server, qsh_of, request_token,
)

SITES = {
    "site-a": ("a" * 64, "http://127.0.0.1:2990"),
    "site-b": ("b" * 64, "http://127.0.0.1:2991"),
}


@pytest.fixture
def stack(database_url):
    with key_server() as keys, boxsync_server(database_url, keys.url) as app:
        kid, key = keys.new_key()
        for client, (secret, site) in SITES.items():
            token = install_token(key, kid, iss=client, aud=app, qsh=qsh_of("POST", "/installed"))
            resp = httpx.post(app + "/installed", json=install_body(client, secret, site),
                              headers={"Authorization": f"JWT {token}"})
            assert resp.status_code == 204, resp.text
        yield {"app": app, "kid": kid, "key": key}


def panel(stack, client: str) -> int:
    url = stack["app"] + "/panel/wbs?issueKey=ABC-1"
    token = request_token(SITES[client][0], iss=client, qsh=qsh_of("GET", url))
    return httpx.get(url + "&jwt=" + token).status_code


# Lifecycle events are applied in the order Jira issued them (iat, whole seconds), and one not newer
# than the last applied is ignored: each event here is issued a second after the previous one.
_ticks = itertools.count(1)


def later() -> int:
    return int(time.time()) + next(_ticks)


def toggle(stack, client: str, event: str, body_client: str | None = None,
           sub: str | None = "557058:alice") -> httpx.Response:
    url = stack["app"] + f"/{event}"
    token = request_token(SITES[client][0], iss=client, qsh=qsh_of("POST", url), sub=sub, iat=later())
    return httpx.post(url, json={"clientKey": body_client or client, "eventType": event},
                      headers={"Authorization": f"JWT {token}"})


def uninstall(stack, client: str) -> httpx.Response:
    token = install_token(stack["key"], stack["kid"], iss=client, aud=stack["app"],
                          qsh=qsh_of("POST", "/uninstalled"), iat=later())
    secret, site = SITES[client]
    return httpx.post(stack["app"] + "/uninstalled",
                      json={**install_body(client, secret, site), "eventType": "uninstalled"},
                      headers={"Authorization": f"JWT {token}"})


async def states(engine) -> dict[str, tuple[bool, bool]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(tenants.c.client_key, tenants.c.installed, tenants.c.enabled))
        return {key: (installed, enabled) for key, installed, enabled in rows}


async def test_disabling_one_site_leaves_the_other_enabled(stack, engine):
    assert toggle(stack, "site-a", "disabled").status_code == 204
    assert await states(engine) == {"site-a": (True, False), "site-b": (True, True)}
    assert panel(stack, "site-a") == 403
    assert panel(stack, "site-b") == 200


async def test_enabling_one_site_leaves_a_disabled_other_disabled(stack, engine):
    assert toggle(stack, "site-a", "disabled").status_code == 204
    assert toggle(stack, "site-b", "disabled").status_code == 204
    assert toggle(stack, "site-a", "enabled").status_code == 204
    assert await states(engine) == {"site-a": (True, True), "site-b": (True, False)}
    assert panel(stack, "site-a") == 200
    assert panel(stack, "site-b") == 403


async def test_uninstalling_one_site_leaves_the_other_installed(stack, engine):
    assert uninstall(stack, "site-a").status_code == 204
    assert await states(engine) == {"site-a": (False, False), "site-b": (True, True)}
    assert panel(stack, "site-a") == 403
    assert panel(stack, "site-b") == 200


async def test_a_site_cannot_disable_another_by_naming_it_in_the_body(stack, engine):
    resp = toggle(stack, "site-a", "disabled", body_client="site-b")
    assert resp.status_code == 400 and "clientKey" in resp.json()["error"]
    assert await states(engine) == {"site-a": (True, True), "site-b": (True, True)}
    assert panel(stack, "site-a") == 200 and panel(stack, "site-b") == 200


async def events(engine) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(tenants.c.client_key, lifecycle_events.c.event, lifecycle_events.c.account_id)
            .join_from(lifecycle_events, tenants, lifecycle_events.c.tenant_id == tenants.c.id)
            .order_by(lifecycle_events.c.id))
        return [tuple(r) for r in rows]


async def updated_at(engine, client: str):
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(tenants.c.updated_at).where(tenants.c.client_key == client))).scalar_one()


async def test_each_change_is_recorded_for_its_site_with_who_did_it(stack, engine):
    before = {client: await updated_at(engine, client) for client in SITES}
    assert toggle(stack, "site-a", "disabled", sub="557058:admin-a").status_code == 204
    assert toggle(stack, "site-a", "enabled", sub=None).status_code == 204
    assert uninstall(stack, "site-b").status_code == 204
    assert await events(engine) == [
        ("site-a", "installed", None), ("site-b", "installed", None),
        ("site-a", "disabled", "557058:admin-a"), ("site-a", "enabled", None), ("site-b", "uninstalled", None),
    ]
    for client in SITES:
        assert await updated_at(engine, client) > before[client]
