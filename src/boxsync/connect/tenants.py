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
from boxsync.connect.tables import lifecycle_events, tenants
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


async def save_installation(conn: AsyncConnection, inst: Installation, secret_key: bytes) -> Tenant:
    """Insert or replace (on reinstall) the tenant in one statement: secret and URLs are replaced,
    the row id (and so every row the tenant owns) stays."""
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
        enabled=True,
        updated_at=at,
        uninstalled_at=None,
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(tenants).values(installed_at=at, **values)
    stmt = stmt.on_conflict_do_update(index_elements=[tenants.c.client_key], set_=values)
    await conn.execute(stmt)
    await tenant_cache.announce(conn, inst.client_key)
    tenant = await by_client_key(conn, inst.client_key, secret_key)
    assert tenant is not None
    await record_event(conn, tenant, "installed")
    return tenant


async def mark_uninstalled(conn: AsyncConnection, client_key: str, secret_key: bytes) -> Tenant | None:
    """Keep the data (a reinstall brings it back); only flag the installation as gone."""
    tenant = await by_client_key(conn, client_key, secret_key)
    if tenant is None:
        return None
    at = now()
    await conn.execute(
        tenants.update()
        .where(tenants.c.id == tenant.id)
        .values(installed=False, enabled=False, uninstalled_at=at, updated_at=at)
    )
    await tenant_cache.announce(conn, client_key)
    await record_event(conn, tenant, "uninstalled")
    return tenant


async def set_enabled(conn: AsyncConnection, tenant: Tenant, enabled: bool, account_id: str | None) -> None:
    await conn.execute(
        tenants.update().where(tenants.c.id == tenant.id).values(enabled=enabled, updated_at=now())
    )
    await tenant_cache.announce(conn, tenant.client_key)
    await record_event(conn, tenant, "enabled" if enabled else "disabled", account_id)


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
