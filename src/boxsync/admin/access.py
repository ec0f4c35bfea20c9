"""Who may see the App Configuration: Jira administrators only, asked of Jira itself.

The descriptor's `user_is_admin` condition only hides the link; a context token from any of our
iframes is valid on JSON routes, so the backend checks the permission on every admin request
(cached briefly per user, since an admin page makes several calls in a row).
"""
from __future__ import annotations

import logging
import time

from starlette.requests import Request

from boxsync.connect.auth import JiraContext
from boxsync.jira.client import app_client
from boxsync.jira.errors import JiraError

log = logging.getLogger("boxsync.admin")

CACHE_SECONDS = 60.0


class NotAdmin(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


async def require_site_admin(request: Request, ctx: JiraContext) -> None:
    if not ctx.account_id:
        raise NotAdmin(403, "This page needs a signed-in Jira administrator.")
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
            raise NotAdmin(502, f"Could not check your Jira permissions ({exc.status}). Try again shortly.") from exc
        allowed = "ADMINISTER" in (grants.get("globalPermissions") or [])
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (allowed, time.monotonic() + CACHE_SECONDS)
    if not allowed:
        raise NotAdmin(403, "Only Jira administrators can open the BoxSync App Configuration.")
