"""One database connection per request, checked out only when something in the request needs it.

    conn = await request_db.connection(request)        # reads
    async with request_db.transaction(request) as conn: # writes, committed at the end of the block

The verifier (on a tenant-cache miss) and the endpoint share this connection, and `requires_jwt`
releases it once the endpoint has returned: a request checks out at most one pool connection, and
a verified request whose tenant is cached checks out none for the verification.
"""
from __future__ import annotations

import contextlib
from typing import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request


async def connection(request: Request) -> AsyncConnection:
    conn: AsyncConnection | None = getattr(request.state, "db", None)
    if conn is None:
        conn = await request.app.state.engine.connect()
        request.state.db = conn
    return conn


@contextlib.asynccontextmanager
async def transaction(request: Request) -> AsyncIterator[AsyncConnection]:
    conn = await connection(request)
    async with conn.begin():
        yield conn


async def release(request: Request) -> None:
    """Return the request's connection to the pool (rolling back anything left uncommitted)."""
    conn: AsyncConnection | None = getattr(request.state, "db", None)
    if conn is not None:
        del request.state.db
        await conn.close()
