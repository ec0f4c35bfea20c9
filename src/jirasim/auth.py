"""Who is calling: Connect JWT (an installed app), OAuth bearer (a user through an app), Basic
(email + API token), or nobody — and what that caller may do.

`authenticate` never trusts a claim it has not verified; wrong or expired credentials are a 401 in
Jira's JSON shape. An app acts as its app user with its descriptor scopes; a bearer token acts as
the user, limited to the issuing app's scopes.
"""
from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

import jwt
from starlette.requests import HTTPConnection

from jirasim import qsh as qsh_mod
from jirasim.errors import NOT_AUTHENTICATED, JiraError
from jirasim.model import ADMINISTER, GLOBAL_PERMISSIONS, PROJECT_PERMISSIONS, Site

JWT_LEEWAY_SECONDS = 30  # Jira tolerates a little clock skew on app tokens

# Connect scopes imply the weaker ones (READ < WRITE < DELETE < PROJECT_ADMIN < ADMIN).
SCOPE_ORDER = ["READ", "WRITE", "DELETE", "PROJECT_ADMIN", "ADMIN"]
# Which scope each permission needs when exercised through an app (JWT or bearer).
PERMISSION_SCOPE = {
    "BROWSE_PROJECTS": "READ", "EDIT_ISSUES": "WRITE", "LINK_ISSUES": "WRITE", "SCHEDULE_ISSUES": "WRITE",
    "ADMINISTER_PROJECTS": "PROJECT_ADMIN", "ADMINISTER": "ADMIN",
}


@dataclass(slots=True, frozen=True)
class Caller:
    kind: str  # "user" | "app" | "anonymous"
    account_id: str | None
    app_key: str | None
    scopes: frozenset[str] | None  # None: not limited by app scopes (Basic)

    @property
    def label(self) -> str:
        """How request counters name this caller."""
        if self.kind == "app":
            return f"app:{self.app_key}"
        if self.kind == "user":
            return f"user:{self.account_id}"
        return "anonymous"


ANONYMOUS = Caller("anonymous", None, None, None)


def effective_scopes(scopes: frozenset[str] | set[str] | None) -> frozenset[str] | None:
    if scopes is None:
        return None
    out = {s.upper() for s in scopes}
    for s in list(out):
        if s in SCOPE_ORDER:
            out.update(SCOPE_ORDER[: SCOPE_ORDER.index(s) + 1])
    return frozenset(out)


def _unauthorized(message: str = NOT_AUTHENTICATED) -> JiraError:
    return JiraError(401, [message])


async def authenticate(request: HTTPConnection, site: Site) -> Caller:
    """Verify the request's credentials against `site`; 401 `JiraError` if they are wrong."""
    caller = _authenticate(request, site)
    request.scope["jirasim.caller"] = caller
    return caller


def _authenticate(request: HTTPConnection, site: Site) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if not header:
        token = request.query_params.get("jwt")
        if token:
            return _connect_jwt(request, site, token)
        return ANONYMOUS
    if scheme == "jwt":
        return _connect_jwt(request, site, credentials)
    if scheme == "bearer":
        return _bearer(site, credentials)
    if scheme == "basic":
        return _basic(site, credentials)
    raise _unauthorized()


def _basic(site: Site, credentials: str) -> Caller:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized() from None
    email, sep, token = decoded.partition(":")
    user = site.user_by_email(email) if sep else None
    if user is None or not user.active or not user.api_token or user.api_token != token:
        raise _unauthorized()
    return Caller("user", user.account_id, None, None)


def _bearer(site: Site, token: str) -> Caller:
    grant = site.oauth_tokens.get(token)
    if grant is None or grant.expires_at <= time.time():
        raise _unauthorized()
    user = site.users.get(grant.account_id)
    if user is None or not user.active:
        raise _unauthorized()
    app = site.apps.get(grant.app_key)
    if app is not None and not app.enabled:
        raise _unauthorized()
    # The token's grant, bounded by what the app holds now (its descriptor may have lost a scope).
    if app is None:
        return Caller("user", grant.account_id, grant.app_key, effective_scopes(frozenset()))
    scopes = effective_scopes(grant.scopes) & effective_scopes(app.scopes)
    return Caller("user", grant.account_id, grant.app_key, scopes)


