"""The application factory: settings in, ASGI app out; resources opened in the lifespan."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from boxsync import db
from boxsync.admin import routes as admin_routes
from boxsync.boxes import routes as boxes_routes
from boxsync.config import Settings
from boxsync.connect import descriptor, lifecycle, tenant_cache
from boxsync.connect.install_keys import InstallKeys
from boxsync.jira.oauth import OAuthTokens
from boxsync.jira.transport import new_http_client
from boxsync.pages import environment
from boxsync.panel import routes as panel_routes
from boxsync.sync import routes as sync_routes

log = logging.getLogger("boxsync")

# Repository root (descriptor template, templates/, static/); BOXSYNC_HOME overrides it for images
# that install the package outside the source tree.
HOME = Path(os.environ.get("BOXSYNC_HOME") or Path(__file__).resolve().parents[2])


class SchemaOutdated(RuntimeError):
    pass


async def prepare_database(engine) -> None:  # noqa: ANN001
    """A new database is migrated on start; an older schema is left for `boxsync migrate`, so that
    an upgrade is a deliberate step rather than a side effect of a restart."""
    async with engine.connect() as conn:
        revision = await db.current_revision(conn)
    if revision is None:
        log.info("new database: applying migrations")
        await db.migrate(engine)
    elif revision != db.head_revision():
        raise SchemaOutdated(f"database schema is at revision {revision}, this release needs "
                             f"{db.head_revision()}: run `boxsync migrate` first")


async def healthz(request: Request) -> Response:
    try:
        await db.ping(request.app.state.engine)
    except Exception as exc:  # any failure to reach the database means not healthy
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


async def admin_docs(request: Request) -> Response:
    body = request.app.state.templates.get_template("docs_admin.html").render(
        base_url=request.app.state.settings.base_url)
    return HTMLResponse(body)


def create_app(settings: Settings | None = None, *, home: Path = HOME) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = db.create_engine(settings.database_url)
        http = new_http_client()
        listener = None
        try:
            await prepare_database(engine)
            app.state.engine = engine
            app.state.http = http  # the one connection pool of this process
            app.state.install_keys = InstallKeys(settings.install_keys_url, http)
            app.state.user_tokens = OAuthTokens(http, settings.oauth_url)  # acting as a user
            app.state.admin_cache = {}
            # Several processes may share a PostgreSQL database: there the cache serves only while
            # the listener hears their changes. SQLite is one process, which invalidates itself.
            shared = engine.dialect.name == "postgresql"
            cache = tenant_cache.TenantCache(settings.tenant_cache_seconds, live=not shared)
            app.state.tenant_cache = cache
            if shared and cache.ttl > 0:
                listener = asyncio.create_task(tenant_cache.listen(cache, settings.database_url),
                                               name="tenant cache listener")
            yield
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            await http.aclose()
            await engine.dispose()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/docs/admin", admin_docs, methods=["GET"]),
            *descriptor.routes,
            *lifecycle.routes,
            *panel_routes.routes,
            *admin_routes.routes,
            *boxes_routes.routes,
            *sync_routes.routes,
            Mount("/static", StaticFiles(directory=home / "static"), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = environment(home / "templates")
    app.state.descriptor = descriptor.render_bytes(home / "atlassian-connect.json",
                                                   base_url=settings.base_url, app_key=settings.app_key)
    return app
