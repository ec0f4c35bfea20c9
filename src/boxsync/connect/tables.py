"""Tables of the Connect layer: tenants (one row per Jira site installation), their history, and
the install tokens already accepted."""
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
    # Lifecycle callbacks arrive late and out of order; these order them by Jira's token `iat`
    # (see boxsync.connect.tenants for the rules). NULL on rows from before they existed.
    sa.Column("lifecycle_iat", sa.BigInteger),  # iat of the newest lifecycle event applied
    sa.Column("lifecycle_event", sa.String(16)),  # and which event it was (breaks same-second ties)
    sa.Column("install_iat", sa.BigInteger),  # iat of the last accepted `installed`
    # The root of tenancy: it is what tenant_id refers to, not something a tenant owns.
    info={"tenant_owned": False},
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

# Install tokens already accepted, so that a captured one cannot be replayed with another body (its
# qsh covers `POST&/installed&`, not the body). Global: the token is checked before we trust which
# tenant it names. Rows are kept until the token could no longer verify (exp + leeway), then pruned.
install_tokens = sa.Table(
    "install_tokens",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),  # hex sha256 of the token, never the token
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index("ix_install_tokens_expires_at", "expires_at"),
    info={"tenant_owned": False},
)
