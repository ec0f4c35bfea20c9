"""Tenant isolation by construction: every tenant-owned table is keyed by (tenant_id, …), in the code's
metadata and in the migrated database, and its ids come from the application."""
from __future__ import annotations

import sqlalchemy as sa

from boxsync import db
from boxsync.connect.tables import lifecycle_events, tenants
from boxsync.connect.tenants import now
from boxsync.tables import metadata
from boxsync.tenancy import Scope, is_tenant_owned, owned_table


def _problems(table: sa.Table) -> list[str]:
    """Why `table` breaks the rule for tenant-owned tables (empty when it keeps it)."""
    problems = []
    if "tenant_owned" not in table.info:
        return [f"{table.name}: declare info={{'tenant_owned': True}} or {{'tenant_owned': False}}"]
    if not is_tenant_owned(table):
        return []
    key = [c.name for c in table.primary_key.columns]
    if key[:1] != ["tenant_id"] or len(key) < 2:
        problems.append(f"{table.name}: primary key {key} must be (tenant_id, …)")
    fks = [fk for fk in table.foreign_keys if fk.parent.name == "tenant_id"]
    if not any(fk.target_fullname == "tenants.id" and fk.ondelete == "CASCADE" for fk in fks):
        problems.append(f"{table.name}: tenant_id needs a foreign key to tenants.id ON DELETE CASCADE")
    for index in table.indexes:
        if [c.name for c in index.columns][:1] != ["tenant_id"]:
            problems.append(f"{table.name}: index {index.name} must start with tenant_id")
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and [c.name for c in constraint.columns][:1] != ["tenant_id"]:
            problems.append(f"{table.name}: unique constraint {constraint.name} must start with tenant_id")
    return problems


def test_every_table_is_declared_and_every_tenant_owned_one_keyed_by_tenant():
    problems = [p for table in metadata.sorted_tables for p in _problems(table)]
    assert problems == []
    assert {t.name for t in metadata.sorted_tables if is_tenant_owned(t)} >= {"lifecycle_events", "webhook_inbox"}
    assert tenants.info == {"tenant_owned": False}


def test_the_scan_catches_what_it_is_for():
    scratch = sa.MetaData()
    tenants.to_metadata(scratch)
    undeclared = sa.Table("notes", scratch, sa.Column("id", sa.Integer, primary_key=True))
    keyed_by_id = sa.Table("boxes", scratch, sa.Column("id", sa.Integer, primary_key=True),
                           sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE")),
                           info={"tenant_owned": True})
    loose_index = owned_table("links", scratch, sa.Column("id", sa.BigInteger), sa.Column("name", sa.String(9)),
                              sa.Index("ix_links_name", "name"), sa.UniqueConstraint("name", name="uq_links_name"))
    assert _problems(undeclared) == ["notes: declare info={'tenant_owned': True} or {'tenant_owned': False}"]
    assert _problems(keyed_by_id) == ["boxes: primary key ['id'] must be (tenant_id, …)"]
    assert _problems(loose_index) == ["links: index ix_links_name must start with tenant_id",
                                      "links: unique constraint uq_links_name must start with tenant_id"]
    good = owned_table("items", scratch, sa.Column("key", sa.String(32)), key=("key",))
    assert _problems(good) == [] and [c.name for c in good.primary_key.columns] == ["tenant_id", "key"]


async def test_the_database_keys_tenant_rows_by_tenant(engine):
    """What the migrations built, reflected, on both backends."""
    def reflect(sync_conn):
        insp = sa.inspect(sync_conn)
        return {t.name: (insp.get_pk_constraint(t.name)["constrained_columns"],
                         [ix["column_names"] for ix in insp.get_indexes(t.name)],
                         [uq["column_names"] for uq in insp.get_unique_constraints(t.name)])
                for t in metadata.sorted_tables if is_tenant_owned(t)}

    async with engine.connect() as conn:
        found = await conn.run_sync(reflect)
    declared = {t.name: [c.name for c in t.primary_key.columns] for t in metadata.sorted_tables}
    for name, (key, indexes, uniques) in found.items():
        assert key == declared[name] and key[0] == "tenant_id", name
        assert all(cols[0] == "tenant_id" for cols in indexes + uniques), (name, indexes, uniques)


def test_ids_are_positive_bigints_increasing_in_the_order_they_are_made():
    ids = [db.new_id() for _ in range(10_000)]
    assert ids == sorted(set(ids)) and 0 < ids[0] and ids[-1] < 2**63


async def test_rows_get_application_ids_in_insertion_order(database_url):
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as conn:
            tid = (await conn.execute(tenants.insert().values(
                client_key="ids", base_url="https://x.atlassian.net", product_type="jira", shared_secret="e",
                installed=True, enabled=True, installed_at=now(), updated_at=now()))).inserted_primary_key[0]
            for n in range(50):
                await conn.execute(Scope(tid).insert(lifecycle_events).values(event=f"e{n}", base_url="u", at=now()))
        async with engine.connect() as conn:
            events = (await conn.execute(Scope(tid).select(lifecycle_events, lifecycle_events.c.event)
                                         .order_by(lifecycle_events.c.id))).scalars().all()
        assert events == [f"e{n}" for n in range(50)]
    finally:
        await engine.dispose()


async def test_each_process_claims_its_own_id_node(database_url):
    """Two processes writing for one tenant in the same millisecond must not make the same id: each
    claims a node number from the database at startup, and the node sits in every id it makes."""
    engine = db.create_engine(database_url)
    try:
        first = await db.claim_id_node(engine)
        second = await db.claim_id_node(engine)
        assert second == (first + 1) % 1024
        # The ids made now carry the last claimed node, between the millisecond and the sequence.
        assert (db.new_id() >> 12) & 1023 == second
    finally:
        await engine.dispose()


def test_a_full_millisecond_borrows_the_next_one_without_touching_the_node(monkeypatch):
    """4,096 ids per millisecond per process; more must not spill into the node bits (where they
    would collide with another process's ids), so the sequence moves on to the next millisecond."""
    monkeypatch.setattr(db.time, "time_ns", lambda: 1_800_000_000_000 * 1_000_000)  # a frozen clock
    monkeypatch.setattr(db, "_id_node", 1023)
    ids = [db.new_id() for _ in range(3 * 4096)]
    assert ids == sorted(set(ids))
    assert {(i >> 12) & 1023 for i in ids} == {1023}
    assert len({i >> 22 for i in ids}) >= 3
