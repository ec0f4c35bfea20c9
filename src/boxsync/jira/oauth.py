"""Acting as a user: OAuth 2.0 JWT-bearer token exchange ("2LOi") with a per-process token cache.

The app signs an assertion naming the user with the tenant's shared secret and trades it at the
authorization server for a short-lived Bearer token (connect-protocol.md §4.2). Tokens are cached
per (tenant, user, scopes) until shortly before they expire, and concurrent callers needing the same
token share one exchange: a sync touching many issues as one user must not hammer the token server.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import httpx
import jwt

from .errors import JiraAuthError, JiraRateLimited, JiraUnavailable, error_from_response
from .retry import DEFAULT_POLICY, RetryPolicy, parse_retry_after
from .transport import send

logger = logging.getLogger("boxsync.jira")

DEFAULT_OAUTH_URL = "https://oauth-2-authorization-server.services.atlassian.com"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 60  # Atlassian rejects assertions expiring more than ~120 s ahead

TokenKey = tuple[str, str, tuple[str, ...]]  # (clientKey, accountId, sorted scopes)


def assertion(
    *,
    shared_secret: str,
    oauth_client_id: str,
    account_id: str,
    base_url: str,
    oauth_url: str,
    now: float | None = None,
) -> str:
    """The signed JWT-bearer assertion: "this app, on this site, acting as this user"."""
    iat = int(time.time() if now is None else now)
    claims = {
        "iss": f"urn:atlassian:connect:clientid:{oauth_client_id}",
        "sub": f"urn:atlassian:connect:useraccountid:{account_id}",
        "tnt": base_url.rstrip("/"),
        "aud": oauth_url.rstrip("/"),
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME,
    }
    return jwt.encode(claims, shared_secret, algorithm="HS256")


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Upper-case, de-duplicated, sorted: the cache key and the `scope` form value agree on it."""
    return tuple(sorted({s.strip().upper() for s in scopes if s.strip()}))


def cache_lifetime(expires_in: float, margin: float) -> float:
    """How long to reuse a token: `expires_in` minus the margin, but at least half its life so that
    an unusually short-lived token is still reused."""
    return max(expires_in - margin, expires_in / 2, 0.0)


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # on the cache's (monotonic) clock


class OAuthTokens:
    """The process-wide user-token cache; create one at startup next to the HTTP pool."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        oauth_url: str = DEFAULT_OAUTH_URL,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.http = http
        self.oauth_url = oauth_url.rstrip("/")
        self.policy = policy
        self.margin = margin
        self.clock = clock  # injectable so that tests can expire tokens without sleeping
        self.max_entries = max_entries
        self._tokens: dict[TokenKey, AccessToken] = {}
        self._pending: dict[TokenKey, asyncio.Task[AccessToken]] = {}
        self.exchanges = 0  # token requests made (observability, tests)

    async def access_token(
        self,
        *,
        client_key: str,
        base_url: str,
        shared_secret: str,
        oauth_client_id: str,
        account_id: str,
        scopes: Iterable[str] = (),
    ) -> str:
        scope_key = normalize_scopes(scopes)
        key: TokenKey = (client_key, account_id, scope_key)
        cached = self._tokens.get(key)
        if cached is not None and cached.expires_at > self.clock():
            return cached.value
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._exchange(key, base_url, shared_secret, oauth_client_id))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        # shield: one waiter being cancelled must not cancel the exchange the others are waiting for.
        token = await asyncio.shield(task)
        return token.value

    def forget(self, client_key: str, account_id: str, scopes: Iterable[str] = ()) -> bool:
        """Drop a cached token (Jira answered 401 with it); True if there was one."""
        return self._tokens.pop((client_key, account_id, normalize_scopes(scopes)), None) is not None

    def forget_tenant(self, client_key: str) -> None:
        """Drop every token of a tenant (uninstalled, or its shared secret changed)."""
        for key in [k for k in self._tokens if k[0] == client_key]:
            del self._tokens[key]

    def _settled(self, key: TokenKey, task: asyncio.Task[AccessToken]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure nobody awaited any more is not reported as lost

    async def _exchange(self, key: TokenKey, base_url: str, shared_secret: str,
                        oauth_client_id: str) -> AccessToken:
        client_key, account_id, scopes = key
        url = f"{self.oauth_url}/oauth2/token"

        async def prepare() -> dict[str, Any]:
            # A fresh assertion per attempt: it lives 60 s, a Retry-After wait may be 30.
            form = {
                "grant_type": GRANT_TYPE,
                "assertion": assertion(shared_secret=shared_secret, oauth_client_id=oauth_client_id,
                                       account_id=account_id, base_url=base_url, oauth_url=self.oauth_url),
            }
            if scopes:
                form["scope"] = " ".join(scopes)
            return {"data": form}

        self.exchanges += 1
        response = await send(self.http, "POST", url, prepare=prepare, idempotent=True, policy=self.policy)
        if response.status_code == 429:
            raise error_from_response(response, cls=JiraRateLimited,
                                      retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 500:
            raise error_from_response(response, cls=JiraUnavailable)
        if not response.is_success:
            raise error_from_response(response, cls=JiraAuthError)
        try:
            body = response.json()
            value = body["access_token"]
            expires_in = float(body.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise JiraAuthError(response.status_code, ["token response without access_token"],
                                method="POST", url=url) from exc
        if not isinstance(value, str) or not value or expires_in <= 0:
            raise JiraAuthError(response.status_code, ["token response without a usable access_token"],
                                method="POST", url=url)
        token = AccessToken(value, self.clock() + cache_lifetime(expires_in, self.margin))
        self._store(key, token)
        logger.info("Obtained user token for tenant %s (expires in %d s)", client_key, int(expires_in))
        return token

    def _store(self, key: TokenKey, token: AccessToken) -> None:
        if len(self._tokens) >= self.max_entries:
            now = self.clock()
            for stale in [k for k, t in self._tokens.items() if t.expires_at <= now]:
                del self._tokens[stale]
            while len(self._tokens) >= self.max_entries:  # still full: drop the oldest inserted
                del self._tokens[next(iter(self._tokens))]
        self._tokens[key] = token

