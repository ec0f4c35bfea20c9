"""`boxsync serve`, `boxsync migrate`, `boxsync secret-key`, `boxsync clear-cache`."""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import sys

from boxsync import logs
from boxsync.config import ConfigError, Settings, new_secret_key

log = logging.getLogger("boxsync")


async def _migrate(settings: Settings) -> str:
    """Safe to run from every process at once: migrations take turns under one lock (boxsync.db)."""
    from boxsync import db

    engine = db.create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        status = await db.migrate(engine)
    finally:
        await engine.dispose()
    return "database is up to date" if status.state == "current" else status.message


async def _clear_cache(settings: Settings) -> int:
    from boxsync import db
    from boxsync.sync.service import flag_all

    engine = db.create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        return await flag_all(engine)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boxsync", description="BoxSync, a portfolio app for Jira Cloud")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the app under uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="leave out uvicorn's one line per request (errors and app logs stay)")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("secret-key", help="print a new random BOXSYNC_SECRET_KEY")
    sub.add_parser("clear-cache", help="make every Box re-read all its issues from Jira the next time it is "
                                       "opened (nothing syncs now)")
    args = parser.parse_args(argv)
    logs.configure()

    if args.command == "secret-key":
        print(new_secret_key())
        return 0
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"boxsync: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        from boxsync.db import SchemaMismatch

        try:
            print(asyncio.run(_migrate(settings)))
        except SchemaMismatch as exc:
            print(f"boxsync: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "clear-cache":
        flagged = asyncio.run(_clear_cache(settings))
        print(f"{flagged} Boxes will re-read their issues from Jira the next time they are opened")
        return 0
    import uvicorn

    from boxsync.app import create_app

    # uvicorn[standard]'s event loop and HTTP parser (C) cost far less per request than the
    # pure-Python ones; named explicitly so the log says what runs (a slim install still starts).
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    if (loop, http) == ("uvloop", "httptools"):
        log.info("serving with the uvloop event loop and the httptools HTTP parser")
    else:
        log.warning("serving with the %s event loop and the %s HTTP parser: install uvicorn[standard] "
                    "for uvloop and httptools", loop, http)
    # log_config=None keeps the logging configured above (with token redaction) for uvicorn too.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, proxy_headers=True, log_config=None,
                access_log=args.access_log, loop=loop, http=http)
    return 0


if __name__ == "__main__":
    sys.exit(main())
