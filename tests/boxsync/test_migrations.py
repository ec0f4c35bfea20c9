"""Migrations on SQLite and PostgreSQL: the schema they build is the one the code declares (types,
keys, indexes), every revision downgrades and upgrades again with rows in place, a rebuild of
`tenants` keeps every tenant's rows, and a release one additive revision behind keeps serving."""
from __future__ import annotations

import datetime as dt
import logging

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from boxsync import db
from boxsync.app import SchemaOutdated, prepare_database
from boxsync.connect.tables import tenants
from boxsync.tables import metadata
from tests.boxsync.connectkit import boxsync_server, install_body, install_token, key_server, qsh_of
from tests.boxsync.storagekit import fresh_database_url, write_revision  # noqa: F401  (fixture)

AT = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


def _differences(sync_conn: sa.Connection, target: sa.MetaData) -> list:
    """What Alembic's autogenerate would change: tables, columns, types, nullability, server
    defaults, indexes, unique and foreign keys. Primary keys it does not compare: see _keys."""
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, target)


def _keys(sync_conn: sa.Connection) -> dict[str, list[str]]:
    insp = sa.inspect(sync_conn)
    return {t: insp.get_pk_constraint(t)["constrained_columns"] for t in insp.get_table_names()
            if t != "alembic_version"}


async def _schema(engine) -> tuple[list, dict[str, list[str]]]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: (_differences(c, metadata), _keys(c)))


def _declared_keys() -> dict[str, list[str]]:
    return {t.name: [c.name for c in t.primary_key.columns] for t in metadata.sorted_tables}


async def test_the_migrated_schema_is_the_declared_one(fresh_database_url):
    engine = db.create_engine(fresh_database_url)
    try:
        status = await db.migrate(engine)
        assert status.state == "current" and status.revision == db.head_revision()
        differences, keys = await _schema(engine)
        assert differences == [] and keys == _declared_keys()
        # The comparison is not blind: a column of another type is reported.
        changed = sa.MetaData()
        for table in metadata.sorted_tables:
            table.to_metadata(changed)
        changed.tables["lifecycle_events"].c.id.type = sa.Integer()
        async with engine.connect() as conn:
            found = await conn.run_sync(_differences, changed)
        assert [d[0][0] for d in found] == ["modify_type"], found
    finally:
        await engine.dispose()


async def _seed(engine, client_key: str) -> int:
    """A tenant with three events and three deliveries; ids the way the schema in place makes them."""
    async with engine.connect() as conn:
        app_ids = await conn.run_sync(lambda c: _keys(c)["lifecycle_events"] == ["tenant_id", "id"])
    async with engine.begin() as conn:
        tid = (await conn.execute(tenants.insert().values(
            client_key=client_key, base_url="https://x.atlassian.net", product_type="jira", shared_secret="enc",
            installed=True, enabled=True, installed_at=AT, updated_at=AT))).inserted_primary_key[0]
        # Raw SQL: the code's tables describe the newest revision only.
        for n in range(3):
            for table, values in (
                ("lifecycle_events", {"event": f"event-{n}", "base_url": "https://x.atlassian.net", "at": AT}),
                ("webhook_inbox", {"identifier": f"{client_key}-{n}", "event": "jira:issue_updated",
                                   "payload": "{}", "received_at": AT}),
            ):
                values = {"tenant_id": tid, **values, **({"id": db.new_id()} if app_ids else {})}
                await conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(values)}) "
                                           f"VALUES ({', '.join(':' + name for name in values)})"), values)
    return tid


async def _rows(engine) -> dict[str, list[tuple]]:
    """Every row of the tenant-owned tables, ids left out (a downgrade on PostgreSQL renumbers them)."""
    async with engine.connect() as conn:
        events = (await conn.execute(sa.text(
            "SELECT tenant_id, event FROM lifecycle_events ORDER BY id"))).all()
        inbox = (await conn.execute(sa.text(
            "SELECT tenant_id, identifier FROM webhook_inbox ORDER BY id"))).all()
        owners = (await conn.execute(sa.text("SELECT id, client_key FROM tenants ORDER BY id"))).all()
    return {"tenants": [tuple(r) for r in owners], "lifecycle_events": [tuple(r) for r in events],
            "webhook_inbox": [tuple(r) for r in inbox]}


