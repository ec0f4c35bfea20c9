"""Every feature's tables, imported so that `metadata` knows them all (migrations, tests)."""
from boxsync.connect import tables as connect_tables  # noqa: F401
from boxsync.db import metadata

__all__ = ["metadata"]
from boxsync.sync import tables as sync_tables  # noqa: F401,E402
from boxsync.boxes import tables as boxes_tables  # noqa: F401,E402
