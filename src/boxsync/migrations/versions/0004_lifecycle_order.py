"""lifecycle ordering, accepted install tokens, webhook stubs

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
# Additive (new nullable columns, a new table): a release at 0003 keeps serving against it.
min_code_revision = "0003"


def upgrade() -> None:
    # Batch operations, so that SQLite (which cannot alter most things in place) gets the same schema.
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("lifecycle_iat", sa.BigInteger))
        batch.add_column(sa.Column("lifecycle_event", sa.String(16)))
        batch.add_column(sa.Column("install_iat", sa.BigInteger))
    with op.batch_alter_table("webhook_inbox") as batch:
        batch.add_column(sa.Column("stub_reason", sa.String(64)))
    op.create_table(
        "install_tokens",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_install_tokens"),
    )
    op.create_index("ix_install_tokens_expires_at", "install_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_install_tokens_expires_at", "install_tokens")
    op.drop_table("install_tokens")
    with op.batch_alter_table("webhook_inbox") as batch:
        batch.drop_column("stub_reason")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("install_iat")
        batch.drop_column("lifecycle_event")
        batch.drop_column("lifecycle_iat")
