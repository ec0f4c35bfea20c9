"""Who may see the App Configuration: Jira administrators only, asked of Jira itself.

The descriptor's `user_is_admin` condition only hides the link; a context token from any of our
iframes is valid on JSON routes, so the backend checks the permission on every admin request
(cached briefly per user, since an admin page makes several calls in a row).
"""
from __future__ import annotations

import functools
import logging
import time

from starlette.requests import Request
from starlette.responses import Response

from boxsync.connect.auth import Endpoint, JiraContext, jira_context, refusal
from boxsync.connect.jwt import AuthError
from boxsync.jira.client import app_client
from boxsync.jira.errors import JiraError

log = logging.getLogger("boxsync.admin")

CACHE_SECONDS = 60.0


async def require_site_admin(request: Request, ctx: JiraContext) -> None:
    if not ctx.account_id:
        raise AuthError(403, "admin route without a user", "This page needs a signed-in Jira administrator.")
    cache: dict[tuple[int, str], tuple[bool, float]] = request.app.state.admin_cache
    key = (ctx.tenant.id, ctx.account_id)
    hit = cache.get(key)
    if hit and hit[1] > time.monotonic():
        allowed = hit[0]
    else:
        client = app_client(request.app.state.http, ctx.tenant, request.app.state.settings.app_key)
        try:
            grants = await client.check_permissions(global_permissions=["ADMINISTER"], account_id=ctx.account_id)
        except JiraError as exc:
            log.warning("admin check failed for tenant %s: %s", ctx.tenant.id, exc)
            raise AuthError(502, f"admin check failed: Jira answered {exc.status}",
                            f"Could not check your Jira permissions ({exc.status}). Try again shortly.") from exc
        allowed = "ADMINISTER" in (grants.get("globalPermissions") or [])
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (allowed, time.monotonic() + CACHE_SECONDS)
    if not allowed:
        raise AuthError(403, f"{ctx.account_id} is not a Jira administrator",
                        "Only Jira administrators can open the BoxSync App Configuration.")


def requires_site_admin(endpoint: Endpoint) -> Endpoint:
    """Use under @requires_jwt: the token says who the user is, Jira says what they may do."""
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            await require_site_admin(request, jira_context(request))
        except AuthError as exc:
            return refusal(request, exc)
        return await endpoint(request)

    return guarded
