"""Storing webhook deliveries: verify, persist, answer. Processing happens elsewhere, later.

Jira retries on 5xx and connection errors and may deliver twice or out of order, so storing is
idempotent on the delivery identifier, and ordering is left to the worker (Jira's `timestamp`).

Any other 4xx is final for Jira: the change would be lost. So whatever a verified sender posts is
stored. A body we cannot keep or do not understand (too large, not JSON, an event we have no
handler for) is stored as a stub: the event name and ids we could read from its first bytes, and
`stub_reason`, so that a worker re-reads the current state from Jira instead.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from boxsync.connect.tenants import now
from boxsync.sync.tables import webhook_inbox
from boxsync.tenancy import Scope

KNOWN_EVENTS = frozenset({
    "jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "issuelink_created", "issuelink_deleted",
})
UNKNOWN_EVENT = "unknown"
# A stub's event and ids are read from this many leading bytes: Jira writes `timestamp`,
# `webhookEvent`, then the issue (id first) or the issueLink (id first) before any large field.
STUB_PREFIX = 64 * 1024
_EVENT = re.compile(rb'"webhookEvent"\s*:\s*"([A-Za-z0-9_:.\-]{1,64})"')
_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*(\d{1,15})\b')
_ISSUE_ID = re.compile(rb'"issue"\s*:\s*\{\s*"id"\s*:\s*"?(\d{1,20})\b')
_LINK_ID = re.compile(rb'"issueLink"\s*:\s*\{\s*"id"\s*:\s*"?(\d{1,20})\b')


class BadDelivery(ValueError):
    """Why a verified body is only stored as a stub; `reason` is the short code kept with it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    identifier: str
    event: str
    issue_id: str | None
    timestamp: int | None
    retry: int
    payload: dict[str, Any]
    stub_reason: str | None = None


def _retry(header: str | None) -> int:
    return int(header) if header and header.isdigit() and len(header) < 6 else 0


def parse_delivery(body: bytes, identifier: str | None, retry: str | None) -> Delivery:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise BadDelivery("invalid_json", "the body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise BadDelivery("invalid_json", "the body must be a JSON object")
    event = payload.get("webhookEvent")
    if event not in KNOWN_EVENTS:
        raise BadDelivery("unknown_event", f"unsupported webhookEvent {str(event)[:64]!r}")
    issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else {}
    issue_id = issue.get("id")
    timestamp = payload.get("timestamp") if isinstance(payload.get("timestamp"), int) else None
    if not identifier:
        # Older deliveries lack the header: derive a stable key from what identifies the change.
        link = payload.get("issueLink") if isinstance(payload.get("issueLink"), dict) else {}
        basis = f"{event}|{timestamp}|{issue_id}|{link.get('id')}|{(payload.get('changelog') or {}).get('id')}"
        identifier = "sha256:" + hashlib.sha256(basis.encode()).hexdigest()
    return Delivery(
        identifier=identifier[:255],
        event=event,
        issue_id=str(issue_id) if issue_id is not None else None,
        timestamp=timestamp,
        retry=_retry(retry),
        payload=payload,
    )


def stub_delivery(prefix: bytes, size: int, identifier: str | None, retry: str | None, reason: str) -> Delivery:
    """What can be read cheaply from the first bytes of a body we do not store in full."""
    head = prefix[:STUB_PREFIX]

    def find(pattern: re.Pattern[bytes]) -> str | None:
        match = pattern.search(head)
        return match.group(1).decode("ascii") if match else None

    timestamp, issue_id, link_id = find(_TIMESTAMP), find(_ISSUE_ID), find(_LINK_ID)
    if not identifier:
        identifier = "sha256:" + hashlib.sha256(b"stub|%d|" % size + head).hexdigest()
    known: dict[str, Any] = {"bytes": size}
    if issue_id:
        known["issueId"] = issue_id
    if link_id:
        known["issueLinkId"] = int(link_id)
    return Delivery(
        identifier=identifier[:255],
        event=find(_EVENT) or UNKNOWN_EVENT,
        issue_id=issue_id,
        timestamp=int(timestamp) if timestamp else None,
        retry=_retry(retry),
        payload=known,
        stub_reason=reason,
    )


async def store(conn: AsyncConnection, tenant_id: int, delivery: Delivery) -> bool:
    """Insert the delivery; False when this identifier was already stored (a retry or duplicate)."""
    stmt = Scope(tenant_id).insert(webhook_inbox, upsert=conn.dialect.name).values(
        identifier=delivery.identifier,
        event=delivery.event,
        issue_id=delivery.issue_id,
        jira_timestamp=delivery.timestamp,
        retry=delivery.retry,
        payload=json.dumps(delivery.payload, separators=(",", ":")),
        received_at=now(),
        stub_reason=delivery.stub_reason,
    ).on_conflict_do_nothing(index_elements=["tenant_id", "identifier"])
    result = await conn.execute(stmt)
    return result.rowcount == 1


async def counts(conn: AsyncConnection, tenant_id: int) -> dict[str, int]:
    rows = await conn.execute(
        Scope(tenant_id).select(webhook_inbox, webhook_inbox.c.event, sa.func.count())
        .group_by(webhook_inbox.c.event)
    )
    return {event: n for event, n in rows}