async def test_every_revision_downgrades_and_upgrades_again_with_rows_in_place(fresh_database_url):
    """Down to base and back on both backends; each step from 0002 on down and up with rows kept.
    A downgrade that raises fails the test: nothing here catches it."""
    engine = db.create_engine(fresh_database_url)
    try:
        await db.migrate(engine, "0002")
        await _seed(engine, "before")  # SERIAL ids 1..3
        revisions = [s.revision for s in reversed(list(ScriptDirectory.from_config(db.alembic_config())
                                                       .walk_revisions()))]
        for revision, previous in zip(revisions[2:], revisions[1:]):
            await db.migrate(engine, revision)
            if revision == "0003":
                await _seed(engine, "after")  # application ids, far above the SERIAL ones
            rows = await _rows(engine)
            assert (await db.downgrade(engine, previous)).revision == previous
            assert await _rows(engine) == rows, f"rows lost downgrading {revision} -> {previous}"
            await db.migrate(engine, revision)
            assert await _rows(engine) == rows, f"rows lost upgrading {previous} -> {revision}"
        await db.downgrade(engine, "0002")
        # 0002's SERIAL ids work again after the downgrade (PostgreSQL got its sequence back).
        async with engine.begin() as conn:
            tid = (await conn.execute(sa.text("SELECT id FROM tenants WHERE client_key = 'after'"))).scalar_one()
            await conn.execute(sa.text("INSERT INTO lifecycle_events (tenant_id, event, base_url, at) "
                                       "VALUES (:t, 'later', 'u', :at)"), {"t": tid, "at": AT})
        assert (await _rows(engine))["lifecycle_events"][-1] == (tid, "later")

        status = await db.downgrade(engine, "base")
        assert status.state == "new"
        async with engine.connect() as conn:
            left = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert set(left) <= {"alembic_version"}, left
        await db.migrate(engine)
        differences, keys = await _schema(engine)
        assert differences == [] and keys == _declared_keys()
    finally:
        await engine.dispose()


