"""JWTs that a Jira site signs for Connect apps: the query-string hash and the token shapes.

Jira signs four kinds of tokens for an app (connect-protocol.md §2.3, §3.2, §3.6):
* lifecycle install/uninstall: RS256 with the site's install key (header `kid`), `aud` = app baseUrl;
* iframe loads, webhooks, enabled/disabled: HS256 with the shared secret and a computed `qsh`;
* context tokens for `AP.context.getToken()`: HS256 with the fixed claim `qsh = "context-qsh"`.
The canonical request is computed relative to the app's baseUrl path, the way a proxy-tolerant app
verifies it (§3.4), so apps mounted under a path prefix see the same hash.
"""
from __future__ import annotations

import time

import jwt

from jirasim.qsh import qsh_for_url

IFRAME_TOKEN_TTL = 180  # seconds; Jira-issued iframe JWTs observed with exp - iat = 180 (§3.2)
LIFECYCLE_TOKEN_TTL = 900  # observed lifecycle token lifetime (§2.3)
CONTEXT_TOKEN_TTL = 15 * 60
CONTEXT_QSH = "context-qsh"


def query_string_hash(method: str, url: str, base_url: str = "") -> str:
    """qsh of a request to `url` (absolute, or path + query) relative to the app's `base_url` path."""
    return qsh_for_url(method, url, base_url)


def hs256(claims: dict, secret: str) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


def app_request_token(
    *, client_key: str, shared_secret: str, method: str, url: str, app_base_url: str,
    sub: str | None = None, ttl: int = IFRAME_TOKEN_TTL, now: float | None = None,
) -> str:
    """HS256 token for a request from Jira to an app (iframe, webhook, enabled/disabled)."""
    issued = int(now if now is not None else time.time())
    claims: dict = {
        "iss": client_key,
        "iat": issued,
        "exp": issued + ttl,
        "qsh": query_string_hash(method, url, app_base_url),
        "context": {},
    }
    if sub:
        claims["sub"] = sub
    return hs256(claims, shared_secret)


def context_token(*, client_key: str, shared_secret: str, sub: str | None, context: dict | None = None,
                  now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict = {"iss": client_key, "iat": issued, "exp": issued + CONTEXT_TOKEN_TTL,
                    "qsh": CONTEXT_QSH, "context": context or {}}
    if sub:
        claims["sub"] = sub
    return hs256(claims, shared_secret)
