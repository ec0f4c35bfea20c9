"""The one verifier every Jira-facing route goes through.

    @requires_jwt("computed")          # iframe pages, webhooks: the token is bound to this URL
    async def panel(request): ctx = jira_context(request) ...

    @requires_jwt("context")           # JSON called by our pages with AP.context.getToken()
    async def api(request): ...

No route accepts both kinds: that was the 2021 context-JWT bypass (connect-protocol.md §2.6).

The token is parsed once (connect/jwt.py), its tenant comes from the in-process cache
(connect/tenant_cache.py) or, on a miss, from the request's one database connection
(boxsync/request_db.py), which the endpoint reuses and this decorator releases.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from boxsync import request_db
from boxsync.connect import tenants
from boxsync.connect.jwt import AuthError, QshKind, choose_tenant, extract_token, parse, verify_claims
from boxsync.crypto import SecretError

log = logging.getLogger("boxsync.auth")

Endpoint = Callable[[Request], Awaitable[Response]]

SECRET_UNREADABLE = ("BoxSync cannot read its stored secret for this Jira site. Reinstalling the app "
                     "restores it; if it does not, the BoxSync operator must check the server's secret key.")


@dataclass(frozen=True)
class JiraContext:
    tenant: tenants.Tenant
    account_id: str | None
    claims: dict[str, Any]


def jira_context(request: Request) -> JiraContext:
    return request.state.jira


async def tenant_of(request: Request, client_key: str) -> tenants.Tenant | None:
    """The tenant from this process's cache, or else read (on the request's one connection) and cached."""
    cache = request.app.state.tenant_cache
    tenant = cache.get(client_key)
    if tenant is not None:
        return tenant
    epoch = cache.epoch
    conn = await request_db.connection(request)
    try:
        tenant = await tenants.by_client_key(conn, client_key, request.app.state.settings.secret_key)
    except SecretError as exc:
        raise AuthError(500, f"tenant secret unreadable: {exc}", SECRET_UNREADABLE) from exc
    finally:
        await conn.rollback()  # end the read: the endpoint may begin its own transaction on conn
    if tenant is not None:
        cache.put(tenant, epoch)
    return tenant


async def verify(request: Request, kind: QshKind, *, allow_disabled: bool = False) -> JiraContext:
    settings = request.app.state.settings
    # Context and session tokens are not bound to a URL: only the Authorization header may carry them.
    token = parse(extract_token(request, header_only=kind == "context"))
    choice = choose_tenant(token.header, token.claims, settings.app_key, kind)
    tenant = await tenant_of(request, choice.client_key)
    if tenant is None:
        raise AuthError(401, f"unknown installation {choice.client_key!r}", "Unknown Jira installation.")
    claims = verify_claims(token, tenant.shared_secret, request, kind=kind, session=choice.session,
                           client_key=tenant.client_key, base_path=settings.base_path,
                           leeway=settings.jwt_leeway)
    # allow_disabled: routes Jira calls whatever BoxSync believes (lifecycle callbacks, webhooks),
    # since our flags can be stale; the signature proves the site, and the route decides.
    if not tenant.installed and not allow_disabled:
        raise AuthError(403, "installation was uninstalled", "BoxSync is not installed on this Jira site.")
    if not tenant.enabled and not allow_disabled:
        raise AuthError(403, "installation is disabled", "BoxSync is disabled on this Jira site.")
    sub = claims.get("sub")
    return JiraContext(tenant=tenant, account_id=sub if isinstance(sub, str) else None, claims=claims)


def refusal(request: Request, exc: AuthError) -> Response:
    # Log why, with the route and the claimed issuer; never the token or the query string.
    log.warning("refused %s %s: %s", request.method, request.url.path, exc.reason)
    headers = {"WWW-Authenticate": f'JWT realm="{request.app.state.settings.app_key}"'} if exc.status == 401 else {}
    if "text/html" in request.headers.get("accept", ""):
        body = request.app.state.templates.get_template("error.html").render(
            status=exc.status, message=exc.public)
        return HTMLResponse(body, status_code=exc.status, headers=headers)
    return JSONResponse({"error": exc.public}, status_code=exc.status, headers=headers)


async def secret_unreadable(request: Request, exc: Exception) -> Response:
    """Any route that decrypts a tenant's secret outside `verify` (the lifecycle callbacks, later
    services) answers this instead of a traceback when the stored secret is unreadable."""
    return refusal(request, AuthError(500, f"tenant secret unreadable: {exc}", SECRET_UNREADABLE))


def requires_jwt(kind: QshKind, *, allow_disabled: bool = False) -> Callable[[Endpoint], Endpoint]:
    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            try:
                try:
                    request.state.jira = await verify(request, kind, allow_disabled=allow_disabled)
                except AuthError as exc:
                    return refusal(request, exc)
                return await endpoint(request)
            finally:
                await request_db.release(request)

        return guarded

    return decorate
