"""tenants and lifecycle events

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("client_key", sa.String(255), nullable=False),
        sa.Column("base_url", sa.String(255), nullable=False),
        sa.Column("display_url", sa.String(255)),
        sa.Column("product_type", sa.String(32), nullable=False),
        sa.Column("shared_secret", sa.Text, nullable=False),
        sa.Column("oauth_client_id", sa.String(255)),
        sa.Column("installation_id", sa.String(255)),
        sa.Column("server_version", sa.String(64)),
        sa.Column("plugins_version", sa.String(64)),
        sa.Column("description", sa.Text),
        sa.Column("installed", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uninstalled_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("client_key", name="uq_tenants_client_key"),
    )
    op.create_table(
        "lifecycle_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("base_url", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(128)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycle_events"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_lifecycle_events_tenant_id_tenants"),
    )
    op.create_index("ix_lifecycle_events_tenant_at", "lifecycle_events", ["tenant_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_lifecycle_events_tenant_at", "lifecycle_events")
    op.drop_table("lifecycle_events")
    op.drop_table("tenants")
