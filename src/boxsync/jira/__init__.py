"""The async Jira Cloud REST client: one shared HTTP pool, per-tenant clients, typed errors.

    http = new_http_client(addresses=PRODUCTION)  # once, at startup (boxsync.netpolicy: which addresses)
    tokens = OAuthTokens(http, settings.oauth_url)  # once, the user-token cache
    jira = app_client(http, tenant, settings.app_key)        # as the app (Connect JWT)
    jira = user_client(http, tokens, tenant, account_id)     # as a user (OAuth 2.0 JWT-bearer)
    jira = basic_client(http, base_url, email, api_token)    # as a technical user (Basic)
"""
from .auth import AppJwt, Auth, BasicAuth, UserToken
from .client import JiraClient, app_client, basic_client, user_client
from .errors import (
    JiraAuthError,
    JiraBadRequest,
    JiraConflict,
    JiraError,
    JiraForbidden,
    JiraNotFound,
    JiraRateLimited,
    JiraUnauthorized,
    JiraUnavailable,
    UndeclaredOperation,
    UnsafeUrlError,
)
from .oauth import OAuthTokens
from .operations import OPERATIONS, Operation
from .retry import DEFAULT_POLICY, RetryPolicy
from .transport import new_http_client

__all__ = [
    "AppJwt", "Auth", "BasicAuth", "DEFAULT_POLICY", "JiraAuthError", "JiraBadRequest", "JiraClient",
    "JiraConflict", "JiraError", "JiraForbidden", "JiraNotFound", "JiraRateLimited", "JiraUnauthorized",
    "JiraUnavailable", "OAuthTokens", "OPERATIONS", "Operation", "RetryPolicy", "UndeclaredOperation",
    "UnsafeUrlError", "UserToken", "app_client", "basic_client", "new_http_client", "user_client",
]
