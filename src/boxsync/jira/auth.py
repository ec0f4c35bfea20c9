"""Who a request is sent as: the app (Connect JWT), a user (OAuth Bearer) or a technical user (Basic).

A strategy turns one outgoing request into its `Authorization` header. It is asked again for every
attempt, so a retried request carries fresh credentials. Secrets are kept out of `repr()`.
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import jwt

from boxsync.connect.qsh import query_hash

from .oauth import OAuthTokens

JWT_LIFETIME = 180  # seconds; what ACE, ACSB and others use for app-to-Jira tokens

Query = Sequence[tuple[str, str]]


class Auth(Protocol):
    async def authorization(self, method: str, path: str, query: Query) -> str:
        """The `Authorization` header for `method` on `path` (decoded, relative to the site's base
        path) with the decoded `query` pairs exactly as they are sent."""

    def invalidate(self) -> bool:
        """Jira answered 401: drop cached credentials; True if a retry with new ones may succeed."""


@dataclass(frozen=True)
class AppJwt:
    """As the app itself: HS256 with the tenant's shared secret, bound to the request by its qsh."""

    app_key: str
    shared_secret: str = field(repr=False)
    lifetime: int = JWT_LIFETIME
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def token(self, method: str, path: str, query: Query) -> str:
        iat = int(self.clock())
        claims = {
            "iss": self.app_key,
            "iat": iat,
            "exp": iat + self.lifetime,
            "qsh": query_hash(method, path, query),
        }
        return jwt.encode(claims, self.shared_secret, algorithm="HS256")

    async def authorization(self, method: str, path: str, query: Query) -> str:
        return "JWT " + self.token(method, path, query)

    def invalidate(self) -> bool:
        return False  # a fresh JWT is minted per request: retrying would only fail again


@dataclass(frozen=True)
class UserToken:
    """As a user of the tenant (needs the ACT_AS_USER scope and the install's oauthClientId)."""

    tokens: OAuthTokens = field(repr=False)
    client_key: str
    base_url: str
    oauth_client_id: str
    account_id: str
    shared_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ()

    async def authorization(self, method: str, path: str, query: Query) -> str:
        token = await self.tokens.access_token(
            client_key=self.client_key, base_url=self.base_url, shared_secret=self.shared_secret,
            oauth_client_id=self.oauth_client_id, account_id=self.account_id, scopes=self.scopes,
        )
        return "Bearer " + token

    def invalidate(self) -> bool:
        # A cached token can be revoked or expire early; one fresh exchange is worth a try.
        return self.tokens.forget(self.client_key, self.account_id, self.scopes)


@dataclass(frozen=True)
class BasicAuth:
    """As a technical user: Atlassian account email + API token (for additional Jira sites)."""

    email: str
    api_token: str = field(repr=False)

    async def authorization(self, method: str, path: str, query: Query) -> str:
        return "Basic " + base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode("ascii")

    def invalidate(self) -> bool:
        return False
