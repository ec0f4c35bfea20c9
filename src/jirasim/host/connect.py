"""Installing Connect apps on a simulated site: descriptor fetch, signed lifecycle callbacks.

Follows connect-protocol.md §2: `installed` is synchronous (the app must answer 2xx, else the install
fails and the admin sees the app's status), signed RS256 with the site's install key (`kid` header,
`iss` = clientKey, `aud` = app baseUrl, computed `qsh`); `uninstalled` is signed the same way but is
asynchronous and not retried; `enabled`/`disabled` are asynchronous notifications, HS256 with the
shared secret. Every install sends a fresh shared secret; the clientKey is per site and never
changes across reinstalls.

The asynchronous callbacks go through the site's lifecycle dispatcher (jirasim.host.delivery, no
retries): without faults they arrive in order, but like Jira's they can arrive late, be lost or
overtake each other, and tests make that happen on demand — `hold` some events and `release` them
later (reversed, shuffled), `delay_ms`, `drop`, `reorder`. Each token is signed when the event
happens, not when it is delivered, so a late callback carries its original `iat`; the lifecycle
clock (`/_jirasim/lifecycle/clock`) lets a test issue events at chosen seconds.

Tampering (`tamper`) lets a test check that an app rejects forged install tokens.
"""
from __future__ import annotations


import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jirasim.host import keys
from jirasim.host.delivery import Dispatcher, Message, Settings, dispatcher_routes
from jirasim.host.signing import LIFECYCLE_TOKEN_TTL, app_request_token, query_string_hash
from jirasim.host.state import attached
from jirasim.model import ADMINISTER, PROJECT_PERMISSIONS, InstalledApp, Site, Sites

SERVER_VERSION = "100288"
PLUGINS_VERSION = "1001.0.0-SNAPSHOT"
TAMPERS = frozenset({
    "unsigned", "expired", "wrong_aud", "wrong_iss", "wrong_qsh", "alg_none",
    "hs256_with_public_key", "unknown_kid", "no_kid", "bad_signature",
})
_KEY_PATTERN = re.compile(r"^[a-zA-Z0-9\-._]+$")
HTTP_TIMEOUT = 10.0


class InstallError(Exception):
    """The install failed; `status` is the HTTP status for the control API, `body` its JSON."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", "install failed"))
        self.status = status
        self.body = body


@dataclass
class _SiteIdentity:
    client_key: str


@dataclass
class LifecycleState:
    # No retries: Jira does not retry `uninstalled`, and nothing documents retries of enabled/disabled.
    dispatcher: Dispatcher = field(default_factory=lambda: Dispatcher(Settings(retry_delays=())))
    clock_offset: float = 0.0  # seconds added to real time when lifecycle tokens are issued

    def now(self) -> int:
        return int(time.time() + self.clock_offset)


def lifecycle(site: Site) -> LifecycleState:
    return attached(site, "lifecycle", LifecycleState)


async def startup(sim: Sites, site: Site) -> None:
    await lifecycle(site).dispatcher.start()


async def shutdown(sim: Sites, site: Site) -> None:
    await lifecycle(site).dispatcher.stop()


def client_key(site: Site) -> str:
    """The site's clientKey: a UUID, the same for every app and every reinstall."""
    # Derived from the site's name and URL, so a restarted sandbox is the same site to an app (as a
    # real site's clientKey never changes) instead of a new tenant on every run.
    name = f"jirasim:{site.name}:{site.base_url}"
    return attached(site, "identity", lambda: _SiteIdentity(str(uuid.uuid5(uuid.NAMESPACE_URL, name)))).client_key


def app_url(app: InstalledApp, path: str) -> str:
    """A descriptor URL (relative to baseUrl, `/x` or `x`) as an absolute URL."""
    base = app.base_url.rstrip("/")
    return base + (path if path.startswith("/") else "/" + path)


def display_name(entry: dict) -> str:
    """The `name` of a descriptor or one of its modules (a plain string or an i18n `{"value": …}`),
    else its key."""
    name = entry.get("name")
    if isinstance(name, dict):
        name = name.get("value")
    return str(name or entry.get("key") or "")


