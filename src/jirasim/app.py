"""A `Site` as an ASGI app: REST + control + host routes, lifespan hooks for the host module, and
the traffic (faults/counters) middleware outermost so faults hit before anything else runs, and
Jira's rate limits right inside it.

One site per port, as on Jira Cloud (no context path): `Simulator.add_site(name, base_url, …)`
returns this app.
"""
from __future__ import annotations


import contextlib
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import jirasim.host as host
from jirasim import control, rest
from jirasim.errors import JiraError, handle_jira_error
from jirasim.gateway import RateLimitMiddleware, TrafficMiddleware
from jirasim.model import Site, Sites


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status == 405:
        return JSONResponse({"errorMessages": ["Method Not Allowed"], "errors": {}}, status_code=405)
    return JSONResponse({"errorMessages": ["null for uri: " + str(request.url)], "errors": {}}, status_code=404)


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"errorMessages": ["Internal server error"], "errors": {}}, status_code=500)


def build_site_app(sim: Sites, site: Site) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await host.startup(sim, site)
        try:
            yield
        finally:
            await host.shutdown(sim, site)

    app = Starlette(
        routes=[*rest.routes(), *control.routes(), *host.routes(sim, site)],
        exception_handlers={JiraError: handle_jira_error, 404: _not_found, 405: _not_found, 500: _server_error},
        lifespan=lifespan,
    )
    app.state.site = site
    app.state.sim = sim
    # The middleware needs the inner app to name routes for counters, fault matching and limits.
    # Rate limits sit inside the traffic middleware, so their 429s are counted (and a fault fires
    # before them, as an outage in front of Jira's gateway would).
    app.add_middleware(RateLimitMiddleware, site=site, router=app.router)
    app.add_middleware(TrafficMiddleware, site=site, router=app.router)
    return app
