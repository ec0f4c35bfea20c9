"""Signed install, uninstall, enable and disable over real HTTP, on SQLite and PostgreSQL."""
from __future__ import annotations

import time

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa

from boxsync import crypto
from boxsync.connect.tables import lifecycle_events, tenants
from tests.boxsync.connectkit import (
    APP_KEY, SECRET_KEY, boxsync_server, install_body, install_token, key_server, public_pem, qsh_of,
    request_token, unsigned_token,
)
from tests.conftest import count_rows

SITE = "http://127.0.0.1:2990"
SECRET = "s" * 64


@pytest.fixture
def stack(database_url):
    with key_server() as keys, boxsync_server(database_url, keys.url) as app_url:
        kid, key = keys.new_key()
        yield {"keys": keys, "app": app_url, "kid": kid, "key": key}


def post_install(stack, body: dict, token: str | None, path: str = "/installed") -> httpx.Response:
    headers = {"Authorization": f"JWT {token}"} if token else {}
    return httpx.post(stack["app"] + path, json=body, headers=headers)


def good_token(stack, client_key: str, path: str = "/installed", **kw) -> str:
    return install_token(stack["key"], stack["kid"], iss=client_key, aud=stack["app"],
                         qsh=qsh_of("POST", path), **kw)


async def test_signed_install_stores_the_tenant_with_an_encrypted_secret(stack, engine):
    resp = post_install(stack, install_body("client-a", SECRET, SITE), good_token(stack, "client-a"))
    assert resp.status_code == 204, resp.text
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(tenants))).one()
    assert row.client_key == "client-a" and row.base_url == SITE and row.installed and row.enabled
    assert row.installed_at.tzinfo is not None and abs(time.time() - row.installed_at.timestamp()) < 60
    assert SECRET not in row.shared_secret  # encrypted at rest
    assert crypto.decrypt(SECRET_KEY, row.shared_secret, "client-a") == SECRET
    assert await count_rows(engine, lifecycle_events) == 1


async def test_reinstall_replaces_secret_and_url_and_keeps_the_tenant(stack, engine):
    assert post_install(stack, install_body("client-a", SECRET, SITE), good_token(stack, "client-a")).status_code == 204
    new_secret, new_site = "n" * 64, "http://127.0.0.1:2991"
    # A later install: its own token (the same token again would be a replay, see test_lifecycle_order).
    resp = post_install(stack, install_body("client-a", new_secret, new_site),
                        good_token(stack, "client-a", iat=int(time.time()) + 1))
    assert resp.status_code == 204
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(tenants))).all()
    assert len(rows) == 1 and rows[0].base_url == new_site
    assert crypto.decrypt(SECRET_KEY, rows[0].shared_secret, "client-a") == new_secret
    # The old secret no longer opens anything; the new one does.
    url = stack["app"] + "/panel/wbs?issueKey=ABC-1"
    old = request_token(SECRET, iss="client-a", qsh=qsh_of("GET", url))
    new = request_token(new_secret, iss="client-a", qsh=qsh_of("GET", url))
    assert httpx.get(url + f"&jwt={old}").status_code == 401
    assert httpx.get(url + f"&jwt={new}").status_code == 200


def _refusals(stack):
    """(name, token builder) for every way an install token must be refused."""
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    q = qsh_of("POST", "/installed")
    kid, key, app = stack["kid"], stack["key"], stack["app"]
    return {
        "unsigned": None,
        "wrongly signed": install_token(other_key, kid, iss="client-a", aud=app, qsh=q),
        "wrong aud": install_token(key, kid, iss="client-a", aud="https://evil.example.com", qsh=q),
        "wrong iss": install_token(key, kid, iss="client-b", aud=app, qsh=q),
        "wrong qsh": install_token(key, kid, iss="client-a", aud=app, qsh=qsh_of("POST", "/uninstalled")),
        "context qsh": install_token(key, kid, iss="client-a", aud=app, qsh="context-qsh"),
        "expired": install_token(key, kid, iss="client-a", aud=app, qsh=q, iat=now - 3600, lifetime=600),
        "alg none": unsigned_token({"iss": "client-a", "aud": app, "qsh": q, "iat": now, "exp": now + 180},
                                   {"alg": "none", "typ": "JWT", "kid": kid}),
        "hs256 with public key": _hs256_with_public_key(key, kid, app, q, now),
        "hs256 with shared secret": jwt.encode({"iss": "client-a", "aud": app, "qsh": q, "iat": now,
                                                "exp": now + 180}, SECRET, algorithm="HS256", headers={"kid": kid}),
        "unknown kid": install_token(key, "kid-unknown", iss="client-a", aud=app, qsh=q),
        "kid escaping the key URL": install_token(key, "../../etc/passwd", iss="client-a", aud=app, qsh=q),
        "no kid": install_token(key, None, iss="client-a", aud=app, qsh=q),
        "no qsh": jwt.encode({"iss": "client-a", "aud": app, "iat": now, "exp": now + 180}, key,
                             algorithm="RS256", headers={"kid": kid}),
    }


