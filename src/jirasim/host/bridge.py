"""The few things the host needs from the core model (`jirasim.model`), in one place.

The host modules go through here so they depend on a handful of functions, not on the model's layout.
"""
from __future__ import annotations

import functools
import time
from typing import Any, Iterable

from jirasim import model


def base_url(site: Any) -> str:
    return str(site.base_url).rstrip("/")


def sites_of(sim: Any) -> Iterable[Any]:
    return list(getattr(sim, "sites", {}).values())


def now() -> float:
    return time.time()


def admin_account_id(site: Any) -> str:
    """The site admin: the default admin if present, else any user holding ADMINISTER."""
    if model.DEFAULT_ADMIN_ACCOUNT_ID in site.users:
        return model.DEFAULT_ADMIN_ACCOUNT_ID
    for user in site.users.values():
        if model.ADMINISTER in user.global_permissions:
            return user.account_id
    return model.DEFAULT_ADMIN_ACCOUNT_ID


def user(site: Any, account_id: str | None) -> Any | None:
    return site.users.get(account_id) if account_id else None


def is_admin(site: Any, account_id: str | None) -> bool:
    return site.has_permission(account_id, model.ADMINISTER)


def can_browse(site: Any, account_id: str | None, issue: Any) -> bool:
    return site.has_permission(account_id, model.BROWSE, issue.project_id)


def apps(site: Any) -> dict[str, Any]:
    return site.apps


def new_installed_app(site: Any, *, key: str, base_url: str, client_key: str, shared_secret: str,
                      oauth_client_id: str, descriptor: dict, scopes: frozenset[str], enabled: bool,
                      app_account_id: str | None) -> Any:
    """An `InstalledApp` not yet stored on the site (the app must accept `installed` first)."""
    return model.InstalledApp(key, base_url, client_key, shared_secret, oauth_client_id, descriptor,
                              scopes, enabled, app_account_id or "")


def store_app(site: Any, app: Any) -> None:
    """Store the app and give it its app user (Jira creates one per installed Connect app)."""
    if not app.app_account_id or app.app_account_id not in site.users:
        name = descriptor_name(app.descriptor)
        account = site.add_user(f"{app.key}@connect.atlassian.com", name, account_type="app",
                                account_id=app.app_account_id or None)
        app.app_account_id = account.account_id
    account = site.users[app.app_account_id]
    account.active = True
    # App users sit in the atlassian-addons-project-access role (every project permission); the
    # ADMIN scope also makes them Jira administrators. Scopes still limit what the app may do.
    account.default_permissions = model.PROJECT_PERMISSIONS
    account.global_permissions = frozenset({model.ADMINISTER}) if "ADMIN" in app.scopes else frozenset()
    site.apps[app.key] = app


def remove_app(site: Any, key: str) -> None:
    app = site.apps.pop(key, None)
    if app is not None and app.app_account_id in site.users:
        # Jira deactivates the app user on uninstall; its history stays attributed to it.
        site.users[app.app_account_id].active = False
    for token, grant in list(site.oauth_tokens.items()):
        if grant.app_key == key:
            del site.oauth_tokens[token]


def update_app(site: Any, app: Any, **changes: Any) -> Any:
    for name, value in changes.items():
        setattr(app, name, value)
    return app


def descriptor_name(descriptor: dict) -> str:
    name = descriptor.get("name")
    if isinstance(name, dict):
        name = name.get("value")
    return str(name or descriptor.get("key"))


def issue(site: Any, key_or_id: str) -> Any | None:
    return site.issue(key_or_id)


def render_issue(site: Any, issue: Any) -> dict:
    from jirasim.render import render_issue as render

    return render(site, issue)


def render_user(site: Any, account_id: str | None) -> dict | None:
    from jirasim.render import render_user as render

    found = user(site, account_id)
    return render(found, site) if found else None


def new_oauth_token(access_token: str, account_id: str, app_key: str, expires_at: float) -> Any:
    return model.OAuthToken(access_token, account_id, app_key, expires_at)


@functools.lru_cache(maxsize=512)
def _parse_jql(jql: str) -> Any:
    # Webhook filters are few and evaluated on every event: parse each once (failures not cached).
    from jirasim import jql as core_jql

    return core_jql.parse(jql)


def jql_matches(site: Any, jql: str, issue_json: dict | None) -> bool | None:
    """The core JQL engine's verdict on the live issue behind `issue_json`, or None when it cannot
    judge (issue deleted, or a clause the core engine does not support). With `issue_json` None:
    True if the core engine parses `jql`, else None."""
    from jirasim import jql as core_jql

    try:
        query = _parse_jql(jql)
        if issue_json is None:
            return True
        live = site.issue(str(issue_json.get("id", "")))
        if live is None or live.key != issue_json.get("key"):
            return None
        return bool(core_jql.matches(site, query, live))
    except Exception:  # noqa: BLE001 - JqlError or an unsupported clause: let the caller fall back
        return None


def _error(status: int, message: str) -> Any:
    from jirasim.errors import error_response

    return error_response(status, [message])


async def _caller(request: Any, site: Any) -> tuple[Any, Any]:
    from jirasim.auth import authenticate
    from jirasim.errors import NOT_AUTHENTICATED, JiraError, error_response

    try:
        caller = await authenticate(request, site)
    except JiraError as exc:
        return None, error_response(exc.status, exc.messages, exc.errors, exc.headers)
    if caller.kind == "anonymous":
        return None, _error(401, NOT_AUTHENTICATED)
    return caller, None


async def calling_app(request: Any, site: Any) -> tuple[Any, Any]:
    """(InstalledApp, None) when an installed Connect app calls with its JWT, else (None, error
    response): Jira answers 403 to users calling the app-only webhook APIs."""
    caller, denied = await _caller(request, site)
    if denied is not None:
        return None, denied
    from jirasim.auth import require_scope
    from jirasim.errors import JiraError, error_response

    app = site.apps.get(caller.app_key) if caller.kind == "app" and caller.app_key else None
    if app is None:
        return None, _error(403, "Only Connect and OAuth 2.0 apps can use this operation.")
    try:
        require_scope(caller, "READ")  # the spec's x-atlassian-connect-scope for the webhook APIs
    except JiraError as exc:
        return None, error_response(exc.status, exc.messages, exc.errors)
    return app, None


async def calling_admin(request: Any, site: Any) -> tuple[str | None, Any]:
    """(accountId, None) for a Jira administrator, else (None, error response)."""
    caller, denied = await _caller(request, site)
    if denied is not None:
        return None, denied
    if not is_admin(site, caller.account_id):
        return None, _error(403, "You must be a Jira administrator to manage webhooks.")
    return caller.account_id, None