def validate_descriptor(descriptor: Any) -> list[str]:
    if not isinstance(descriptor, dict):
        return ["descriptor is not a JSON object"]
    errors = []
    key = descriptor.get("key")
    if not isinstance(key, str) or not _KEY_PATTERN.match(key) or len(key) > 80:
        errors.append("key: required, ^[a-zA-Z0-9-._]+$, at most 80 characters")
    base = descriptor.get("baseUrl")
    if not isinstance(base, str) or urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
        errors.append("baseUrl: required absolute http(s) URL")
    auth = descriptor.get("authentication")
    if not isinstance(auth, dict) or str(auth.get("type", "jwt")).lower() != "jwt":
        errors.append('authentication: required, {"type": "jwt"}')
    lifecycle = descriptor.get("lifecycle")
    if not isinstance(lifecycle, dict) or not isinstance(lifecycle.get("installed"), str):
        errors.append("lifecycle.installed: required")
    scopes = descriptor.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        errors.append("scopes: must be a list of strings")
    return errors


def lifecycle_payload(site: Site, app: InstalledApp, event: str) -> dict[str, Any]:
    base = site.base_url
    return {
        "key": app.key,
        "clientKey": app.client_key,
        "sharedSecret": app.shared_secret,
        "serverVersion": SERVER_VERSION,
        "pluginsVersion": PLUGINS_VERSION,
        "baseUrl": base,
        "displayUrl": base,
        "displayUrlServicedeskHelpCenter": base,
        "productType": "jira",
        "description": f"Atlassian JIRA at {base}",
        "eventType": event,
        "oauthClientId": app.oauth_client_id,
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def install_token(sim: Sites, site: Site, app: InstalledApp, url: str, *,
                  tamper: str | None = None) -> str | None:
    """The RS256 lifecycle token for `POST url`, or a deliberately broken one."""
    key = keys.site_key(sim, site)
    issued = lifecycle(site).now()
    claims: dict[str, Any] = {
        "iss": app.client_key,
        "sub": site.admin_account_id(),
        "aud": app.base_url,
        "qsh": query_string_hash("POST", url, app.base_url),
        "iat": issued,
        "exp": issued + LIFECYCLE_TOKEN_TTL,
        "context": {},
    }
    headers: dict[str, Any] = {"kid": key.kid, "typ": "JWT"}
    if tamper == "unsigned":
        return None
    if tamper == "expired":
        claims["iat"], claims["exp"] = issued - 2 * LIFECYCLE_TOKEN_TTL, issued - LIFECYCLE_TOKEN_TTL
    elif tamper == "wrong_aud":
        claims["aud"] = "https://attacker.example.com"
    elif tamper == "wrong_iss":
        claims["iss"] = str(uuid.uuid4())
    elif tamper == "wrong_qsh":
        claims["qsh"] = query_string_hash("POST", "/somewhere-else")
    elif tamper == "unknown_kid":
        headers["kid"] = f"jirasim-unknown-{uuid.uuid4()}"
    elif tamper == "no_kid":
        headers.pop("kid")
    elif tamper == "alg_none":
        head = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
        return f"{head}.{_b64(json.dumps(claims).encode())}."
    elif tamper == "hs256_with_public_key":
        # Algorithm confusion: HMAC keyed with the (public) PEM. PyJWT refuses PEM HMAC keys, so sign by hand.
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
        body = _b64(json.dumps(claims).encode())
        mac = hmac.new(key.public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(mac)}"
    token = jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)
    if tamper == "bad_signature":
        head, body, sig = token.split(".")
        forged = dict(claims, sub="557058:forged")
        token = f"{head}.{_b64(json.dumps(forged).encode())}.{sig}"
    return token


async def _post_lifecycle(client: httpx.AsyncClient, url: str, payload: dict, token: str | None,
                          scheme: str = "JWT") -> httpx.Response:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    return await client.post(url, content=json.dumps(payload), headers=headers)


