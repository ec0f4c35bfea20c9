"""Lifecycle callbacks applied in the order Jira issued them (token `iat`), install tokens accepted
once, and production installs limited to Atlassian site domains — over real HTTP, on SQLite and
PostgreSQL. One test per row of the truth table in boxsync.connect.tenants."""
from __future__ import annotations

import datetime
import time

import httpx
import pytest
import sqlalchemy as sa

from boxsync import crypto, db
from boxsync.app import create_app
from boxsync.config import Settings
from boxsync.connect.tables import install_tokens, lifecycle_events, tenants
from boxsync.netpolicy import URLRefused, check_atlassian_site
from tests.boxsync.connectkit import (
    APP_KEY, SECRET_KEY, boxsync_server, install_body, install_token, key_server, qsh_of, request_token,
)
from tests.conftest import count_rows
from tests.support.servers import serve

SITE = "http://127.0.0.1:2990"
SECRET = "s" * 64
T = int(time.time()) - 60  # Jira's clock: a minute ago, so that T + a few seconds is never "future"


@pytest.fixture
def stack(database_url):
    with key_server() as keys, boxsync_server(database_url, keys.url) as app_url:
        kid, key = keys.new_key()
        yield {"app": app_url, "kid": kid, "key": key}


def _install_token(stack, path: str, iat: int, client: str = "client-a") -> str:
    return install_token(stack["key"], stack["kid"], iss=client, aud=stack["app"], qsh=qsh_of("POST", path),
                         iat=iat, lifetime=900)


def install(stack, iat: int, secret: str = SECRET, site: str = SITE, token: str | None = None) -> httpx.Response:
    token = token or _install_token(stack, "/installed", iat)
    return httpx.post(stack["app"] + "/installed", json=install_body("client-a", secret, site),
                      headers={"Authorization": f"JWT {token}"})


def uninstall(stack, iat: int) -> httpx.Response:
    body = {**install_body("client-a", SECRET, SITE), "eventType": "uninstalled"}
    return httpx.post(stack["app"] + "/uninstalled", json=body,
                      headers={"Authorization": f"JWT {_install_token(stack, '/uninstalled', iat)}"})


def toggle(stack, event: str, iat: int, secret: str = SECRET) -> httpx.Response:
    url = stack["app"] + f"/{event}"
    token = request_token(secret, iss="client-a", qsh=qsh_of("POST", url), iat=iat, lifetime=900)
    return httpx.post(url, json={"clientKey": "client-a", "eventType": event},
                      headers={"Authorization": f"JWT {token}"})


async def tenant(engine) -> sa.Row:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(tenants))).one()


async def history(engine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(lifecycle_events.c.event).order_by(lifecycle_events.c.id))).scalars())


def secret_of(row: sa.Row) -> str:
    return crypto.decrypt(SECRET_KEY, row.shared_secret, row.client_key)


# --- installed --------------------------------------------------------------------------------------

async def test_an_install_token_is_accepted_once(stack, engine):
    token = _install_token(stack, "/installed", T)
    assert install(stack, T, token=token).status_code == 204
    # The same captured token with another body (qsh does not cover the body): refused, nothing changed.
    replay = install(stack, T, secret="attacker" * 8, site="http://127.0.0.1:6666", token=token)
    assert replay.status_code == 401 and "already used" in replay.json()["error"]
    row = await tenant(engine)
    assert row.base_url == SITE and secret_of(row) == SECRET
    assert await history(engine) == ["installed"]
    assert await count_rows(engine, install_tokens) == 1
    assert token not in str(await _token_rows(engine))  # only a digest is kept


async def _token_rows(engine) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(install_tokens))).all()


async def test_spent_tokens_are_forgotten_once_they_could_no_longer_verify(stack, engine):
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(install_tokens).values(digest="0" * 64, expires_at=past))
    assert install(stack, T).status_code == 204
    rows = await _token_rows(engine)
    assert len(rows) == 1 and rows[0].digest != "0" * 64
    # Kept until exp + leeway: until then the token would still verify.
    assert rows[0].expires_at.timestamp() == T + 900 + 30


async def test_an_install_older_than_the_last_accepted_one_is_refused(stack, engine):
    assert install(stack, T + 10).status_code == 204
    stale = install(stack, T + 5, secret="o" * 64, site="http://127.0.0.1:2991")
    assert stale.status_code == 401 and "older" in stale.json()["error"]
    row = await tenant(engine)
    assert row.base_url == SITE and secret_of(row) == SECRET and row.install_iat == T + 10
    assert await history(engine) == ["installed"]