def _connect_jwt(request: HTTPConnection, site: Site, token: str) -> Caller:
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _unauthorized() from None
    if header.get("alg") != "HS256":
        raise _unauthorized()
    app = site.apps.get(str(unverified.get("iss")))
    if app is None or not app.enabled:
        raise _unauthorized()
    try:
        claims = jwt.decode(
            token, app.shared_secret, algorithms=["HS256"], leeway=JWT_LEEWAY_SECONDS,
            options={"require": ["iss", "iat", "exp", "qsh"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("Authentication failed: the JWT has expired.") from None
    except jwt.PyJWTError:
        raise _unauthorized() from None
    # Jira Cloud has no context path, so the path is hashed as the client sent it (decoded).
    expected = qsh_mod.qsh(request.method if hasattr(request, "method") else "GET", request.url.path,
                           request.scope.get("query_string", b"").decode("latin-1"))
    if claims.get("qsh") != expected:
        raise _unauthorized("Authentication failed: the query string hash (qsh) does not match the request.")
    return Caller("app", app.app_account_id, app.key, effective_scopes(app.scopes))


def identify(request: HTTPConnection, site: Site) -> str:
    """A cheap, *unverified* caller label for counters and faults (which run before auth)."""
    header = request.headers.get("authorization", "")
    scheme, _, cred = header.partition(" ")
    scheme = scheme.lower()
    cred = cred.strip()
    try:
        if scheme == "basic":
            email = base64.b64decode(cred).decode("utf-8").partition(":")[0]
            user = site.user_by_email(email)
            return f"user:{user.account_id}" if user else f"user:{email}"
        if scheme == "bearer":
            grant = site.oauth_tokens.get(cred)
            return f"user:{grant.account_id}" if grant else "user:?"
        if scheme == "jwt" or request.query_params.get("jwt"):
            claims = jwt.decode(cred or request.query_params["jwt"], options={"verify_signature": False})
            return f"app:{claims.get('iss')}"
    except Exception:  # noqa: BLE001 - garbage credentials still get counted
        return "invalid"
    return "anonymous"


# --- authorisation ----------------------------------------------------------------------------------

def require_scope(caller: Caller, scope: str | None) -> None:
    """An app (or a bearer token issued to one) whose descriptor lacks `scope` gets 403."""
    if scope is None or caller.scopes is None:
        return
    if scope.upper() not in caller.scopes:
        raise JiraError(403, [f"The app is not allowed to perform this operation: it needs the {scope} scope "
                              f"(declared in the app descriptor)."])


def require_user(caller: Caller) -> None:
    if caller.kind == "anonymous":
        raise JiraError(401, [NOT_AUTHENTICATED])


def can(site: Site, caller: Caller, permission: str, project_id: int | None = None) -> bool:
    """Whether the caller holds `permission` (in `project_id`, or anywhere when None)."""
    if caller.kind == "anonymous":
        return False
    if caller.scopes is not None:
        needed = PERMISSION_SCOPE.get(permission, "READ")
        if needed not in caller.scopes:
            return False
    if caller.kind == "app" and caller.account_id not in site.users:
        # An app user without a user record: Connect app users sit in the
        # atlassian-addons-project-access role, which holds every project permission.
        if permission in GLOBAL_PERMISSIONS:
            return permission == ADMINISTER and "ADMIN" in (caller.scopes or ())
        return permission in PROJECT_PERMISSIONS
    return site.has_permission(caller.account_id, permission, project_id)


def browsable_projects(site: Site, caller: Caller) -> set[int]:
    return {pid for pid in site.projects if can(site, caller, "BROWSE_PROJECTS", pid)}
