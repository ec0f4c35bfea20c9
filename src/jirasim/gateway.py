"""The gateway in front of each simulated site: ASGI middleware that counts requests and injects
faults (jirasim.faults) and enforces Jira's rate limits (jirasim.ratelimits). The web layer: the
model modules it applies know nothing of it.
"""
from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import jwt
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jirasim.auth import identify
from jirasim.faults import CONTROL_PREFIX, Traffic
from jirasim.ratelimits import RateLimits

_BODY_LIMIT = 16 * 1024 * 1024  # beyond this a response is charged the base point only


# -- faults and counters ----------------------------------------------------------------------

def _route_of(router: Any, scope: Scope) -> tuple[str | None, str | None]:
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "name", None), getattr(route, "path", None)
    return None, None


class TrafficMiddleware:
    """Counts and faults. `router` (the site app's) names the route a request will hit."""

    def __init__(self, app: ASGIApp, site: Any, router: Any = None) -> None:
        self.app = app
        self.site = site
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        traffic: Traffic = self.site.traffic
        request = Request(scope)
        caller = identify(request, self.site)
        name, template = _route_of(self.router, scope)
        method = scope["method"]
        endpoint = f"{method} {template or scope['path']}"
        traffic.total += 1
        traffic.by_endpoint[endpoint] += 1
        if name:
            traffic.by_route[name] += 1
        traffic.by_caller[caller] += 1
        traffic.by_endpoint_caller[(endpoint, caller)] += 1

        status_box: list[int] = []

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_box.append(message["status"])
                traffic.by_status[message["status"]] += 1
            await send(message)

        fault = traffic.pick(name, template, scope["path"], method, caller)
        if fault is None:
            await self.app(scope, receive, counting_send)
            return
        if fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, counting_send)
            return
        if fault.kind == "timeout":
            if await _wait_for_disconnect(receive, fault.seconds):
                return  # the client gave up; nothing to answer
            response = JSONResponse({"errorMessages": ["Gateway Timeout"], "errors": {}}, status_code=504)
            await response(scope, receive, counting_send)
            return
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.kind == "rate_limit":
            headers["RateLimit-Reason"] = fault.reason
            headers["X-RateLimit-Limit"] = "100"
            headers["X-RateLimit-Remaining"] = "0"
            body = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
        else:
            body = {"errorMessages": [_REASONS.get(fault.status or 503, "Internal server error")], "errors": {}}
        response = JSONResponse(body, status_code=fault.status or 503, headers=headers)
        await response(scope, receive, counting_send)


_REASONS = {500: "Internal server error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


async def _wait_for_disconnect(receive: Receive, seconds: float) -> bool:
    """Hold the request; True if the client disconnected before `seconds` passed."""

    async def until_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    try:
        await asyncio.wait_for(until_disconnect(), timeout=seconds)
    except asyncio.TimeoutError:
        return False
    return True


# -- rate limits ------------------------------------------------------------------------------

def budget_of(request: HTTPConnection, site: Any) -> tuple[str, str | None]:
    """(burst budget, app charged for the quota) of a request, from its unverified credentials."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    try:
        if scheme == "jwt" or (not header and request.query_params.get("jwt")):
            iss = str(jwt.decode(credentials or request.query_params["jwt"],
                                 options={"verify_signature": False}).get("iss"))
            return f"app:{iss}", iss
        if scheme == "bearer":
            grant = site.oauth_tokens.get(credentials)
            if grant is None:
                return "user:?", None
            return f"app:{grant.app_key}+user:{grant.account_id}", grant.app_key
        if scheme == "basic":
            email = base64.b64decode(credentials).decode("utf-8").partition(":")[0]
            user = site.user_by_email(email)
            return f"user:{user.account_id if user else email}", None
    except Exception:  # noqa: BLE001 - garbage credentials are limited like anyone's
        return "invalid", None
    return "anonymous", None


def objects_returned(body: bytes) -> int:
    """Objects in the top-level arrays of a JSON body: what a call is charged for beyond its base
    (`versionNumbers: [1001, 0, 0]` holds no objects)."""
    try:
        data = json.loads(body)
    except ValueError:
        return 0
    arrays = [data] if isinstance(data, list) else [v for v in data.values() if isinstance(v, list)] \
        if isinstance(data, dict) else []
    return sum(1 for array in arrays for item in array if isinstance(item, dict))


def _route(router: Any, scope: Scope) -> tuple[str | None, dict[str, Any]]:
    for route in getattr(router, "routes", ()):
        match, child = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "name", None), child.get("path_params", {})
    return None, {}


class RateLimitMiddleware:
    """Applies the site's `rate_limits` to its REST API (`/rest/…`); sits inside the traffic
    middleware, so its 429s are counted like any other response."""

    def __init__(self, app: ASGIApp, site: Any, router: Any = None) -> None:
        self.app = app
        self.site = site
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits: RateLimits = self.site.rate_limits
        if scope["type"] != "http" or not limits.enabled or not scope["path"].startswith("/rest/"):
            await self.app(scope, receive, send)
            return
        budget, app = budget_of(HTTPConnection(scope), self.site)
        name, params = _route(self.router, scope)
        method = scope["method"]
        issue = None
        if "issueIdOrKey" in params:
            found = self.site.issue(str(params["issueIdOrKey"]))
            issue = str(found.id) if found is not None else str(params["issueIdOrKey"])
        rejection = limits.check(budget=budget, app=app, method=method, endpoint=name or scope["path"],
                                 issue=issue)
        if rejection is not None:
            response = JSONResponse({"errorMessages": ["Rate limit exceeded."], "errors": {}}, status_code=429,
                                    headers=rejection.headers())
            await response(scope, receive, send)
            return
        if app is None or limits.quota is None:
            await self.app(scope, receive, send)
            return
        status: list[int] = []
        body = bytearray()

        async def charging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode("latin-1"), v.encode("latin-1"))
                            for k, v in limits.quota_headers(app).items()]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and len(body) <= _BODY_LIMIT:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, charging_send)
        finally:
            ok = bool(status) and 200 <= status[0] < 300 and len(body) <= _BODY_LIMIT
            limits.charge(app, 1 + (objects_returned(bytes(body)) if ok else 0))