async def test_an_install_older_than_the_newest_lifecycle_event_is_refused(stack, engine):
    assert install(stack, T).status_code == 204
    assert toggle(stack, "disabled", T + 5).status_code == 204
    # Newer than the last install, older than the disable that was already applied.
    assert install(stack, T + 3, secret="o" * 64).status_code == 401
    row = await tenant(engine)
    assert secret_of(row) == SECRET and not row.enabled and row.lifecycle_iat == T + 5
    assert await count_rows(engine, install_tokens) == 1  # the refused token was not spent either


async def test_a_reinstall_in_the_same_second_as_the_uninstall_works(stack, engine):
    assert install(stack, T).status_code == 204
    assert uninstall(stack, T + 1).status_code == 204
    assert not (await tenant(engine)).installed
    token = _install_token(stack, "/installed", T + 1)
    assert install(stack, T + 1, secret="n" * 64, token=token).status_code == 204
    row = await tenant(engine)
    assert row.installed and row.enabled and secret_of(row) == "n" * 64
    # ...and a replay of that very token still is not.
    assert install(stack, T + 1, secret="x" * 64, token=token).status_code == 401
    assert secret_of(await tenant(engine)) == "n" * 64
    assert await history(engine) == ["installed", "uninstalled", "installed"]


async def test_a_reinstall_does_not_undo_an_admins_disable(stack, engine):
    assert install(stack, T).status_code == 204
    assert toggle(stack, "disabled", T + 1).status_code == 204
    assert install(stack, T + 2, secret="n" * 64).status_code == 204  # upgrade, secret rotation…
    row = await tenant(engine)
    assert row.installed and not row.enabled and secret_of(row) == "n" * 64
    # When Jira really enables the app it says so, after the install (same second): that decides.
    assert toggle(stack, "enabled", T + 2, secret="n" * 64).status_code == 204
    assert (await tenant(engine)).enabled


# --- uninstalled ------------------------------------------------------------------------------------

async def test_a_late_uninstall_issued_before_the_reinstall_is_ignored(stack, engine):
    assert install(stack, T).status_code == 204
    assert install(stack, T + 2, secret="n" * 64).status_code == 204  # the reinstall
    assert uninstall(stack, T + 1).status_code == 204  # issued before it, arriving after
    row = await tenant(engine)
    assert row.installed and row.enabled and row.uninstalled_at is None
    assert await history(engine) == ["installed", "installed"]


async def test_an_uninstall_in_the_same_second_as_the_install_is_ignored(stack, engine):
    # Cannot tell "uninstalled then reinstalled" from "installed then uninstalled" within one
    # second; keeping the tenant installed is the harmless reading (Jira just stops calling).
    assert install(stack, T).status_code == 204
    assert uninstall(stack, T).status_code == 204
    assert (await tenant(engine)).installed
    assert uninstall(stack, T + 1).status_code == 204
    row = await tenant(engine)
    assert not row.installed and not row.enabled and row.lifecycle_event == "uninstalled"
    assert uninstall(stack, T + 1).status_code == 204  # the same again changes nothing
    assert await history(engine) == ["installed", "uninstalled"]


async def test_an_uninstall_older_than_the_newest_lifecycle_event_is_ignored(stack, engine):
    assert install(stack, T).status_code == 204
    assert toggle(stack, "disabled", T + 5).status_code == 204
    assert uninstall(stack, T + 3).status_code == 204  # after the install, before the disable
    row = await tenant(engine)
    assert row.installed and row.lifecycle_event == "disabled" and row.lifecycle_iat == T + 5
    assert uninstall(stack, T + 5).status_code == 204  # the disable's second: uninstall comes after it
    assert not (await tenant(engine)).installed
    assert await history(engine) == ["installed", "disabled", "uninstalled"]


# --- enabled / disabled -----------------------------------------------------------------------------

async def test_enable_and_disable_apply_in_issue_order(stack, engine):
    assert install(stack, T).status_code == 204
    assert toggle(stack, "disabled", T + 3).status_code == 204
    assert toggle(stack, "enabled", T + 2).status_code == 204  # older: ignored
    assert not (await tenant(engine)).enabled
    assert toggle(stack, "enabled", T + 4).status_code == 204  # newer: applied
    assert (await tenant(engine)).enabled
    assert toggle(stack, "disabled", T + 1).status_code == 204  # older: ignored
    assert (await tenant(engine)).enabled
    assert await history(engine) == ["installed", "disabled", "enabled"]


