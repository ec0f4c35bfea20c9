"""What the webhook inbox stores, and that its read helpers and the lifecycle history see one tenant.

Deliveries go through POST /webhooks/jira over real HTTP; the stored row is read back with the
test's cross-tenant inspector. The read helpers (inbox.counts, tenants.history) are called on an
engine with the tenancy guard, as the app calls them.
"""
from __future__ import annotations

import datetime as dt
import json
import time

import httpx
import pytest
import sqlalchemy as sa

from boxsync import db
from boxsync.connect import tenants as tenant_store
from boxsync.connect.tables import tenants
from boxsync.sync import inbox
from boxsync.sync.tables import webhook_inbox
from tests.boxsync.connectkit import (
    boxsync_server, install_body, install_token, key_server, qsh_of, request_token,
)

SITES = {"site-a": ("a" * 64, "http://127.0.0.1:2990"), "site-b": ("b" * 64, "http://127.0.0.1:2991")}

UPDATED = {"timestamp": 1700000000123, "webhookEvent": "jira:issue_updated",
           "issue_event_type_name": "issue_generic", "issue": {"id": "10001", "key": "ABC-1", "fields": {}},
           "changelog": {"id": "77", "items": [{"field": "summary", "fromString": "a", "toString": "b"}]},
           "note": "ünïcode ✓"}


@pytest.fixture
def app(database_url):
    with key_server() as keys, boxsync_server(database_url, keys.url) as url:
        kid, key = keys.new_key()
        for client, (secret, site) in SITES.items():
            token = install_token(key, kid, iss=client, aud=url, qsh=qsh_of("POST", "/installed"))
            resp = httpx.post(url + "/installed", json=install_body(client, secret, site),
                              headers={"Authorization": f"JWT {token}"})
            assert resp.status_code == 204, resp.text
        yield url


def deliver(app: str, client: str, body: dict, **headers: str) -> httpx.Response:
    url = app + "/webhooks/jira"
    token = request_token(SITES[client][0], iss=client, qsh=qsh_of("POST", url), sub=None)
    return httpx.post(url, content=json.dumps(body).encode(),
                      headers={"Authorization": f"JWT {token}", "Content-Type": "application/json", **headers})


async def rows(engine) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(webhook_inbox).order_by(webhook_inbox.c.id))).all()


