"""OAuth 2.0 JWT-bearer token endpoint: a Connect app acting as a user (connect-protocol.md §4.2).

Real Jira has one authorization server for all sites; here every site serves `POST /oauth2/token` and
the assertion's `aud` must be the base URL of the site it is posted to (BoxSync's BOXSYNC_OAUTH_URL
points at a site base). The installed app is found across the whole Simulator by its oauthClientId,
its site by `tnt`; the access token is stored in that site's `oauth_tokens`, where the core's
`authenticate` honours `Authorization: Bearer`.
"""
from __future__ import annotations


import secrets
import time
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jirasim.model import InstalledApp, OAuthToken, Site, Sites

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ISS_PREFIX = "urn:atlassian:connect:clientid:"
SUB_PREFIX = "urn:atlassian:connect:useraccountid:"
TOKEN_TTL = 900
MAX_ASSERTION_LIFETIME = 120  # "Atlassian rejects assertions expiring more than 120 seconds in the future"
LEEWAY = 30


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _find_app(sim: Sites, client_id: str) -> tuple[Site, InstalledApp] | None:
    for site in sim.sites.values():
        for app in site.apps.values():
            if app.oauth_client_id == client_id:
                return site, app
    return None


def exchange(sim: Sites, token_site: Site, assertion: str, requested_scope: str | None) -> dict[str, Any]:
    """Verify a JWT-bearer assertion and mint an access token; raises `OAuthError`."""
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise OAuthError("invalid_grant", f"Malformed assertion: {exc}") from exc
    if header.get("alg") != "HS256":
        raise OAuthError("invalid_grant", "Assertion must be signed with HS256")
    iss = unverified.get("iss")
    if not isinstance(iss, str) or not iss.startswith(ISS_PREFIX):
        raise OAuthError("invalid_grant", f"iss must be {ISS_PREFIX}<oauthClientId>")
    found = _find_app(sim, iss[len(ISS_PREFIX):])
    if found is None:
        raise OAuthError("invalid_client", "Unknown OAuth client", 401)
    site, app = found
    try:
        claims = jwt.decode(
            assertion, app.shared_secret, algorithms=["HS256"], audience=token_site.base_url,
            leeway=LEEWAY, options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.InvalidAudienceError as exc:
        raise OAuthError("invalid_grant", f"aud must be {token_site.base_url}") from exc
    except jwt.ExpiredSignatureError as exc:
        raise OAuthError("invalid_grant", "Assertion has expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise OAuthError("invalid_grant", "Assertion signature is invalid", 401) from exc
    except jwt.PyJWTError as exc:
        raise OAuthError("invalid_grant", f"Invalid assertion: {exc}") from exc
    if claims["exp"] > time.time() + MAX_ASSERTION_LIFETIME:
        raise OAuthError("invalid_grant", f"Assertion expires more than {MAX_ASSERTION_LIFETIME} s in the future")
    tnt = claims.get("tnt")
    if not isinstance(tnt, str) or tnt.rstrip("/") != site.base_url:
        raise OAuthError("invalid_grant", "tnt must be the base URL of the site the app is installed on")
    if not app.enabled:
        raise OAuthError("unauthorized_client", "The app is disabled", 401)
    if "ACT_AS_USER" not in app.scopes:
        raise OAuthError("unauthorized_client", "The app does not have the ACT_AS_USER scope", 401)
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.startswith(SUB_PREFIX):
        raise OAuthError("invalid_grant", f"sub must be {SUB_PREFIX}<accountId>")
    account_id = sub[len(SUB_PREFIX):]
    user = site.users.get(account_id)
    if user is None or not user.active:
        raise OAuthError("invalid_grant", "The user does not exist or is inactive")

    granted = set(app.scopes) - {"ACT_AS_USER"}
    if requested_scope:
        requested = {s.upper() for s in requested_scope.split()}
        if not requested <= set(app.scopes):
            raise OAuthError("invalid_scope", "Requested scopes exceed the app's scopes")
        granted = requested
    access_token = secrets.token_urlsafe(32)
    site.oauth_tokens[access_token] = OAuthToken(access_token, account_id, app.key, time.time() + TOKEN_TTL,
                                                 frozenset(granted))
    return {"access_token": access_token, "expires_in": TOKEN_TTL, "token_type": "Bearer",
            "scope": " ".join(sorted(granted))}


def routes(sim: Sites, site: Site) -> list[Route]:
    async def token(request: Request) -> Response:
        form = await request.form()
        try:
            if form.get("grant_type") != GRANT_TYPE:
                raise OAuthError("unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
            assertion = form.get("assertion")
            if not isinstance(assertion, str) or not assertion:
                raise OAuthError("invalid_request", "assertion is required")
            scope = form.get("scope")
            body = exchange(sim, site, assertion, scope if isinstance(scope, str) else None)
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description},
                                status_code=exc.status, headers={"Cache-Control": "no-store"})
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return [Route("/oauth2/token", token, methods=["POST"])]
