"""Tenant scoping by construction: statements on tenant-owned tables must come from a Scope."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from boxsync import db
from boxsync.connect.tables import lifecycle_events, tenants
from boxsync.connect.tenants import now
from boxsync.tenancy import CrossTenantQuery, Scope, check


def test_scope_statements_pass_the_check():
    scope = Scope(7)
    for stmt in (scope.select(lifecycle_events), scope.update(lifecycle_events).values(event="x"),
                 scope.delete(lifecycle_events), scope.insert(lifecycle_events).values(event="x"),
                 scope.insert(lifecycle_events, upsert="postgresql"),
                 scope.insert(lifecycle_events, upsert="sqlite")):
        check(stmt, stmt.get_execution_options())


@pytest.mark.parametrize("stmt", [
    sa.select(lifecycle_events),
    sa.select(lifecycle_events.c.event).where(lifecycle_events.c.tenant_id == 1),  # no Scope marker
    lifecycle_events.update().values(event="x"),
    lifecycle_events.delete(),
    lifecycle_events.insert().values(tenant_id=1, event="x"),
    sa.select(tenants.c.id).join_from(tenants, lifecycle_events),
], ids=["select", "hand-filtered", "update", "delete", "insert", "join"])
def test_unscoped_statements_are_refused(stmt):
    with pytest.raises(CrossTenantQuery):
        check(stmt, stmt.get_execution_options())


def test_a_joined_owned_table_must_be_filtered_too():
    other = lifecycle_events.alias("other")
    scope = Scope(1)
    # An alias is a FROM of its own: joined without its own tenant filter, it could read any tenant.
    joined = scope.select(lifecycle_events).join(other, other.c.id == lifecycle_events.c.id)
    with pytest.raises(CrossTenantQuery, match="not filtered by tenant"):
        check(joined, joined.get_execution_options())
    fixed = joined.where(scope.filter(other))
    check(fixed, fixed.get_execution_options())
    stmt = scope.select(lifecycle_events).where(lifecycle_events.c.tenant_id.is_not(None) | sa.true())
    check(stmt, stmt.get_execution_options())
    # Removing the scope's filter (a hand-built where on a scoped marker) is refused.
    bare = sa.select(lifecycle_events).execution_options(tenant_id=1)
    with pytest.raises(CrossTenantQuery, match="not filtered by tenant"):
        check(bare, bare.get_execution_options())


def test_scope_refuses_tables_that_are_not_tenant_owned():
    with pytest.raises(CrossTenantQuery):
        Scope(1).select(tenants)


async def test_the_engine_refuses_unscoped_statements(database_url):
    """The guard sits on every engine the app creates, on both backends, before SQL is sent."""
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as conn:
            with pytest.raises(CrossTenantQuery):
                await conn.execute(sa.select(lifecycle_events))
        async with engine.begin() as conn:
            tid = (await conn.execute(tenants.insert().values(
                client_key="k", base_url="http://x", product_type="jira", shared_secret="s",
                installed=True, enabled=True, installed_at=now(), updated_at=now()))).inserted_primary_key[0]
            await conn.execute(Scope(tid).insert(lifecycle_events).values(event="installed", base_url="u", at=now()))
            rows = (await conn.execute(Scope(tid).select(lifecycle_events))).all()
            assert len(rows) == 1 and rows[0].tenant_id == tid
            assert (await conn.execute(Scope(tid + 1).select(lifecycle_events))).all() == []
    finally:
        await engine.dispose()