async def tenant_ids(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        return dict((await conn.execute(sa.select(tenants.c.client_key, tenants.c.id))).all())


async def test_a_delivery_is_stored_whole(app, engine):
    resp = deliver(app, "site-a", UPDATED, **{"X-Atlassian-Webhook-Identifier": "wh-42",
                                             "X-Atlassian-Webhook-Retry": "2"})
    assert resp.status_code == 204
    [row] = await rows(engine)
    assert row.tenant_id == (await tenant_ids(engine))["site-a"]
    assert (row.identifier, row.event, row.issue_id, row.jira_timestamp, row.retry) == (
        "wh-42", "jira:issue_updated", "10001", 1700000000123, 2)
    assert json.loads(row.payload) == UPDATED
    assert row.processed_at is None
    assert abs(row.received_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)


@pytest.mark.parametrize("retry, stored", [(None, 0), ("0", 0), ("7", 7), ("soon", 0), ("-1", 0)])
async def test_the_retry_header_is_stored_as_a_count(app, engine, retry, stored):
    headers = {"X-Atlassian-Webhook-Identifier": "wh-r"}
    if retry is not None:
        headers["X-Atlassian-Webhook-Retry"] = retry
    assert deliver(app, "site-a", UPDATED, **headers).status_code == 204
    [row] = await rows(engine)
    assert row.retry == stored


async def test_a_delivery_without_issue_or_timestamp_is_stored_with_nulls(app, engine):
    link = {"webhookEvent": "issuelink_created", "timestamp": "yesterday",
            "issueLink": {"id": 10656, "sourceIssueId": 11442, "destinationIssueId": 11961}}
    assert deliver(app, "site-a", link, **{"X-Atlassian-Webhook-Identifier": "wh-link"}).status_code == 204
    [row] = await rows(engine)
    assert (row.event, row.issue_id, row.jira_timestamp) == ("issuelink_created", None, None)


async def test_an_overlong_identifier_is_cut_and_still_deduplicates(app, engine):
    long_id = "x" * 300
    for _ in range(2):
        assert deliver(app, "site-a", UPDATED, **{"X-Atlassian-Webhook-Identifier": long_id}).status_code == 204
    [row] = await rows(engine)
    assert row.identifier == "x" * 255


async def test_derived_identifiers_keep_different_changes_apart(app, engine):
    # Without the identifier header the key is derived from what identifies the change: two edits of
    # one issue in the same millisecond differ by their changelog id and must both be kept.
    second = {**UPDATED, "changelog": {"id": "78", "items": []}}
    other_issue = {**UPDATED, "issue": {"id": "10002", "key": "ABC-2", "fields": {}}}
    later = {**UPDATED, "timestamp": UPDATED["timestamp"] + 1}
    created = {**UPDATED, "webhookEvent": "jira:issue_created"}
    for body in (UPDATED, second, other_issue, later, created, UPDATED):
        assert deliver(app, "site-a", body).status_code == 204
    stored = await rows(engine)
    assert len(stored) == 5  # the repeated first one is a duplicate
    assert all(r.identifier.startswith("sha256:") and len(r.identifier) == 71 for r in stored)
    links = [{"webhookEvent": "issuelink_created", "timestamp": 1, "issueLink": {"id": n}} for n in (1, 2)]
    for body in links:
        assert deliver(app, "site-a", body).status_code == 204
    assert len(await rows(engine)) == 7


async def test_counts_and_history_are_per_tenant(app, engine, database_url):
    for client, identifiers in (("site-a", ["1", "2", "3"]), ("site-b", ["1"])):
        for identifier in identifiers:
            assert deliver(app, client, UPDATED, **{"X-Atlassian-Webhook-Identifier": identifier}).status_code == 204
    assert deliver(app, "site-b", {**UPDATED, "webhookEvent": "jira:issue_deleted"}).status_code == 204
    ids = await tenant_ids(engine)
    guarded = db.create_engine(database_url)
    try:
        async with guarded.connect() as conn:
            assert await inbox.counts(conn, ids["site-a"]) == {"jira:issue_updated": 3}
            assert await inbox.counts(conn, ids["site-b"]) == {"jira:issue_updated": 1, "jira:issue_deleted": 1}
            assert await inbox.counts(conn, 999_999) == {}
            tenant_a = await tenant_store.by_client_key(conn, "site-a", b"k" * 32)
        async with guarded.begin() as conn:
            issued = int(time.time())  # each lifecycle event newer than the last applied one
            await tenant_store.set_enabled(conn, tenant_a, False, "557058:admin", iat=issued + 1)
            await tenant_store.set_enabled(conn, tenant_a, True, None, iat=issued + 2)
        async with guarded.connect() as conn:
            history_a = await tenant_store.history(conn, ids["site-a"])
            history_b = await tenant_store.history(conn, ids["site-b"])
            last_two = await tenant_store.history(conn, ids["site-a"], limit=2)
    finally:
        await guarded.dispose()
    assert [e["event"] for e in history_a] == ["enabled", "disabled", "installed"]  # newest first
    assert [e["account_id"] for e in history_a] == [None, "557058:admin", None]
    assert {e["base_url"] for e in history_a} == {SITES["site-a"][1]}
    assert [e["event"] for e in history_b] == ["installed"] and history_b[0]["base_url"] == SITES["site-b"][1]
    assert last_two == history_a[:2]
    assert all(isinstance(e["at"], dt.datetime) for e in history_a)
