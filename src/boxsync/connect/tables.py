"""Tables of the Connect layer: tenants (one row per Jira site installation) and their history."""
import sqlalchemy as sa

from boxsync.db import UTCDateTime, metadata, new_id
from boxsync.tenancy import owned_table

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # clientKey is the site's identity: unique, so a reinstall updates and never duplicates.
    sa.Column("client_key", sa.String(255), nullable=False, unique=True),
    sa.Column("base_url", sa.String(255), nullable=False),
    sa.Column("display_url", sa.String(255)),
    sa.Column("product_type", sa.String(32), nullable=False),
    sa.Column("shared_secret", sa.Text, nullable=False),  # AES-GCM ciphertext, see boxsync.crypto
    sa.Column("oauth_client_id", sa.String(255)),
    sa.Column("installation_id", sa.String(255)),
    sa.Column("server_version", sa.String(64)),
    sa.Column("plugins_version", sa.String(64)),
    sa.Column("description", sa.Text),
    sa.Column("installed", sa.Boolean, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("installed_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("uninstalled_at", UTCDateTime()),
    info={"tenant_owned": False},  # the root every tenant-owned row points to
)

# What happened to an installation and when: shown to admins on the configuration page.
lifecycle_events = owned_table(
    "lifecycle_events",
    metadata,
    sa.Column("id", sa.BigInteger, default=new_id),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("base_url", sa.String(255), nullable=False),
    sa.Column("account_id", sa.String(128)),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_lifecycle_events_tenant_at", "tenant_id", "at"),
)
