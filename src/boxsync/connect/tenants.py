"""Tenants: one row per Jira site that installed BoxSync, keyed by its clientKey.

Shared secrets are stored encrypted (boxsync.crypto) with the clientKey bound in, and are only
decrypted into a `Tenant` value held in memory for the request that needs it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from boxsync import crypto
from boxsync.connect import tenant_cache
from boxsync.connect.tables import install_tokens, lifecycle_events, tenants
from boxsync.tenancy import Scope


@dataclass(frozen=True)
class Tenant:
    id: int
    client_key: str
    base_url: str
    display_url: str | None
    product_type: str
    oauth_client_id: str | None
    installed: bool
    enabled: bool
    installed_at: dt.datetime
    updated_at: dt.datetime
    shared_secret: str = field(repr=False)

    @property
    def active(self) -> bool:
        return self.installed and self.enabled


@dataclass(frozen=True)
class Installation:
    """The validated body of an `installed` lifecycle callback."""
    client_key: str
    shared_secret: str = field(repr=False)
    base_url: str = ""
    display_url: str | None = None
    product_type: str = "jira"
    oauth_client_id: str | None = None
    installation_id: str | None = None
    server_version: str | None = None
    plugins_version: str | None = None
    description: str | None = None


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _tenant(row: Any, secret_key: bytes) -> Tenant:
    return Tenant(
        id=row.id,
        client_key=row.client_key,
        base_url=row.base_url,
        display_url=row.display_url,
        product_type=row.product_type,
        oauth_client_id=row.oauth_client_id,
        installed=row.installed,
        enabled=row.enabled,
        installed_at=row.installed_at,
        updated_at=row.updated_at,
        shared_secret=crypto.decrypt(secret_key, row.shared_secret, row.client_key),
    )


async def by_client_key(conn: AsyncConnection, client_key: str, secret_key: bytes) -> Tenant | None:
    row = (await conn.execute(sa.select(tenants).where(tenants.c.client_key == client_key))).first()
    return _tenant(row, secret_key) if row else None


# --- lifecycle: ordered by Jira's `iat`, not by arrival ------------------------------------------
#
# Jira sends `installed` synchronously but `enabled`, `disabled` and `uninstalled` asynchronously:
# they can arrive late, twice or out of order (connect-protocol.md §2.1). Every lifecycle token
# carries `iat` (whole seconds, Jira's clock), so each tenant keeps the iat and name of the newest
# lifecycle event applied (`lifecycle_iat`, `lifecycle_event`) and of the last accepted install
# (`install_iat`). An event is applied only if it is newer than that state, compared in one
# conditional UPDATE so that two callbacks racing each other (disabled and uninstalled ~5 ms apart)
# cannot both read the old state. NULL state (a row from before this existed) is older than all.
#
# `iat` has one-second resolution, so same-second events need a rule. Within one second we order
# by Jira's own sequences: an install is followed by `enabled`, an uninstall is preceded by
# `disabled` — RANK below. When two orders are possible, the rule keeps the tenant usable rather
# than locking it out, since a wrong lock-out is an outage while a wrongly kept flag does no harm
# (Jira stops calling an app it uninstalled, and does not render a disabled app's modules).
#
#   event        iat t vs state (S, e) = (lifecycle_iat, lifecycle_event), I = install_iat   result
#   installed    token seen before (same token, any body)                        401, nothing changed
#   installed    t < S  (older than an event already applied; S >= I)             401, nothing changed
#   installed    t >= S, token never seen (also t == S right after an uninstall)   applied: secret and
#                URLs replaced; a new or uninstalled tenant becomes installed and enabled; an installed
#                one keeps its enabled flag (a reinstall does not undo an admin's disable: Jira sends
#                `enabled` after an install when the app really is enabled, and that event decides)
#   uninstalled  t <= I (issued before the last install, or in the same second)   ignored, 204
#   uninstalled  t > I and (t, RANK) <= (S, RANK[e])                               ignored, 204
#   uninstalled  t > I and (t, RANK) > (S, RANK[e])                                applied
#   enabled /    (t, RANK) <= (S, RANK[e]): older, or the same second and not later
#   disabled       in Jira's sequence (so `disabled` wins a same-second tie with `enabled`,
#                  and nothing follows `uninstalled` in its second)                ignored, 204
#   enabled /    (t, RANK) > (S, RANK[e])                                          applied
#   disabled
#
# Ignored events change nothing and are not recorded in the history; they are logged. The price of
# the tie rules: a real install-then-uninstall, or disable-then-enable, within one second leaves the
# tenant installed, or disabled, until Jira's next lifecycle event. Each row is a test in
# tests/boxsync/test_lifecycle_order.py.

RANK = {"installed": 0, "enabled": 1, "disabled": 2, "uninstalled": 3}


class InstallRefused(Exception):
    """The install token was already used, or is older than what this tenant already applied."""


def _newer_than_state(iat: int, event: str) -> sa.ColumnElement[bool]:
    """SQL: (iat, RANK[event]) > (lifecycle_iat, RANK[lifecycle_event]); NULL state is older."""
    rank = sa.case(RANK, value=tenants.c.lifecycle_event, else_=-1)
    return sa.or_(
        tenants.c.lifecycle_iat.is_(None),
        tenants.c.lifecycle_iat < iat,
        sa.and_(tenants.c.lifecycle_iat == iat, rank < RANK[event]),
    )


def _dialect(conn: AsyncConnection):  # noqa: ANN202 - the postgresql or sqlite module
    return postgresql if conn.dialect.name == "postgresql" else sqlite


async def accept_install_token_once(conn: AsyncConnection, digest: str, usable_until: dt.datetime) -> bool:
    """Record an install token as used; False if it already was. Call inside the install's
    transaction: if the install is then refused or fails, the token is not spent either."""
    # Tokens past exp (+ leeway) can no longer verify, so their rows guard nothing.
    await conn.execute(sa.delete(install_tokens).where(install_tokens.c.expires_at < now()))
    stmt = _dialect(conn).insert(install_tokens).values(digest=digest, expires_at=usable_until)
    # The primary key arbitrates: of two concurrent uses of one token, exactly one inserts.
    result = await conn.execute(stmt.on_conflict_do_nothing(index_elements=[install_tokens.c.digest]))
    return result.rowcount == 1


async def save_installation(conn: AsyncConnection, inst: Installation, secret_key: bytes, *, iat: int) -> Tenant:
    """Insert or replace (on reinstall) the tenant in one statement: secret and URLs are replaced,
    the row id (and so every row the tenant owns) stays. Raises InstallRefused when the tenant has
    already applied a newer lifecycle event (see the table above)."""
    at = now()
    values = dict(
        client_key=inst.client_key,
        base_url=inst.base_url,
        display_url=inst.display_url,
        product_type=inst.product_type,
        shared_secret=crypto.encrypt(secret_key, inst.shared_secret, inst.client_key),
        oauth_client_id=inst.oauth_client_id,
        installation_id=inst.installation_id,
        server_version=inst.server_version,
        plugins_version=inst.plugins_version,
        description=inst.description,
        installed=True,
        updated_at=at,
        uninstalled_at=None,
        lifecycle_iat=iat,
        lifecycle_event="installed",
        install_iat=iat,
    )
    stmt = _dialect(conn).insert(tenants).values(installed_at=at, enabled=True, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[tenants.c.client_key],
        # SET sees the row as it was: still installed keeps its flag, a returning site is enabled.
        set_={**values, "enabled": sa.case((tenants.c.installed, tenants.c.enabled), else_=sa.true())},
        where=sa.or_(tenants.c.lifecycle_iat.is_(None), tenants.c.lifecycle_iat <= iat),
    )
    if (await conn.execute(stmt)).rowcount != 1:
        raise InstallRefused("the install token is older than this site's last lifecycle event")
    await tenant_cache.announce(conn, inst.client_key)
    tenant = await by_client_key(conn, inst.client_key, secret_key)
    assert tenant is not None
    await record_event(conn, tenant, "installed")
    return tenant


async def mark_uninstalled(conn: AsyncConnection, client_key: str, secret_key: bytes, *,
                           iat: int) -> tuple[Tenant | None, bool]:
    """Keep the data (a reinstall brings it back); only flag the installation as gone.
    Returns the tenant (None if unknown) and whether the uninstall was applied."""
    tenant = await by_client_key(conn, client_key, secret_key)
    if tenant is None:
        return None, False
    at = now()
    result = await conn.execute(
        tenants.update()
        .where(tenants.c.id == tenant.id, _newer_than_state(iat, "uninstalled"),
               sa.or_(tenants.c.install_iat.is_(None), tenants.c.install_iat < iat))
        .values(installed=False, enabled=False, uninstalled_at=at, updated_at=at,
                lifecycle_iat=iat, lifecycle_event="uninstalled")
    )
    if result.rowcount != 1:
        return tenant, False
    await tenant_cache.announce(conn, client_key)
    await record_event(conn, tenant, "uninstalled")
    return tenant, True


async def set_enabled(conn: AsyncConnection, tenant: Tenant, enabled: bool, account_id: str | None, *,
                      iat: int) -> bool:
    """Apply an `enabled`/`disabled` callback issued at `iat`; False when it was stale (ignored)."""
    event = "enabled" if enabled else "disabled"
    result = await conn.execute(
        tenants.update()
        .where(tenants.c.id == tenant.id, _newer_than_state(iat, event))
        .values(enabled=enabled, updated_at=now(), lifecycle_iat=iat, lifecycle_event=event)
    )
    if result.rowcount != 1:
        return False
    await tenant_cache.announce(conn, tenant.client_key)
    await record_event(conn, tenant, event, account_id)
    return True


async def record_event(conn: AsyncConnection, tenant: Tenant, event: str, account_id: str | None = None) -> None:
    await conn.execute(
        Scope(tenant.id).insert(lifecycle_events).values(
            event=event, base_url=tenant.base_url, account_id=account_id, at=now()
        )
    )


async def history(conn: AsyncConnection, tenant_id: int, limit: int = 50) -> list[dict]:
    rows = await conn.execute(
        Scope(tenant_id).select(lifecycle_events, lifecycle_events.c.event, lifecycle_events.c.base_url,
                                lifecycle_events.c.account_id, lifecycle_events.c.at)
        .order_by(lifecycle_events.c.at.desc(), lifecycle_events.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]