async def fetch_descriptor(descriptor_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        try:
            response = await client.get(descriptor_url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise InstallError(502, {"error": "descriptor_unreachable", "message": str(exc)}) from exc
    if response.status_code != 200:
        raise InstallError(502, {"error": "descriptor_fetch_failed", "status": response.status_code,
                                 "body": response.text[:2000]})
    try:
        descriptor = response.json()
    except ValueError as exc:
        raise InstallError(400, {"error": "descriptor_invalid", "errors": ["not JSON"]}) from exc
    return descriptor


async def install(sim: Sites, site: Site, descriptor_url: str | None = None, *,
                  descriptor: dict | None = None, tamper: str | None = None) -> InstalledApp:
    """Install (or reinstall) an app; returns the stored `InstalledApp`, raises `InstallError`."""
    if tamper is not None and tamper not in TAMPERS:
        raise InstallError(400, {"error": "unknown_tamper", "allowed": sorted(TAMPERS)})
    if descriptor is None:
        if not descriptor_url:
            raise InstallError(400, {"error": "descriptorUrl is required"})
        descriptor = await fetch_descriptor(descriptor_url)
    errors = validate_descriptor(descriptor)
    if errors:
        raise InstallError(400, {"error": "descriptor_invalid", "errors": errors})

    key = descriptor["key"]
    previous = site.apps.get(key)
    scopes = frozenset(str(s).upper() for s in descriptor.get("scopes", []) or ["READ"])
    # Not stored on the site yet: the app must accept `installed` first.
    app = InstalledApp(
        key=key,
        base_url=descriptor["baseUrl"].rstrip("/"),
        client_key=client_key(site),
        # A fresh secret on every install, as Jira does since signed-install (§2.4).
        shared_secret=secrets.token_urlsafe(64)[:86],
        oauth_client_id=previous.oauth_client_id if previous else secrets.token_urlsafe(24),
        descriptor=descriptor,
        scopes=scopes,
        enabled=True,
        app_account_id=previous.app_account_id if previous else "",
    )
    url = app_url(app, descriptor["lifecycle"]["installed"])
    token = install_token(sim, site, app, url, tamper=tamper)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        try:
            response = await _post_lifecycle(client, url, lifecycle_payload(site, app, "installed"), token)
        except httpx.HTTPError as exc:
            raise InstallError(502, {"error": "installed_callback_unreachable", "key": key,
                                     "message": str(exc)}) from exc
    if not 200 <= response.status_code < 300:
        raise InstallError(502, {"error": "installed_callback_failed", "key": key,
                                 "status": response.status_code, "body": response.text[:2000]})
    _store(site, app)
    # `enabled` follows a successful install; it is an asynchronous notification, so its outcome
    # does not change the install result.
    send_enable_state(site, app, "enabled")
    return app


def _store(site: Site, app: InstalledApp) -> None:
    """Store the app and give it its app user (Jira creates one per installed Connect app)."""
    if not app.app_account_id or app.app_account_id not in site.users:
        account = site.add_user(f"{app.key}@connect.atlassian.com", display_name(app.descriptor),
                                account_type="app", account_id=app.app_account_id or None)
        app.app_account_id = account.account_id
    account = site.users[app.app_account_id]
    account.active = True
    # App users sit in the atlassian-addons-project-access role (every project permission); the
    # ADMIN scope also makes them Jira administrators. Scopes still limit what the app may do.
    account.default_permissions = PROJECT_PERMISSIONS
    account.global_permissions = frozenset({ADMINISTER}) if "ADMIN" in app.scopes else frozenset()
    site.apps[app.key] = app


def _remove(site: Site, key: str) -> None:
    """Forget the app and revoke the OAuth tokens it was granted."""
    app = site.apps.pop(key, None)
    if app is not None and app.app_account_id in site.users:
        # Jira deactivates the app user on uninstall; its history stays attributed to it.
        site.users[app.app_account_id].active = False
    for token, grant in list(site.oauth_tokens.items()):
        if grant.app_key == key:
            del site.oauth_tokens[token]


def _queue_lifecycle(site: Site, app: InstalledApp, event: str, url: str, token: str | None) -> None:
    """Sign now, deliver later: the callback goes to the site's lifecycle dispatcher."""
    headers = {"Authorization": f"JWT {token}"} if token is not None else {}
    body = json.dumps(lifecycle_payload(site, app, event)).encode()
    lifecycle(site).dispatcher.submit(Message(url=url, event=event, body=body, kind="lifecycle",
                                              app_key=app.key, sign=lambda _url, _body: headers))


def send_enable_state(site: Site, app: InstalledApp, event: str) -> None:
    """Queue the HS256-signed `enabled`/`disabled` lifecycle if the descriptor declares it."""
    path = (app.descriptor.get("lifecycle") or {}).get(event)
    if not isinstance(path, str):
        return
    url = app_url(app, path)
    token = app_request_token(client_key=app.client_key, shared_secret=app.shared_secret, method="POST",
                              url=url, app_base_url=app.base_url, sub=site.admin_account_id(),
                              ttl=LIFECYCLE_TOKEN_TTL, now=lifecycle(site).now())
    _queue_lifecycle(site, app, event, url, token)


async def uninstall(sim: Sites, site: Site, key: str) -> None:
    """Queue `disabled` (if enabled) then the signed `uninstalled`, and remove the app at once."""
    app = site.apps.get(key)
    if app is None:
        raise InstallError(404, {"error": f"app {key} is not installed"})
    if app.enabled:
        send_enable_state(site, app, "disabled")
    path = (app.descriptor.get("lifecycle") or {}).get("uninstalled")
    if isinstance(path, str):
        url = app_url(app, path)
        _queue_lifecycle(site, app, "uninstalled", url, install_token(sim, site, app, url))
    _remove(site, key)


async def set_enabled(site: Site, key: str, enabled: bool) -> InstalledApp:
    app = site.apps.get(key)
    if app is None:
        raise InstallError(404, {"error": f"app {key} is not installed"})
    app.enabled = enabled
    send_enable_state(site, app, "enabled" if enabled else "disabled")
    return app


def describe(app: InstalledApp) -> dict[str, Any]:
    return {
        "key": app.key,
        "name": display_name(app.descriptor),
        "baseUrl": app.base_url,
        "clientKey": app.client_key,
        "oauthClientId": app.oauth_client_id,
        "appAccountId": app.app_account_id,
        "scopes": sorted(app.scopes),
        "enabled": app.enabled,
        "status": "enabled" if app.enabled else "disabled",
    }


def routes(sim: Sites, site: Site) -> list[Route]:
    async def install_route(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "JSON body required"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "JSON object required"}, status_code=400)
        try:
            app = await install(sim, site, body.get("descriptorUrl"), descriptor=body.get("descriptor"),
                                tamper=body.get("tamper"))
        except InstallError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        return JSONResponse({**describe(app), "status": "installed", "installKeysUrl": keys.keys_url(site),
                             "oauthUrl": site.base_url})

    async def list_route(request: Request) -> Response:
        return JSONResponse({"apps": [describe(a) for a in site.apps.values()]})

    async def action_route(request: Request) -> Response:
        key, action = request.path_params["key"], request.path_params["action"]
        try:
            # The callbacks are queued: /_jirasim/lifecycle/deliveries shows how the app answered.
            if action == "uninstall":
                await uninstall(sim, site, key)
                return JSONResponse({"key": key, "status": "uninstalled"})
            if action in ("enable", "disable"):
                app = await set_enabled(site, key, action == "enable")
                return JSONResponse(describe(app))
        except InstallError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        return JSONResponse({"error": f"unknown action {action}"}, status_code=404)

    async def secret_route(request: Request) -> Response:
        # Tests of apps sometimes need to mint tokens the way the site would (e.g. a context JWT).
        app = site.apps.get(request.path_params["key"])
        if app is None:
            return JSONResponse({"error": "not installed"}, status_code=404)
        return JSONResponse({**describe(app), "sharedSecret": app.shared_secret})

    async def clock_route(request: Request) -> Response:
        state = lifecycle(site)
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return JSONResponse({"error": "JSON object required"}, status_code=400)
            offset, advance = body.get("offset_ms"), body.get("advance_ms")
            if not any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (offset, advance)):
                return JSONResponse({"error": "offset_ms (absolute) or advance_ms (relative) required"},
                                    status_code=400)
            if isinstance(offset, (int, float)) and not isinstance(offset, bool):
                state.clock_offset = offset / 1000
            if isinstance(advance, (int, float)) and not isinstance(advance, bool):
                state.clock_offset += advance / 1000
        return JSONResponse({"now": state.now(), "offset_ms": int(state.clock_offset * 1000)})

    return [
        *dispatcher_routes("/_jirasim/lifecycle", lifecycle(site).dispatcher),
        Route("/_jirasim/lifecycle/clock", clock_route, methods=["GET", "POST"]),
        Route("/_jirasim/apps/install", install_route, methods=["POST"]),
        Route("/_jirasim/apps", list_route, methods=["GET"]),
        Route("/_jirasim/apps/{key}", secret_route, methods=["GET"]),
        Route("/_jirasim/apps/{key}/{action}", action_route, methods=["POST"]),
    ]

