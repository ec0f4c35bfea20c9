"""Verified tenants kept in memory, so that checking a request's JWT needs no database read.

The cache is small (LRU, `MAX_ENTRIES`), per process, keyed by clientKey, and holds the decrypted
`Tenant` (memory only, like the request that would otherwise decrypt it). An entry may outlive the
row it was read from only briefly, and never across a lifecycle change this process can know of:

* in this process, the lifecycle handlers call `invalidate` after their transaction commits;
* other processes learn of a change through PostgreSQL LISTEN/NOTIFY: every tenant write calls
  `announce(conn, client_key)` inside its own transaction, so the NOTIFY goes out exactly when the
  change commits, and `listen` (one task per process, on a dedicated connection) invalidates it;
* while the listener is not connected the cache is suspended (every lookup reads the database),
  and it is cleared when the listener comes back, since notifications sent meanwhile are lost;
* every entry expires after `ttl` seconds whatever happens (BOXSYNC_TENANT_CACHE_SECONDS): the
  safety net for a change made outside the app or a listener connection that died silently.

SQLite deployments are one process by design, so there the first and last rules suffice.

A lookup that raced a change must not store what it read before the change committed: `put` takes
the `epoch` read before the lookup started and drops the value if any invalidation happened since.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:  # tenants.py imports this module to announce its writes
    from boxsync.connect.tenants import Tenant

log = logging.getLogger("boxsync.tenant_cache")

CHANNEL = "boxsync_tenant_changed"
MAX_ENTRIES = 1024
LISTENER_NAME = "boxsync-tenant-cache"  # application_name of the listener's connection


class TenantCache:
    def __init__(self, ttl: float, *, max_entries: int = MAX_ENTRIES, live: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Tenant, float]] = OrderedDict()
        self._live = live and ttl > 0
        self.epoch = 0

    @property
    def live(self) -> bool:
        return self._live

    def get(self, client_key: str) -> Tenant | None:
        if not self._live:
            return None
        entry = self._entries.get(client_key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[client_key]
            return None
        self._entries.move_to_end(client_key)
        return entry[0]

    def put(self, tenant: Tenant, epoch: int) -> None:
        """Store what a lookup read, unless something was invalidated since it started (`epoch`)."""
        if not self._live or epoch != self.epoch:
            return
        self._entries[tenant.client_key] = (tenant, self._clock() + self.ttl)
        self._entries.move_to_end(tenant.client_key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, client_key: str) -> None:
        self.epoch += 1
        self._entries.pop(client_key, None)

    def suspend(self) -> None:
        """Stop serving and storing: nobody tells us about changes any more."""
        self._live = False
        self.epoch += 1
        self._entries.clear()

    def resume(self) -> None:
        self.epoch += 1
        self._entries.clear()
        self._live = self.ttl > 0


async def announce(conn: AsyncConnection, client_key: str) -> None:
    """Tell every process's cache that this tenant changed, when (and only if) `conn`'s
    transaction commits. Call it from each function that writes the tenants table."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, client_key)))


def _asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(cache: TenantCache, database_url: str, *, ping_seconds: float = 5.0,
                 max_backoff: float = 30.0) -> None:
    """Run for the life of the process (PostgreSQL only): apply other processes' announcements.

    The cache serves entries only while this listener is connected; a lost connection suspends it
    and the listener reconnects with exponential backoff. A periodic ping notices a connection that
    died without closing; until it does, the entries' TTL bounds how stale they can be.
    """
    import asyncpg

    dsn = _asyncpg_dsn(database_url)
    backoff = 0.5
    while True:
        conn = None
        try:
            conn = await asyncpg.connect(dsn, timeout=10, server_settings={"application_name": LISTENER_NAME})
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, lambda _conn, _pid, _channel, key: cache.invalidate(key))
            cache.resume()  # after LISTEN: anything announced from now on reaches us
            log.info("tenant cache: listening for tenant changes")
            backoff = 0.5
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), ping_seconds)
                except TimeoutError:
                    await conn.fetchval("SELECT 1", timeout=ping_seconds)
            raise ConnectionError("connection closed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: serve from the database until we are back
            log.warning("tenant cache: change listener down (%s); reading tenants from the database, "
                        "reconnecting in %.1f s", type(exc).__name__, backoff)
        finally:
            cache.suspend()
            if conn is not None and not conn.is_closed():
                conn.terminate()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff)
