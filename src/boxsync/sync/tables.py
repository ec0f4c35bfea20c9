"""The webhook inbox: every verified delivery from Jira, stored before we answer 2xx."""
import sqlalchemy as sa

from boxsync.db import UTCDateTime, metadata, new_id
from boxsync.tenancy import owned_table

webhook_inbox = owned_table(
    "webhook_inbox",
    metadata,
    sa.Column("id", sa.BigInteger, default=new_id),
    # X-Atlassian-Webhook-Identifier: stable across Jira's retries, so a retry is stored once.
    sa.Column("identifier", sa.String(255), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("issue_id", sa.String(32)),
    sa.Column("jira_timestamp", sa.BigInteger),
    sa.Column("retry", sa.Integer, nullable=False, server_default="0"),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("processed_at", UTCDateTime()),
    # Set when only a stub was stored (body too large, unknown event, not JSON): the event and ids
    # we could read are kept and a worker must re-read the rest from Jira. NULL: a full delivery.
    sa.Column("stub_reason", sa.String(64)),
    sa.UniqueConstraint("tenant_id", "identifier", name="uq_webhook_inbox_tenant_identifier"),
    sa.Index("ix_webhook_inbox_pending", "tenant_id", "processed_at", "id"),
)
