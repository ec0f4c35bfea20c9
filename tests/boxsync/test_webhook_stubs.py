"""Nothing Jira sends is lost: every verified webhook is stored, whatever BoxSync believes about the
installation, and a body we cannot keep in full is stored as a stub to re-read from Jira."""
from __future__ import annotations

import json
import time

import httpx
import pytest
import sqlalchemy as sa

from boxsync.connect.tables import tenants
from boxsync.sync.tables import webhook_inbox
from tests.boxsync.connectkit import (
    boxsync_server, install_body, install_token, key_server, qsh_of, request_token,
)
from tests.conftest import count_rows

SECRET = "a" * 64
SITE = "http://127.0.0.1:2990"
ISSUE_UPDATED = {"timestamp": 1700000000000, "webhookEvent": "jira:issue_updated",
                 "issue_event_type_name": "issue_generic", "issue": {"id": "10001", "key": "ABC-1", "fields": {}},
                 "changelog": {"id": "5", "items": []}}


@pytest.fixture
def app(database_url):
    with key_server() as keys, boxsync_server(database_url, keys.url) as url:
        kid, key = keys.new_key()
        token = install_token(key, kid, iss="site-a", aud=url, qsh=qsh_of("POST", "/installed"),
                              iat=int(time.time()) - 10)
        resp = httpx.post(url + "/installed", json=install_body("site-a", SECRET, SITE),
                          headers={"Authorization": f"JWT {token}"})
        assert resp.status_code == 204, resp.text
        yield {"url": url, "key": key, "kid": kid}


def deliver(app, content, identifier: str | None = "wh-1", secret: str = SECRET) -> httpx.Response:
    url = app["url"] + "/webhooks/jira"
    token = request_token(secret, iss="site-a", qsh=qsh_of("POST", url), sub=None)
    headers = {"Authorization": f"JWT {token}", "Content-Type": "application/json"}
    if identifier:
        headers["X-Atlassian-Webhook-Identifier"] = identifier
    if isinstance(content, dict):
        content = json.dumps(content).encode()
    return httpx.post(url, content=content, headers=headers, timeout=30)


async def inbox_rows(engine) -> list[sa.Row]:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(webhook_inbox).order_by(webhook_inbox.c.id))).all()


def huge_issue_update() -> dict:
    return {**ISSUE_UPDATED, "issue": {"id": "10001", "key": "ABC-1",
                                       "fields": {"description": "x" * (6 * 1024 * 1024)}}}


async def test_an_oversized_webhook_is_stored_as_a_stub(app, engine):
    resp = deliver(app, huge_issue_update())
    assert resp.status_code == 204, resp.text
    [row] = await inbox_rows(engine)
    assert (row.event, row.issue_id, row.jira_timestamp, row.stub_reason) == (
        "jira:issue_updated", "10001", 1700000000000, "oversized")
    assert json.loads(row.payload)["bytes"] > 6 * 1024 * 1024 and "x" * 100 not in row.payload
    assert deliver(app, huge_issue_update()).status_code == 204  # Jira's retry: stored once
    assert await count_rows(engine, webhook_inbox) == 1


async def test_an_oversized_chunked_webhook_is_streamed_not_trusted_by_its_header(app, engine):
    body = json.dumps({"timestamp": 1700000000002, "webhookEvent": "issuelink_deleted",
                       "issueLink": {"id": 10656, "sourceIssueId": 11442, "destinationIssueId": 11961},
                       "padding": "y" * (6 * 1024 * 1024)}).encode()

    def chunks():  # no Content-Length: the size is only known by reading
        for start in range(0, len(body), 256 * 1024):
            yield body[start:start + 256 * 1024]

    resp = deliver(app, chunks(), identifier=None)
    assert resp.status_code == 204, resp.text
    [row] = await inbox_rows(engine)
    assert (row.event, row.issue_id, row.stub_reason) == ("issuelink_deleted", None, "oversized")
    assert json.loads(row.payload)["issueLinkId"] == 10656 and row.identifier.startswith("sha256:")


@pytest.mark.parametrize("content,event,reason", [
    (b"{oops", "unknown", "invalid_json"),
    (b"[1, 2]", "unknown", "invalid_json"),
    (b"", "unknown", "invalid_json"),
    ({"timestamp": 1700000000003, "webhookEvent": "board_created", "board": {"id": 7}}, "board_created",
     "unknown_event"),
    ({"timestamp": 1700000000004, "webhookEvent": "comment_created",
      "issue": {"id": "10002", "key": "ABC-2"}, "comment": {"id": "1"}}, "comment_created", "unknown_event"),
])
async def test_verified_bodies_we_do_not_understand_are_stubs(app, engine, content, event, reason):
    resp = deliver(app, content)
    assert resp.status_code == 204, resp.text
    [row] = await inbox_rows(engine)
    assert (row.event, row.stub_reason) == (event, reason)
    assert row.issue_id == ("10002" if event == "comment_created" else None)


async def test_a_full_delivery_is_not_a_stub(app, engine):
    assert deliver(app, ISSUE_UPDATED).status_code == 204
    [row] = await inbox_rows(engine)
    assert row.stub_reason is None and json.loads(row.payload) == ISSUE_UPDATED


def _toggle(app, event: str, iat: int) -> int:
    url = app["url"] + f"/{event}"
    token = request_token(SECRET, iss="site-a", qsh=qsh_of("POST", url), iat=iat)
    return httpx.post(url, json={"clientKey": "site-a"}, headers={"Authorization": f"JWT {token}"}).status_code


async def test_webhooks_reach_a_site_boxsync_believes_disabled(app, engine):
    # BoxSync's flag can be stale (a late or lost `enabled`); Jira only sends to enabled apps.
    assert _toggle(app, "disabled", int(time.time())) == 204
    assert deliver(app, ISSUE_UPDATED).status_code == 204
    [row] = await inbox_rows(engine)
    assert row.event == "jira:issue_updated" and row.stub_reason is None


async def test_webhooks_reach_a_site_boxsync_believes_uninstalled(app, engine):
    token = install_token(app["key"], app["kid"], iss="site-a", aud=app["url"], qsh=qsh_of("POST", "/uninstalled"))
    resp = httpx.post(app["url"] + "/uninstalled", json=install_body("site-a", SECRET, SITE),
                      headers={"Authorization": f"JWT {token}"})
    assert resp.status_code == 204
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(tenants.c.installed))).scalar_one() is False
    assert deliver(app, ISSUE_UPDATED).status_code == 204
    assert await count_rows(engine, webhook_inbox) == 1
    # ...while a bad signature still can never succeed, so it is refused.
    assert deliver(app, ISSUE_UPDATED, identifier="wh-2", secret="w" * 64).status_code == 401
    assert await count_rows(engine, webhook_inbox) == 1
