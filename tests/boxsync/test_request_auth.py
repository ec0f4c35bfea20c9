"""Verifying Jira's requests: iframe pages (computed qsh), JSON routes (context qsh), webhooks."""
from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest
import sqlalchemy as sa

from boxsync.connect.jwt import session_token
from boxsync.sync.tables import webhook_inbox
from tests.boxsync.connectkit import (
    APP_KEY, boxsync_server, install_body, install_token, key_server, qsh_of, request_token, unsigned_token,
)
from tests.conftest import count_rows

SECRET_A, SECRET_B = "a" * 64, "b" * 64
SITE_A, SITE_B = "http://127.0.0.1:2990", "http://127.0.0.1:2991"


@pytest.fixture
def app(database_url):
    """BoxSync with two sites installed through the real signed-install path."""
    with key_server() as keys, boxsync_server(database_url, keys.url) as url:
        kid, key = keys.new_key()
        for client, secret, site in (("site-a", SECRET_A, SITE_A), ("site-b", SECRET_B, SITE_B)):
            token = install_token(key, kid, iss=client, aud=url, qsh=qsh_of("POST", "/installed"))
            resp = httpx.post(url + "/installed", json=install_body(client, secret, site),
                              headers={"Authorization": f"JWT {token}"})
            assert resp.status_code == 204, resp.text
        yield url


def panel_url(app: str, key: str = "ABC-1") -> str:
    return (f"{app}/panel/wbs?issueKey={key}&issueId=10001&projectKey=ABC&projectId=10000&lic=none&cp="
            f"&xdm_e=http%3A%2F%2F127.0.0.1%3A2990&xdm_c=channel-wbs-panel&cv=1001.0.0-SNAPSHOT")


def test_panel_with_a_good_token_renders(app):
    url = panel_url(app)
    resp = httpx.get(url + "&jwt=" + request_token(SECRET_A, iss="site-a", qsh=qsh_of("GET", url)))
    assert resp.status_code == 200
    assert "ABC-1" in resp.text and "is not in any Box yet" in resp.text
    policy = dict(d.strip().split(" ", 1) for d in resp.headers["content-security-policy"].split(";"))
    assert policy["frame-ancestors"] == f"'self' {SITE_A}"
    assert resp.headers["cache-control"] == "no-store"


def test_panel_accepts_the_token_in_the_authorization_header(app):
    url = panel_url(app)
    token = request_token(SECRET_A, iss="site-a", qsh=qsh_of("GET", url))
    assert httpx.get(url, headers={"Authorization": f"JWT {token}"}).status_code == 200


def _tamper(token: str) -> str:
    head, body, sig = token.split(".")
    import base64
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "557058:mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{head}.{forged}.{sig}"


def test_panel_refuses_bad_tokens(app, caplog):
    url = panel_url(app)
    q = qsh_of("GET", url)
    now = int(time.time())
    bad = {
        "tampered": _tamper(request_token(SECRET_A, iss="site-a", qsh=q)),
        "expired": request_token(SECRET_A, iss="site-a", qsh=q, iat=now - 600, lifetime=180),
        "issued in the future": request_token(SECRET_A, iss="site-a", qsh=q, iat=now + 600),
        "alg none": unsigned_token({"iss": "site-a", "qsh": q, "iat": now, "exp": now + 180}),
        "unknown iss": request_token(SECRET_A, iss="site-zzz", qsh=q),
        "context-qsh": request_token(SECRET_A, iss="site-a", qsh="context-qsh"),
        "qsh of another URL": request_token(SECRET_A, iss="site-a", qsh=qsh_of("GET", panel_url(app, "ABC-2"))),
        "app session token": session_token(APP_KEY, "site-a", SECRET_A, "557058:alice"),
        "other tenant's secret": request_token(SECRET_B, iss="site-a", qsh=q),
        "no exp": jwt.encode({"iss": "site-a", "qsh": q, "iat": now}, SECRET_A, algorithm="HS256"),
        "rs256": jwt.encode({"iss": "site-a", "qsh": q, "iat": now, "exp": now + 60},
                            _rsa_key(), algorithm="RS256"),
    }
    for name, token in bad.items():
        resp = httpx.get(url + "&jwt=" + token, headers={"Accept": "text/html"})
        assert resp.status_code == 401, f"{name}: {resp.status_code}"
        assert token not in resp.text and "is not in any Box" not in resp.text, name
    assert httpx.get(url).status_code == 401  # no token at all
    # The log (the server runs in this process) says why, and never carries a token.
    assert "refused GET /panel/wbs: qsh mismatch" in caplog.text
    assert "refused GET /panel/wbs: token expired" in caplog.text
    assert "refused GET /panel/wbs: algorithm 'none' refused" in caplog.text
    assert "unknown installation 'site-zzz'" in caplog.text
    for token in bad.values():
        assert token not in caplog.text


