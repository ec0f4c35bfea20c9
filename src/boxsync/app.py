"""The application factory: settings in, ASGI app out; resources opened in the lifespan."""
from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import os
from pathlib import Path
from typing import AsyncIterator

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from boxsync import db
from boxsync.admin import routes as admin_routes
from boxsync.boxes import mapping_routes, routes as boxes_routes
from boxsync.config import Settings
from boxsync.connect import descriptor, lifecycle, tenant_cache
from boxsync.connect.auth import refusal, secret_unreadable
from boxsync.connect.install_keys import InstallKeys
from boxsync.connect.jwt import AuthError
from boxsync.crypto import SecretError
from boxsync.headers import SecurityHeaders
from boxsync.jira.limits import Limits, attach
from boxsync.jira.oauth import OAuthTokens
from boxsync.jira.transport import new_http_client
from boxsync.netpolicy import DEVELOPMENT, PRODUCTION, URLRefused
from boxsync.pages import environment
from boxsync import openapi
from boxsync.panel import routes as panel_routes
from boxsync.sync import api as sync_api, routes as sync_routes, service as sync_service

log = logging.getLogger("boxsync")

# Repository root (descriptor template, templates/, static/); BOXSYNC_HOME overrides it for images
# that install the package outside the source tree.
HOME = Path(os.environ.get("BOXSYNC_HOME") or Path(__file__).resolve().parents[2])


class SchemaOutdated(RuntimeError):
    pass


async def prepare_database(engine) -> None:  # noqa: ANN001
    """A new database is migrated on start, under the lock `boxsync migrate` takes, so processes
    starting together on it take turns. An older schema is left for `boxsync migrate`, so that an
    upgrade is a deliberate step rather than a side effect of a restart. A newer schema (a rolling
    deploy) is used when its migrations declare this release compatible, refused otherwise."""
    status = await db.schema_status(engine)
    if status.state == "new":
        log.info("new database: applying migrations")
        status = await db.migrate(engine, only_new=True)  # re-reads the revision once it holds the lock
    if status.state == "ahead":
        log.warning("%s", status.message)
    elif not status.usable:
        raise SchemaOutdated(status.message)


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


async def address_refused(request: Request, exc: Exception) -> Response:
    """A call to Jira that the address policy stopped (a site whose name now resolves to a private
    address): a clear 502 on whichever route made it, not a traceback."""
    return refusal(request, AuthError(502, f"outgoing connection refused: {exc}",
                                      "BoxSync will not connect to this Jira site: its address is not public."))


def package_release() -> str:
    try:
        return importlib.metadata.version("boxsync")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def note_release(engine, release: str) -> None:  # noqa: ANN001
    """A new release flags every Box for a full re-read at its next opening (sync/service.py)."""
    try:
        await sync_service.note_release(engine, release)
    except sa.exc.IntegrityError:
        pass  # another process starting with the same release recorded it first


def create_app(settings: Settings | None = None, *, home: Path = HOME) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = db.create_engine(settings.database_url, pool_size=settings.db_pool_size,
                                  max_overflow=settings.db_max_overflow)
        # Outside production jirasim and the sandbox run on loopback; production reaches public addresses only.
        http = new_http_client(addresses=PRODUCTION if settings.production else DEVELOPMENT)
        listener = None
        try:
            await prepare_database(engine)
            await db.claim_id_node(engine)  # ids this process makes never collide with another's
            await note_release(engine, settings.release or package_release())
            app.state.engine = engine
            app.state.http = http  # the one connection pool of this process
            # shared fairly between Jira sites: every client on the pool uses these limits
            app.state.jira_limits = attach(http, Limits(settings.jira_max_concurrency_per_site))
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
            await sync_service.stop_all(app.state)
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
            *mapping_routes.routes,
            *sync_routes.routes,
            *sync_api.routes,
            *openapi.routes,
            Mount("/static", StaticFiles(directory=home / "static"), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={SecretError: secret_unreadable, URLRefused: address_refused},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = environment(home / "templates")
    app.state.descriptor = descriptor.render_bytes(home / "atlassian-connect.json",
                                                   base_url=settings.base_url, app_key=settings.app_key)
    return app
