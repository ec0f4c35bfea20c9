"""Lifecycle callbacks: installed, uninstalled (RS256 signed-install), enabled, disabled (HS256).

Every refusal happens before anything is written, and each accepted callback is one transaction.
Callbacks are applied in the order Jira issued them (the token's `iat`), not the order they
arrive; a stale one is answered 204 and changes nothing (rules: boxsync.connect.tenants).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsync import request_db
from boxsync.connect import tenants
from boxsync.connect.auth import jira_context, refusal, requires_jwt
from boxsync.connect.jwt import AuthError, extract_token, verify_install
from boxsync.netpolicy import URLRefused, check_atlassian_site, check_site_url

log = logging.getLogger("boxsync.lifecycle")


class BadPayload(ValueError):
    pass


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise BadPayload("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadPayload("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = True, max_len: int = 255) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadPayload(f"'{name}' is missing")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise BadPayload(f"'{name}' must be a string of at most {max_len} characters")
    return value


async def parse_installation(body: dict[str, Any], app_key: str, production: bool) -> tenants.Installation:
    if body.get("key") not in (None, app_key):
        raise BadPayload(f"this install is for app {body.get('key')!r}, but this server is {app_key!r}")
    event = body.get("eventType")
    if event not in (None, "installed"):
        raise BadPayload(f"eventType {event!r} sent to the installed callback")
    product = _text(body, "productType", required=False, max_len=32) or "jira"
    if product != "jira":
        raise BadPayload(f"BoxSync is a Jira app; productType {product!r} is not supported")
    display = _text(body, "displayUrl", required=False)
    try:
        if production:
            # Checked before anything resolves the host. displayUrl may be a custom domain; it is
            # only shown to people, while baseUrl receives the tenant's secret with every call.
            check_atlassian_site(_text(body, "baseUrl") or "")
        base_url = await check_site_url(_text(body, "baseUrl") or "", production=production)
        display = await check_site_url(display, production=production) if display else None
    except URLRefused as exc:
        raise BadPayload(f"site URL refused: {exc}") from exc
    return tenants.Installation(
        client_key=_text(body, "clientKey") or "",
        shared_secret=_text(body, "sharedSecret", max_len=512) or "",
        base_url=base_url,
        display_url=display,
        product_type=product,
        oauth_client_id=_text(body, "oauthClientId", required=False),
        installation_id=_text(body, "installationId", required=False),
        server_version=_text(body, "serverVersion", required=False, max_len=64),
        plugins_version=_text(body, "pluginsVersion", required=False, max_len=64),
        description=_text(body, "description", required=False, max_len=4000),
    )


def forget_cached_credentials(request: Request, tenant: tenants.Tenant) -> None:
    """The cached tenant is replaced (other processes hear of it from tenants' own announcement),
    user tokens were obtained with the old shared secret, and admin checks may be stale."""
    request.app.state.tenant_cache.invalidate(tenant.client_key)
    request.app.state.user_tokens.forget_tenant(tenant.client_key)
    for key in [k for k in request.app.state.admin_cache if k[0] == tenant.id]:
        del request.app.state.admin_cache[key]


def _bad(request: Request, message: str) -> Response:
    log.warning("refused %s %s: %s", request.method, request.url.path, message)
    return JSONResponse({"error": message}, status_code=400)


def _iat(claims: dict[str, Any]) -> int:
    # PyJWT has checked that iat is a number and not in the future (beyond the leeway).
    return int(claims["iat"])


async def _verified_install(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = request.app.state.settings
    claims = await verify_install(request, request.app.state.install_keys, audience=settings.base_url,
                                  base_path=settings.base_path, leeway=settings.jwt_leeway)
    body = await _json_body(request)
    if claims.get("iss") != body.get("clientKey"):
        raise AuthError(401, "install token iss does not match the body's clientKey",
                        "Install token was not issued for this clientKey.")
    return claims, body


async def _atlassian_site_first(request: Request) -> None:
    """In production, refuse a baseUrl outside Atlassian's site domains before verifying the token,
    as ACE does: the check is static and cheap, and a bogus site then never makes us fetch a key."""
    if request.app.state.settings.production:
        try:
            check_atlassian_site(_text(await _json_body(request), "baseUrl") or "")
        except URLRefused as exc:
            raise BadPayload(f"site URL refused: {exc}") from exc


async def installed(request: Request) -> Response:
    settings = request.app.state.settings
    try:
        await _atlassian_site_first(request)
        claims, body = await _verified_install(request)
        inst = await parse_installation(body, settings.app_key, settings.production)
    except AuthError as exc:
        return refusal(request, exc)
    except BadPayload as exc:
        return _bad(request, str(exc))
    # The token's qsh covers `POST&/installed&` and not the body, so the same token with another
    # body would verify again: each install token is accepted once, in the install's transaction.
    digest = hashlib.sha256(extract_token(request, header_only=True).encode()).hexdigest()
    usable_until = dt.datetime.fromtimestamp(int(claims["exp"]) + settings.jwt_leeway, dt.timezone.utc)
    try:
        async with request.app.state.engine.begin() as conn:
            if not await tenants.accept_install_token_once(conn, digest, usable_until):
                raise tenants.InstallRefused("this install token was already used")
            tenant = await tenants.save_installation(conn, inst, settings.secret_key, iat=_iat(claims))
    except tenants.InstallRefused as exc:
        # Nothing was written (the transaction rolled back). Jira shows the install as failed and
        # the admin can retry, which sends a fresh token.
        return refusal(request, AuthError(401, f"install refused: {exc}", f"Install refused: {exc}."))
    forget_cached_credentials(request, tenant)
    log.info("installed on %s (tenant %s)", tenant.base_url, tenant.id)
    return Response(status_code=204)


async def uninstalled(request: Request) -> Response:
    settings = request.app.state.settings
    try:
        claims, body = await _verified_install(request)
    except AuthError as exc:
        return refusal(request, exc)
    except BadPayload as exc:
        return _bad(request, str(exc))
    async with request.app.state.engine.begin() as conn:
        tenant, applied = await tenants.mark_uninstalled(conn, body["clientKey"], settings.secret_key,
                                                         iat=_iat(claims))
    if tenant is None:
        # Unknown tenant: nothing to forget, and Jira does not retry uninstalls anyway.
        log.info("uninstalled from an unknown site")
    elif not applied:
        log.info("stale uninstalled for tenant %s ignored (issued at %s, not after its last install "
                 "or lifecycle event)", tenant.id, claims["iat"])
    else:
        forget_cached_credentials(request, tenant)
        log.info("uninstalled from %s", tenant.base_url)
    return Response(status_code=204)


async def _toggle(request: Request, enabled: bool) -> Response:
    ctx = jira_context(request)
    try:
        body = await _json_body(request)
    except BadPayload as exc:
        return _bad(request, str(exc))
    if body.get("clientKey") not in (None, ctx.tenant.client_key):
        return _bad(request, "clientKey in the body does not match the token")
    event = "enabled" if enabled else "disabled"
    async with request_db.transaction(request) as conn:
        applied = await tenants.set_enabled(conn, ctx.tenant, enabled, ctx.account_id, iat=_iat(ctx.claims))
    if applied:
        request.app.state.tenant_cache.invalidate(ctx.tenant.client_key)  # committed: drop the old state
        log.info("%s on %s", event, ctx.tenant.base_url)
    else:
        log.info("stale %s for tenant %s ignored (issued at %s, not after its last lifecycle event)",
                 event, ctx.tenant.id, ctx.claims["iat"])
    return Response(status_code=204)


@requires_jwt("computed", allow_disabled=True)
async def enabled(request: Request) -> Response:
    return await _toggle(request, True)


@requires_jwt("computed", allow_disabled=True)
async def disabled(request: Request) -> Response:
    return await _toggle(request, False)


routes = [
    Route("/installed", installed, methods=["POST"]),
    Route("/uninstalled", uninstalled, methods=["POST"]),
    Route("/enabled", enabled, methods=["POST"]),
    Route("/disabled", disabled, methods=["POST"]),
]