def _rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_context_routes_refuse_request_tokens_and_forgeries(app):
    """Accepted context and session tokens are shown end to end in test_e2e_jirasim (the admin
    route asks a real Jira); here, every token that must not pass is refused before that."""
    url = app + "/api/admin/overview"
    refused = {
        "computed qsh": request_token(SECRET_A, iss="site-a", qsh=qsh_of("GET", url)),
        "expired session": session_token(APP_KEY, "site-a", SECRET_A, "557058:alice", seconds=-120),
        # Claiming to be B while holding only A's secret, for Jira tokens and session tokens alike.
        "iss B, secret A": request_token(SECRET_A, iss="site-b", qsh="context-qsh"),
        "session for B, secret A": session_token(APP_KEY, "site-b", SECRET_A, "557058:alice"),
        "session without aud": jwt.encode({"iss": APP_KEY, "qsh": "context-qsh", "iat": int(time.time()),
                                           "exp": int(time.time()) + 60}, SECRET_A, algorithm="HS256"),
    }
    for name, token in refused.items():
        resp = httpx.get(url, headers={"Authorization": f"JWT {token}"})
        assert resp.status_code == 401, name
        assert "site" not in resp.json(), name


def _deliver(app: str, secret: str, iss: str, body: dict | bytes, identifier: str | None = "wh-1",
             qsh: str | None = None) -> httpx.Response:
    url = app + "/webhooks/jira"
    token = request_token(secret, iss=iss, qsh=qsh or qsh_of("POST", url), sub=None)
    headers = {"Authorization": f"JWT {token}", "Content-Type": "application/json"}
    if identifier:
        headers["X-Atlassian-Webhook-Identifier"] = identifier
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers=headers)


ISSUE_UPDATED = {"timestamp": 1700000000000, "webhookEvent": "jira:issue_updated",
                 "issue_event_type_name": "issue_generic", "issue": {"id": "10001", "key": "ABC-1", "fields": {}},
                 "changelog": {"id": "5", "items": []}}


async def test_webhooks_are_stored_once_per_identifier(app, engine):
    assert _deliver(app, SECRET_A, "site-a", ISSUE_UPDATED).status_code == 204
    assert _deliver(app, SECRET_A, "site-a", ISSUE_UPDATED).status_code == 204  # Jira's retry
    assert _deliver(app, SECRET_B, "site-b", ISSUE_UPDATED).status_code == 204  # same id, other site
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(webhook_inbox.c.identifier, webhook_inbox.c.issue_id))).all()
    assert sorted(rows) == [("wh-1", "10001"), ("wh-1", "10001")]
    assert await count_rows(engine, webhook_inbox) == 2


async def test_unverified_webhooks_change_nothing(app, engine):
    # Only what can never succeed is refused; verified but odd bodies are stored as stubs
    # (tests/boxsync/test_webhook_stubs.py).
    assert _deliver(app, SECRET_A, "site-a", ISSUE_UPDATED, qsh="context-qsh").status_code == 401
    assert _deliver(app, SECRET_B, "site-a", ISSUE_UPDATED).status_code == 401
    assert await count_rows(engine, webhook_inbox) == 0


async def test_webhook_without_identifier_gets_a_stable_derived_one(app, engine):
    link = {"timestamp": 1700000000001, "webhookEvent": "issuelink_created",
            "issueLink": {"id": 10656, "sourceIssueId": 11442, "destinationIssueId": 11961}}
    assert _deliver(app, SECRET_A, "site-a", link, identifier=None).status_code == 204
    assert _deliver(app, SECRET_A, "site-a", link, identifier=None).status_code == 204
    assert await count_rows(engine, webhook_inbox) == 1


def test_boxes_page_renders_for_its_own_tenant(app):
    url = f"{app}/boxes?lic=none"
    resp = httpx.get(url + "&jwt=" + request_token(SECRET_B, iss="site-b", qsh=qsh_of("GET", url)))
    assert resp.status_code == 200 and f"There are no Boxes on {SITE_B}" in resp.text
