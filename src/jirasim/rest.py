"""The REST surface of a simulated site (the handlers live in `jirasim.api.*`).

`routes()` is what the site app mounts; `connect_scopes()` lists each operation's declared Connect
scope, which tests compare with `x-atlassian-connect-scope` in Jira's OpenAPI spec.
"""
from __future__ import annotations

from starlette.routing import BaseRoute, Route

from jirasim.api import routes as _api_routes


def routes() -> list[BaseRoute]:
    return _api_routes()


def connect_scopes() -> dict[tuple[str, str], str | None]:
    """`(METHOD, path template)` → the Connect scope the route enforces for apps."""
    out: dict[tuple[str, str], str | None] = {}
    for route in routes():
        if isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    out[(method, route.path)] = getattr(route.endpoint, "connect_scope", None)
    return out
