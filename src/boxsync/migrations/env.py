"""Alembic environment: always run with a connection handed over by boxsync.db.migrate."""
from alembic import context

from boxsync.tables import metadata  # noqa: F401  (all feature tables, for autogenerate)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `boxsync migrate`, which supplies the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
