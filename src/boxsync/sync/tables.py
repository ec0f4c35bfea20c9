"""The webhook inbox (every verified delivery from Jira, stored before we answer 2xx) and the
state of each Box's full sync."""
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

# One row per Box: the current or last full sync. The row is also the lock that makes a sync run
# once at a time across processes: a process owns the run while `lease_until` is in the future and
# renews it as it works; a crashed process's lease runs out and the next trigger takes the run over.
box_syncs = owned_table(
    "box_syncs",
    metadata,
    sa.Column("box_id", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # idle running done failed refused
    sa.Column("stage", sa.String(32)),
    sa.Column("done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total", sa.Integer),
    sa.Column("reason", sa.Text),
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("triggered_by", sa.String(128)),
    sa.Column("trigger", sa.String(16)),  # open panel resync api
    sa.Column("read_as", sa.String(128)),
    sa.Column("counts", sa.JSON),
    sa.Column("continue_on_corrupted_index", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("owner", sa.String(64)),  # the process running it
    sa.Column("lease_until", UTCDateTime()),
    # Start of the last successful run: the next run asks Jira only for issues updated since.
    sa.Column("synced_since", UTCDateTime()),
    sa.ForeignKeyConstraint(["tenant_id", "box_id"], ["boxes.tenant_id", "boxes.id"],
                            name="fk_box_syncs_box", ondelete="CASCADE"),
    key=("box_id",),
)

# Which release last started on this database: a new one flags every Box for a full re-read.
app_releases = sa.Table(
    "app_releases",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("release", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    info={"tenant_owned": False},
)
