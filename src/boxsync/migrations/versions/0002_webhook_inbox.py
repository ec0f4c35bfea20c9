"""webhook inbox

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_inbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("issue_id", sa.String(32)),
        sa.Column("jira_timestamp", sa.BigInteger),
        sa.Column("retry", sa.Integer, nullable=False, server_default="0"),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_inbox"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_webhook_inbox_tenant_id_tenants"),
        sa.UniqueConstraint("tenant_id", "identifier", name="uq_webhook_inbox_tenant_identifier"),
    )
    op.create_index("ix_webhook_inbox_pending", "webhook_inbox", ["tenant_id", "processed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_inbox_pending", "webhook_inbox")
    op.drop_table("webhook_inbox")