async def test_rebuilding_tenants_keeps_every_tenant_row(fresh_database_url, tmp_path):
    """A batch migration over `tenants` (SQLite rebuilds the table: DROP + rename) must not cascade
    into the tables that reference it; foreign keys are enforced again afterwards."""
    extra = tmp_path / "versions"
    write_revision(extra, "t_drop_description", db.head_revision(), upgrade="""
        with op.batch_alter_table("tenants") as batch:
            batch.drop_column("description")
    """, downgrade="""
        with op.batch_alter_table("tenants") as batch:
            batch.add_column(sa.Column("description", sa.Text))
    """, min_code_revision=None)
    cfg = db.alembic_config(extra)
    engine = db.create_engine(fresh_database_url)
    try:
        await db.migrate(engine)
        await _seed(engine, "site-a")
        await _seed(engine, "site-b")
        rows = await _rows(engine)
        assert len(rows["lifecycle_events"]) == 6 and len(rows["webhook_inbox"]) == 6

        assert (await db.migrate(engine, config=cfg)).revision == "t_drop_description"
        assert await _rows(engine) == rows
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {col["name"] for col in sa.inspect(c).get_columns("tenants")})
        assert "description" not in columns
        await db.downgrade(engine, db.head_revision(), config=cfg)
        assert await _rows(engine) == rows

        # Foreign keys are on again for the app's connections.
        with pytest.raises(sa.exc.IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(sa.text("INSERT INTO lifecycle_events (id, tenant_id, event, base_url, at) "
                                           "VALUES (1, 999, 'orphan', 'u', :at)"), {"at": AT})
    finally:
        await engine.dispose()


async def test_a_migration_that_breaks_a_foreign_key_is_rolled_back(fresh_database_url, tmp_path):
    extra = tmp_path / "versions"
    write_revision(extra, "t_orphan", db.head_revision(), upgrade="""
        op.execute("INSERT INTO lifecycle_events (id, tenant_id, event, base_url, at) "
                   "VALUES (7, 999, 'orphan', 'u', '2024-01-01 00:00:00')")
    """)
    engine = db.create_engine(fresh_database_url)
    try:
        await db.migrate(engine)
        # SQLite (foreign keys off while migrating) finds it with foreign_key_check; PostgreSQL at once.
        with pytest.raises((db.MigrationError, sa.exc.IntegrityError), match="(?i)foreign key"):
            await db.migrate(engine, config=db.alembic_config(extra))
        status = await db.schema_status(engine)
        assert status.revision == db.head_revision()
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM lifecycle_events"))).scalar_one() == 0
    finally:
        await engine.dispose()


async def test_a_revision_must_name_an_ancestor_as_its_oldest_compatible_code(fresh_database_url, tmp_path):
    extra = tmp_path / "versions"
    write_revision(extra, "t_bad_claim", db.head_revision(), upgrade="op.add_column('tenants', "
                   "sa.Column('note', sa.Text))", min_code_revision="9999")
    engine = db.create_engine(fresh_database_url)
    try:
        await db.migrate(engine)
        with pytest.raises(db.MigrationError, match="min_code_revision '9999'"):
            await db.migrate(engine, config=db.alembic_config(extra))
        assert (await db.schema_status(engine)).state == "current"  # rolled back, column and all
    finally:
        await engine.dispose()


def _install(database_url: str) -> int:
    """A signed install through the app, as Jira sends it: a real write to `tenants`."""
    with key_server() as keys, boxsync_server(database_url, keys.url) as app:
        kid, key = keys.new_key()
        token = install_token(key, kid, iss="client-rolling", aud=app, qsh=qsh_of("POST", "/installed"))
        resp = httpx.post(app + "/installed", json=install_body("client-rolling", "s" * 64, "http://127.0.0.1:2990"),
                          headers={"Authorization": f"JWT {token}"})
        return resp.status_code


async def test_a_release_one_additive_revision_behind_keeps_serving(fresh_database_url, tmp_path, caplog):
    """Rolling deploy: the new release migrated the database; this release (which has never seen the
    new revision's file) reads what that revision declared, and serves or refuses accordingly."""
    head = db.head_revision()
    extra = tmp_path / "versions"
    write_revision(extra, "t_additive", head, upgrade="op.add_column('tenants', sa.Column('note', sa.Text))",
                   downgrade="op.drop_column('tenants', 'note')", min_code_revision=head)
    newer = db.alembic_config(extra)
    engine = db.create_engine(fresh_database_url)
    try:
        await db.migrate(engine, config=newer)
        assert (await db.schema_status(engine, config=newer)).state == "current"

        with caplog.at_level(logging.WARNING, logger="boxsync"):
            await prepare_database(engine)  # this release: ahead, but declared compatible
        assert "newer than this release's" in caplog.text and "rolling deploy" in caplog.text
        status = await db.migrate(engine)  # `boxsync migrate` of this release leaves it alone
        assert status.state == "ahead" and status.revision == "t_additive"
        assert _install(fresh_database_url) == 204
        async with engine.connect() as conn:
            row = (await conn.execute(sa.text("SELECT client_key, note FROM tenants"))).one()
        assert tuple(row) == ("client-rolling", None)

        # The next revision claims nothing: this release must refuse it, at start and in migrate.
        write_revision(extra, "t_breaking", "t_additive", upgrade="op.drop_column('tenants', 'note')")
        await db.migrate(engine, config=db.alembic_config(extra))
        with pytest.raises(SchemaOutdated, match="t_breaking, newer than this release's .* not usable by it"):
            await prepare_database(engine)
        with pytest.raises(db.SchemaMismatch, match="deploy the release that migrated it"):
            await db.migrate(engine)
    finally:
        await engine.dispose()


async def test_an_older_schema_is_left_for_boxsync_migrate(fresh_database_url):
    engine = db.create_engine(fresh_database_url)
    try:
        await db.migrate(engine, "0002")  # below schema_compat: nothing recorded
        with pytest.raises(SchemaOutdated, match=f"at revision 0002, this release needs {db.head_revision()}: "
                                                 "run `boxsync migrate`"):
            await prepare_database(engine)
        assert (await db.migrate(engine, only_new=True)).state == "behind"  # the app's start never upgrades
        assert (await db.migrate(engine)).state == "current"
        await prepare_database(engine)
    finally:
        await engine.dispose()