def _hs256_with_public_key(key, kid, app, q, now) -> str:
    # The algorithm-confusion attack: HMAC keyed with the (public) PEM. PyJWT refuses to *make*
    # such a token, so sign it by hand exactly as an attacker would.
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "." +
                     b64(json.dumps({"iss": "client-a", "aud": app, "qsh": q, "iat": now, "exp": now + 180}).encode()))
    sig = hmac.new(public_pem(key), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


async def test_every_forged_install_is_refused_and_writes_nothing(stack, engine):
    for name, token in _refusals(stack).items():
        resp = post_install(stack, install_body("client-a", SECRET, SITE), token)
        assert resp.status_code == 401, f"{name}: {resp.status_code} {resp.text}"
        assert "error" in resp.json(), name
        assert SECRET not in resp.text and (token is None or token not in resp.text), name
        assert await count_rows(engine, tenants) == 0, name
        assert await count_rows(engine, lifecycle_events) == 0, name
    # The escaping kid never produced a request outside the key URL's one path segment.
    assert not any("/" in hit or ".." in hit for hit in stack["keys"].hits)


async def test_a_forged_reinstall_does_not_replace_the_secret(stack, engine):
    assert post_install(stack, install_body("client-a", SECRET, SITE), good_token(stack, "client-a")).status_code == 204
    hijack = install_body("client-a", "attacker" * 8, "http://127.0.0.1:6666")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = install_token(other_key, stack["kid"], iss="client-a", aud=stack["app"], qsh=qsh_of("POST", "/installed"))
    assert post_install(stack, hijack, forged).status_code == 401
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(tenants))).one()
    assert row.base_url == SITE and crypto.decrypt(SECRET_KEY, row.shared_secret, "client-a") == SECRET


@pytest.mark.parametrize("change,message", [
    ({"sharedSecret": None}, "sharedSecret"),
    ({"baseUrl": "http://jira.example.com"}, "plain http"),
    ({"baseUrl": "not a url"}, "not an absolute"),
    ({"productType": "confluence"}, "Jira app"),
    ({"key": "someone-else"}, "this server is"),
    ({"eventType": "uninstalled"}, "eventType"),
    ({"sharedSecret": "x" * 600}, "sharedSecret"),
])
async def test_bad_install_bodies_get_a_clear_400_and_write_nothing(stack, engine, change, message):
    body = {k: v for k, v in {**install_body("client-a", SECRET, SITE), **change}.items() if v is not None}
    resp = post_install(stack, body, good_token(stack, "client-a"))
    assert resp.status_code == 400 and message in resp.json()["error"]
    assert await count_rows(engine, tenants) == 0


async def test_malformed_json_is_400(stack, engine):
    resp = httpx.post(stack["app"] + "/installed", content=b"{not json",
                      headers={"Authorization": f"JWT {good_token(stack, 'client-a')}",
                               "Content-Type": "application/json"})
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]
    assert await count_rows(engine, tenants) == 0


async def test_install_keys_are_cached_by_kid(stack):
    for client in ("client-a", "client-b", "client-c"):
        assert post_install(stack, install_body(client, SECRET, SITE), good_token(stack, client)).status_code == 204
    assert stack["keys"].hits == [stack["kid"]]


async def test_uninstall_keeps_data_and_locks_the_tenant_out(stack, engine):
    assert post_install(stack, install_body("client-a", SECRET, SITE), good_token(stack, "client-a")).status_code == 204
    # Issued a second after the install: a same-second uninstall is ambiguous and ignored
    # (test_lifecycle_order covers that row).
    resp = post_install(stack, {**install_body("client-a", SECRET, SITE), "eventType": "uninstalled"},
                        good_token(stack, "client-a", "/uninstalled", iat=int(time.time()) + 1), "/uninstalled")
    assert resp.status_code == 204
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(tenants))).one()
    assert not row.installed and row.uninstalled_at is not None
    url = stack["app"] + "/panel/wbs?issueKey=ABC-1"
    token = request_token(SECRET, iss="client-a", qsh=qsh_of("GET", url))
    assert httpx.get(url + f"&jwt={token}").status_code == 403
    # An unsigned uninstall of someone else's site is refused and changes nothing.
    assert post_install(stack, {"clientKey": "client-a"}, None, "/uninstalled").status_code == 401


async def test_uninstall_of_an_unknown_site_is_accepted(stack, engine):
    resp = post_install(stack, install_body("ghost", SECRET, SITE), good_token(stack, "ghost", "/uninstalled"),
                        "/uninstalled")
    assert resp.status_code == 204
    assert await count_rows(engine, tenants) == 0


async def test_disable_and_enable_with_the_tenant_secret(stack, engine):
    assert post_install(stack, install_body("client-a", SECRET, SITE), good_token(stack, "client-a")).status_code == 204

    issued = iter(range(int(time.time()) + 1, int(time.time()) + 10))  # each toggle a second later

    def toggle(event: str, secret: str = SECRET) -> int:
        url = stack["app"] + f"/{event}"
        token = request_token(secret, iss="client-a", qsh=qsh_of("POST", url), iat=next(issued))
        return httpx.post(url, json={"clientKey": "client-a", "eventType": event},
                          headers={"Authorization": f"JWT {token}"}).status_code

    panel = stack["app"] + "/panel/wbs?issueKey=ABC-1"
    panel_get = lambda: httpx.get(panel + "&jwt=" + request_token(SECRET, iss="client-a", qsh=qsh_of("GET", panel)))  # noqa: E731
    assert toggle("disabled", "w" * 64) == 401  # wrong secret: nothing changes
    assert panel_get().status_code == 200
    assert toggle("disabled") == 204
    assert panel_get().status_code == 403
    assert toggle("enabled") == 204
    assert panel_get().status_code == 200
    async with engine.connect() as conn:
        events = (await conn.execute(sa.select(lifecycle_events.c.event).order_by(lifecycle_events.c.id))).scalars().all()
    assert events == ["installed", "disabled", "enabled"]