async def test_same_second_enable_and_disable(stack, engine):
    assert install(stack, T).status_code == 204
    assert toggle(stack, "enabled", T).status_code == 204  # Jira's enabled right after the install
    assert (await tenant(engine)).enabled
    assert toggle(stack, "disabled", T + 1).status_code == 204
    assert toggle(stack, "enabled", T + 1).status_code == 204  # same second: disable wins the tie
    assert not (await tenant(engine)).enabled
    assert toggle(stack, "disabled", T + 1).status_code == 204  # a duplicate: nothing recorded
    assert await history(engine) == ["installed", "enabled", "disabled"]


async def test_a_late_toggle_after_the_uninstall_is_answered_and_ignored(stack, engine):
    assert install(stack, T).status_code == 204
    assert uninstall(stack, T + 2).status_code == 204
    # `disabled` and `uninstalled` race (§2.1): the disable issued first arrives last. It is
    # verified with the stored secret and answered 204 (not 403), and changes nothing.
    resp = toggle(stack, "disabled", T + 1)
    assert resp.status_code == 204, resp.text
    assert toggle(stack, "disabled", T + 2).status_code == 204  # nothing follows an uninstall in its second
    row = await tenant(engine)
    assert not row.installed and row.lifecycle_event == "uninstalled" and row.lifecycle_iat == T + 2
    assert await history(engine) == ["installed", "uninstalled"]
    assert toggle(stack, "disabled", T + 1, secret="w" * 64).status_code == 401  # still verified


# --- production: Atlassian sites only ----------------------------------------------------------------

@pytest.mark.parametrize("url,ok", [
    ("https://acme.atlassian.net", True),
    ("https://ACME-2.atlassian.net/", True),
    ("https://acme.atlassian.net:443", True),
    ("https://atlassian.net", False),
    ("https://.atlassian.net", False),
    ("https://a.b.atlassian.net", False),
    ("https://acme.atlassian.net.evil.com", False),
    ("https://evilatlassian.net", False),
    ("http://acme.atlassian.net", False),
    ("https://acme.atlassian.net:8443", False),
    ("https://acme.jira-dev.com", False),
    ("https://127.0.0.1", False),
])
def test_atlassian_site_domains(url, ok):
    if ok:
        check_atlassian_site(url)
    else:
        with pytest.raises(URLRefused):
            check_atlassian_site(url)


async def test_production_installs_only_atlassian_sites(database_url, engine):
    with key_server() as keys:
        kid, key = keys.new_key()

        def app(url: str):
            return create_app(Settings(base_url=url, database_url=database_url, app_key=APP_KEY,
                                       secret_key=SECRET_KEY, install_keys_url=keys.url, env="production"))

        with serve(app) as url:
            for n, (site, why) in enumerate([("https://jira.evil.example.com", "not an Atlassian site"),
                                             ("https://acme.atlassian.net.evil.example.com", "not an Atlassian site"),
                                             ("http://acme.atlassian.net", "https")]):
                token = install_token(key, kid, iss="client-a", aud=url, qsh=qsh_of("POST", "/installed"),
                                      iat=int(time.time()) - n)  # a token each
                resp = httpx.post(url + "/installed", json=install_body("client-a", SECRET, site),
                                  headers={"Authorization": f"JWT {token}"})
                assert resp.status_code == 400 and why in resp.json()["error"], resp.text
            assert await count_rows(engine, tenants) == 0


# --- the migration ---------------------------------------------------------------------------------

async def test_the_lifecycle_migration_downgrades_and_upgrades_again(database_url):
    def columns(sync_conn) -> dict[str, set[str]]:
        insp = sa.inspect(sync_conn)
        return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}

    engine = db.create_engine(database_url)  # migrated to head by the fixture, and left there
    try:
        await db.downgrade(engine, "0003")
        async with engine.connect() as conn:
            before = await conn.run_sync(columns)
        assert "install_tokens" not in before and "lifecycle_iat" not in before["tenants"]
        assert "stub_reason" not in before["webhook_inbox"]
        await db.migrate(engine)
        async with engine.connect() as conn:
            after = await conn.run_sync(columns)
        assert {"lifecycle_iat", "lifecycle_event", "install_iat"} <= after["tenants"]
        assert "install_tokens" in after and "stub_reason" in after["webhook_inbox"]
    finally:
        await engine.dispose()
