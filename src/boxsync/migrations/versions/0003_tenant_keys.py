"""tenant-owned tables keyed by (tenant_id, id); schema compatibility record

Revision ID: 0003
Revises: 0002

lifecycle_events and webhook_inbox get the primary key (tenant_id, id), so every index of a
tenant-owned table starts with its tenant (their other indexes already did) and the schema can be
distributed by tenant. Their ids become BIGINTs made by the application (boxsync.db.new_id), since
SQLite cannot generate a column of a composite key; existing rows keep their ids.

schema_compat records which code can run against the schema (see boxsync.db._record_compat);
id_nodes hands each process its node number for new_id.
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
# Code at 0002 inserts rows without an id: it cannot run against this schema.
min_code_revision = "0003"

TABLES = ("lifecycle_events", "webhook_inbox")


def upgrade() -> None:
    op.create_table(
        "schema_compat",
        sa.Column("revision", sa.String(32), nullable=False),
        sa.Column("min_code_revision", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("revision", name="pk_schema_compat"),
    )
    # Node numbers for boxsync.db.new_id: each process takes the next one at startup.
    id_nodes = op.create_table(
        "id_nodes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("next_node", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_id_nodes"),
    )
    op.bulk_insert(id_nodes, [{"id": 1, "next_node": 0}])
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        if postgresql:
            # The SERIAL's default and sequence go: ids come from the application now.
            op.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP DEFAULT")
            op.execute(f"DROP SEQUENCE IF EXISTS {table}_id_seq")
        # On SQLite the batch rebuilds the table (foreign keys are off meanwhile, see boxsync.db).
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.alter_column("id", existing_type=sa.Integer, type_=sa.BigInteger,
                               existing_nullable=False)
            batch.create_primary_key(f"pk_{table}", ["tenant_id", "id"])


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        if postgresql:
            op.drop_constraint(f"pk_{table}", table, type_="primary")
            # Application ids do not fit PostgreSQL's INTEGER: number the rows 1.. in id order
            # (nothing refers to these ids), then give the column its SERIAL sequence back.
            op.execute(f"UPDATE {table} SET id = numbered.n FROM (SELECT tenant_id, id, "
                       f"row_number() OVER (ORDER BY id, tenant_id) AS n FROM {table}) AS numbered "
                       f"WHERE {table}.tenant_id = numbered.tenant_id AND {table}.id = numbered.id")
            op.alter_column(table, "id", existing_type=sa.BigInteger, type_=sa.Integer, existing_nullable=False)
            op.execute(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id")
            op.execute(f"SELECT setval('{table}_id_seq', (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
            op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")
            op.create_primary_key(f"pk_{table}", table, ["id"])
            continue
        # SQLite: an INTEGER PRIMARY KEY again (a rowid, 64 bits: the ids fit as they are).
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.alter_column("id", existing_type=sa.BigInteger, type_=sa.Integer, existing_nullable=False)
            batch.create_primary_key(f"pk_{table}", ["id"])
    op.drop_table("id_nodes")
    op.drop_table("schema_compat")
