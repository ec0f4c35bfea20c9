"""Webhooks out of a simulated site: the three registration kinds, payloads and their REST APIs.

Kinds (bigpicture-and-jira.md §2.7):
* Connect descriptor webhooks (`modules.webhooks`) of installed, enabled apps; JWT-signed.
* Dynamic webhooks (`/rest/api/3/webhook`), registered by Connect apps; JWT-signed, expire after
  30 days unless refreshed, carry `matchedWebhookIds`, never `issuelink_*` events.
* Admin webhooks (`/rest/webhooks/1.0/webhook`), registered by a Jira admin; optionally HMAC-signed
  (`X-Hub-Signature: sha256=<hex>`).
A site's `listeners` receive the core's `ChangeEvent`s; `on_change` turns each into messages for the
delivery worker (`jirasim.host.delivery`).
"""
from __future__ import annotations


import functools
import hashlib
import hmac
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jirasim import jql
from jirasim.auth import authenticate, require_scope, require_user
from jirasim.errors import JiraError
from jirasim.host.delivery import PRIMARY, SECONDARY, Dispatcher, Message, dispatcher_routes
from jirasim.host.signing import app_request_token
from jirasim.host.state import attached
from jirasim.model import ADMINISTER, ChangeEvent, InstalledApp, Issue, Site, Sites

EVENT_NAMES = {
    "issue_created": "jira:issue_created",
    "issue_updated": "jira:issue_updated",
    "issue_deleted": "jira:issue_deleted",
    "issuelink_created": "issuelink_created",
    "issuelink_deleted": "issuelink_deleted",
}
DYNAMIC_EVENTS = frozenset({
    "jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created", "comment_updated",
    "comment_deleted", "issue_property_set", "issue_property_deleted",
})
ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted"})
DYNAMIC_LIFETIME_MS = 30 * 24 * 3600 * 1000
# The JQL fields a dynamic webhook's `jqlFilter` may use. Jira documents a subset (issueKey, project,
# issuetype, status, assignee, reporter, issue.property, cf[id]); we also take statusCategory, parent
# and labels, as the simulator always has, but no date comparisons.
DYNAMIC_FILTER_FIELDS = frozenset({"key", "project", "issuetype", "status", "statuscategory", "parent",
                                   "assignee", "reporter", "labels"})


@dataclass
class DynamicWebhook:
    id: int
    app_key: str
    url: str
    events: list[str]
    jql: str
    field_ids: list[str] | None
    property_keys: list[str] | None
    expires_ms: int

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "jqlFilter": self.jql, "events": self.events,
                               "expirationDate": self.expires_ms, "url": self.url}
        if self.field_ids is not None:
            out["fieldIdsFilter"] = self.field_ids
        if self.property_keys is not None:
            out["issuePropertyKeysFilter"] = self.property_keys
        return out


@dataclass
class AdminWebhook:
    id: int
    name: str
    url: str
    events: list[str]
    jql: str
    exclude_body: bool
    secret: str | None
    enabled: bool
    updated_by: str
    updated_ms: int


@dataclass
class WebhookState:
    dispatcher: Dispatcher = field(default_factory=Dispatcher)
    dynamic: dict[int, DynamicWebhook] = field(default_factory=dict)
    admin: dict[int, AdminWebhook] = field(default_factory=dict)
    dynamic_ids: Any = field(default_factory=lambda: itertools.count(1))
    admin_ids: Any = field(default_factory=lambda: itertools.count(1))
    clock_offset_ms: int = 0
    listener: Callable | None = None

    def now_ms(self) -> int:
        """The webhook clock: real time plus whatever a test advanced it by (for expiry)."""
        return int(time.time() * 1000) + self.clock_offset_ms


def state(site: Site) -> WebhookState:
    return attached(site, "webhooks", WebhookState)


# --- filters -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=512)
def _parse(text: str) -> jql.Query:
    # Webhook filters are few and evaluated on every event: parse each once (errors are not cached).
    return jql.parse(text)


def issue_matches(site: Site, text: str | None, issue: Issue | None) -> bool:
    """Whether the event's issue matches a webhook's JQL filter (no filter: always). `issue` is the
    event's `subject`, so this works for `jira:issue_deleted` too. A filter Jira would reject (a
    value that no longer exists, say) matches nothing rather than breaking delivery."""
    if not text or not text.strip():
        return True
    if issue is None:
        return False
    try:
        return jql.matches(site, _parse(text), issue)
    except jql.JqlError:
        return False


def dynamic_filter_error(text: str) -> str | None:
    """Why a dynamic webhook's `jqlFilter` is refused, or None when it is acceptable."""
    try:
        query = _parse(text)
    except jql.JqlError as exc:
        return str(exc)
    if query.order_by:
        return "ORDER BY is not supported in webhook filters"
    for clause in jql.clauses(query.where):
        if clause.field not in DYNAMIC_FILTER_FIELDS:
            return f"Field '{clause.raw_field}' is not supported in webhook filters"
    return None


def _field_ids_match(field_ids: list[str] | None, event: str, changelog: dict | None) -> bool:
    if not field_ids or event != "jira:issue_updated":
        return True
    changed = {item.get("fieldId") or item.get("field") for item in (changelog or {}).get("items", [])}
    return bool(changed & set(field_ids))


# --- payloads ------------------------------------------------------------------------------------


def event_type_name(kind: str, changelog: dict | None) -> str:
    if kind == "issue_created":
        return "issue_created"
    if kind == "issue_deleted":
        return "issue_deleted"
    fields = {item.get("fieldId") or item.get("field") for item in (changelog or {}).get("items", [])}
    if "key" in fields or "project" in fields:
        return "issue_moved"
    if "status" in fields:
        return "issue_generic"  # workflow transitions fire the generic event
    if fields == {"assignee"}:
        return "issue_assigned"
    return "issue_updated"


def payload(event: ChangeEvent) -> dict[str, Any]:
    name = EVENT_NAMES[event.kind]
    body: dict[str, Any] = {"timestamp": int(event.timestamp), "webhookEvent": name}
    if event.kind.startswith("issuelink_"):
        body["issueLink"] = event.link
        return body
    body["issue_event_type_name"] = event_type_name(event.kind, event.changelog)
    if event.user is not None:
        body["user"] = event.user
    body["issue"] = event.issue
    if event.kind == "issue_updated" and event.changelog is not None:
        body["changelog"] = event.changelog
    return body


_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


def substitute(url: str, event: ChangeEvent) -> str:
    """Connect/admin webhook URL variables (`${issue.key}` …); unknown ones become empty."""
    issue = event.issue or {}
    fields = issue.get("fields") or {}
    project = fields.get("project") or {}
    values = {
        "issue.key": issue.get("key"), "issue.id": issue.get("id"),
        "project.key": project.get("key"), "project.id": project.get("id"),
        "modifiedUser.accountId": (event.user or {}).get("accountId"),
    }
    return _VARIABLE.sub(lambda m: quote(str(values.get(m.group(1)) or ""), safe=""), url)


def _jwt_signer(app: InstalledApp) -> Callable[[str, bytes | None], dict[str, str]]:
    def sign(url: str, body: bytes | None) -> dict[str, str]:
        token = app_request_token(client_key=app.client_key, shared_secret=app.shared_secret,
                                  method="POST", url=url, app_base_url=app.base_url)
        return {"Authorization": f"JWT {token}"}

    return sign


def _hmac_signer(secret: str) -> Callable[[str, bytes | None], dict[str, str]]:
    def sign(url: str, body: bytes | None) -> dict[str, str]:
        digest = hmac.new(secret.encode("utf-8"), body or b"", hashlib.sha256).hexdigest()
        return {"X-Hub-Signature": f"sha256={digest}"}

    return sign


def _encode(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def messages_for(site: Site, event: ChangeEvent) -> list[Message]:
    """Every message one change event causes on this site, in a stable order."""
    name = EVENT_NAMES.get(event.kind)
    if name is None:
        return []
    st = state(site)
    base_body = payload(event)
    is_issue_event = name in ISSUE_EVENTS
    flow = SECONDARY if event.cascade else PRIMARY
    out: list[Message] = []
    for app in list(site.apps.values()):
        if not app.enabled:
            continue
        for module in (app.descriptor.get("modules") or {}).get("webhooks") or []:
            if module.get("event") != name or not isinstance(module.get("url"), str):
                continue
            if is_issue_event and not issue_matches(site, module.get("filter"), event.subject):
                continue
            path = substitute(module["url"], event)
            url = app.base_url.rstrip("/") + (path if path.startswith("/") else "/" + path)
            body = None if module.get("excludeBody") else _encode(base_body)
            out.append(Message(url=url, event=name, body=body, kind="connect", app_key=app.key,
                               sign=_jwt_signer(app), flow=flow))
        if name in DYNAMIC_EVENTS:
            now = st.now_ms()
            matched: dict[str, list[int]] = {}
            for hook in st.dynamic.values():
                if (hook.app_key == app.key and hook.expires_ms > now and name in hook.events
                        and _field_ids_match(hook.field_ids, name, event.changelog)
                        and issue_matches(site, hook.jql, event.subject)):
                    matched.setdefault(hook.url, []).append(hook.id)
            for url, ids in matched.items():
                body = _encode({**base_body, "matchedWebhookIds": ids})
                out.append(Message(url=url, event=name, body=body, kind="dynamic", app_key=app.key,
                                   webhook_ids=tuple(ids), sign=_jwt_signer(app), flow=flow))
    for hook in list(st.admin.values()):
        if not hook.enabled or name not in hook.events:
            continue
        if is_issue_event and not issue_matches(site, hook.jql, event.subject):
            continue
        body = None if hook.exclude_body else _encode(base_body)
        out.append(Message(url=substitute(hook.url, event), event=name, body=body, kind="admin",
                           webhook_ids=(hook.id,), sign=_hmac_signer(hook.secret) if hook.secret else None,
                           flow=flow))
    return out


def listener(site: Site) -> Callable[[ChangeEvent], None]:
    def on_change(event: ChangeEvent) -> None:
        dispatcher = state(site).dispatcher
        for message in messages_for(site, event):
            dispatcher.submit(message)

    return on_change


async def startup(sim: Sites, site: Site) -> None:
    st = state(site)
    await st.dispatcher.start()
    if st.listener is None:
        st.listener = listener(site)
    if st.listener not in site.listeners:
        site.listeners.append(st.listener)


async def shutdown(sim: Sites, site: Site) -> None:
    st = state(site)
    if st.listener in site.listeners:
        site.listeners.remove(st.listener)
    await st.dispatcher.stop()


# --- REST: errors and auth -----------------------------------------------------------------------
# Handlers raise `JiraError`; the site app's exception handler renders Jira's error shape, as it
# does for the core REST routes.


def _error(status: int, *messages: str, errors: dict[str, str] | None = None) -> JiraError:
    return JiraError(status, messages, errors)


async def _json(request: Request) -> Any:
    # Tolerant on purpose: each caller answers a malformed body with its own Jira message.
    try:
        return await request.json()
    except ValueError:
        return None


async def calling_app(request: Request, site: Site) -> InstalledApp:
    """The installed Connect app calling with its JWT; Jira answers 403 to users calling the
    app-only webhook APIs."""
    caller = await authenticate(request, site)
    require_user(caller)
    app = site.apps.get(caller.app_key) if caller.kind == "app" and caller.app_key else None
    if app is None:
        raise _error(403, "Only Connect and OAuth 2.0 apps can use this operation.")
    require_scope(caller, "READ")  # the spec's x-atlassian-connect-scope for the webhook APIs
    return app


async def calling_admin(request: Request, site: Site) -> str:
    """The accountId of the calling Jira administrator."""
    caller = await authenticate(request, site)
    require_user(caller)
    if not site.has_permission(caller.account_id, ADMINISTER):
        raise _error(403, "You must be a Jira administrator to manage webhooks.")
    return caller.account_id


# --- REST: dynamic webhooks (/rest/api/3/webhook) ------------------------------------------------


def _same_base(url: str, base_url: str) -> bool:
    u, b = urlsplit(url), urlsplit(base_url)
    if (u.scheme, u.netloc) != (b.scheme, b.netloc):
        return False
    base_path = b.path.rstrip("/")
    return not base_path or u.path == base_path or u.path.startswith(base_path + "/")


def dynamic_routes(sim: Sites, site: Site) -> list[Route]:
    st = state(site)

    async def register(request: Request) -> Response:
        app = await calling_app(request, site)
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not isinstance(body.get("webhooks"), list):
            raise _error(400, "The request body must contain 'url' and 'webhooks'.")
        url = body["url"]
        if not _same_base(url, app.base_url):
            raise _error(400, "The webhook URL must use the same base URL as the Connect app.")
        existing = {h.url for h in st.dynamic.values() if h.app_key == app.key}
        if existing and url not in existing:
            raise _error(400, "Only a single URL per app is allowed to be registered.")
        results = []
        for spec in body["webhooks"]:
            errors = []
            if not isinstance(spec, dict):
                results.append({"errors": ["Webhook details must be an object."]})
                continue
            events = spec.get("events")
            if not isinstance(events, list) or not events:
                errors.append("At least one event must be specified.")
            else:
                errors += [f"Event '{e}' is not supported for dynamic webhooks." for e in events if e not in DYNAMIC_EVENTS]
            text = spec.get("jqlFilter")
            if not isinstance(text, str) or not text.strip():
                errors.append("The JQL filter is required.")
            elif (problem := dynamic_filter_error(text)) is not None:
                errors.append(f"The JQL filter is not supported: {problem}")
            field_ids = spec.get("fieldIdsFilter")
            if field_ids is not None and not (isinstance(field_ids, list) and all(isinstance(f, str) for f in field_ids)):
                errors.append("fieldIdsFilter must be a list of field ids.")
            if errors:
                results.append({"errors": errors})
                continue
            hook = DynamicWebhook(next(st.dynamic_ids), app.key, url, list(events), text, field_ids,
                                  spec.get("issuePropertyKeysFilter"), st.now_ms() + DYNAMIC_LIFETIME_MS)
            st.dynamic[hook.id] = hook
            results.append({"createdWebhookId": hook.id})
        return JSONResponse({"webhookRegistrationResult": results})

    async def list_hooks(request: Request) -> Response:
        app = await calling_app(request, site)
        try:
            start = int(request.query_params.get("startAt", 0))
            size = min(int(request.query_params.get("maxResults", 100)), 100)
        except ValueError:
            raise _error(400, "startAt and maxResults must be integers.")
        if start < 0 or size < 1:
            raise _error(400, "startAt must be >= 0 and maxResults >= 1.")
        mine = sorted((h for h in st.dynamic.values() if h.app_key == app.key), key=lambda h: h.id)
        page = mine[start:start + size]
        return JSONResponse({"maxResults": size, "startAt": start, "total": len(mine),
                             "isLast": start + size >= len(mine), "values": [h.as_json() for h in page]})

    async def _ids(request: Request) -> tuple[InstalledApp, list[int]]:
        app = await calling_app(request, site)
        body = await _json(request)
        ids = body.get("webhookIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise _error(400, "webhookIds must be a list of webhook ids.")
        return app, ids

    async def delete(request: Request) -> Response:
        app, ids = await _ids(request)
        for hook_id in ids:
            hook = st.dynamic.get(hook_id)
            if hook is not None and hook.app_key == app.key:
                del st.dynamic[hook_id]
        return Response(status_code=202)

    async def refresh(request: Request) -> Response:
        app, ids = await _ids(request)
        expires = st.now_ms() + DYNAMIC_LIFETIME_MS
        for hook_id in ids:
            hook = st.dynamic.get(hook_id)
            if hook is not None and hook.app_key == app.key:
                hook.expires_ms = expires
        return JSONResponse({"expirationDate": expires})

    async def failed(request: Request) -> Response:
        app = await calling_app(request, site)
        try:
            size = min(int(request.query_params.get("maxResults", 100)), 100)
            after = int(request.query_params.get("after", -1))
        except ValueError:
            raise _error(400, "maxResults and after must be integers.")
        mine = [f for f in st.dispatcher.failed if f["appKey"] == app.key and f["failureTime"] > after]
        page = mine[:size]
        out: dict[str, Any] = {"maxResults": size,
                               "values": [{"id": f["id"], "body": f["body"], "url": f["url"],
                                           "failureTime": f["failureTime"]} for f in page]}
        if page:
            out["next"] = (f"{site.base_url}/rest/api/3/webhook/failed"
                           f"?after={page[-1]['failureTime']}&maxResults={size}")
        return JSONResponse(out)

    table = [("/webhook", register, "POST"), ("/webhook", list_hooks, "GET"), ("/webhook", delete, "DELETE"),
             ("/webhook/refresh", refresh, "PUT"), ("/webhook/failed", failed, "GET")]
    # Like the rest of the REST surface, served under /rest/api/3, /2 and /latest.
    return [Route(f"/rest/api/{version}{path}", fn, methods=[method])
            for version in ("3", "2", "latest") for path, fn, method in table]


# --- REST: admin webhooks (/rest/webhooks/1.0/webhook) -------------------------------------------


def admin_routes(sim: Sites, site: Site) -> list[Route]:
    st = state(site)
    prefix = "/rest/webhooks/1.0/webhook"

    def render(hook: AdminWebhook) -> dict[str, Any]:
        user = site.users.get(hook.updated_by)
        return {
            "self": f"{site.base_url}{prefix}/{hook.id}",
            "name": hook.name, "url": hook.url, "excludeBody": hook.exclude_body,
            "filters": {"issue-related-events-section": hook.jql}, "events": hook.events,
            "enabled": hook.enabled, "lastUpdatedUser": hook.updated_by,
            "lastUpdatedDisplayName": user.display_name if user else None, "lastUpdated": hook.updated_ms,
        }

    def parse(body: Any, hook: AdminWebhook | None, account_id: str) -> AdminWebhook:
        if not isinstance(body, dict):
            raise _error(400, "JSON object required.")
        name = body.get("name", hook.name if hook else None)
        url = body.get("url", hook.url if hook else None)
        events = body.get("events", hook.events if hook else [])
        if not isinstance(name, str) or not name.strip():
            raise _error(400, errors={"name": "Name must be specified."})
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise _error(400, errors={"url": "URL must be a valid http(s) URL."})
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise _error(400, errors={"events": "Events must be a list of event names."})
        filters = body.get("filters") or {}
        text = (filters.get("issue-related-events-section", hook.jql if hook else "")
                if isinstance(filters, dict) else "")
        if text:
            try:
                _parse(text)
            except jql.JqlError as exc:
                raise _error(400, errors={"filters": f"Invalid JQL: {exc}"})
        secret = body.get("secret", hook.secret if hook else None)
        return AdminWebhook(
            hook.id if hook else next(st.admin_ids), name, url, list(events), text or "",
            bool(body.get("excludeBody", hook.exclude_body if hook else False)),
            secret if isinstance(secret, str) and secret else None,
            bool(body.get("enabled", hook.enabled if hook else True)), account_id, int(time.time() * 1000),
        )

    async def create(request: Request) -> Response:
        account_id = await calling_admin(request, site)
        hook = parse(await _json(request), None, account_id)
        st.admin[hook.id] = hook
        return JSONResponse(render(hook), status_code=201,
                            headers={"Location": f"{site.base_url}{prefix}/{hook.id}"})

    async def list_all(request: Request) -> Response:
        await calling_admin(request, site)
        return JSONResponse([render(h) for h in sorted(st.admin.values(), key=lambda h: h.id)])

    async def one(request: Request) -> Response:
        account_id = await calling_admin(request, site)
        try:
            hook = st.admin.get(int(request.path_params["id"]))
        except ValueError:
            hook = None
        if hook is None:
            raise _error(404, "Webhook not found.")
        if request.method == "DELETE":
            del st.admin[hook.id]
            return Response(status_code=204)
        if request.method == "PUT":
            st.admin[hook.id] = hook = parse(await _json(request), hook, account_id)
        return JSONResponse(render(hook))

    return [
        Route(prefix, create, methods=["POST"]),
        Route(prefix, list_all, methods=["GET"]),
        Route(prefix + "/{id}", one, methods=["GET", "PUT", "DELETE"]),
    ]


# --- control API (/_jirasim/webhooks/...) --------------------------------------------------------


def control_routes(sim: Sites, site: Site) -> list[Route]:
    st = state(site)

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            if not isinstance(body, dict) or not isinstance(body.get("advance_ms"), (int, float)):
                return JSONResponse({"error": "advance_ms required"}, status_code=400)
            st.clock_offset_ms += int(body["advance_ms"])
        return JSONResponse({"now": st.now_ms(), "offset_ms": st.clock_offset_ms})

    async def registrations(request: Request) -> Response:
        return JSONResponse({
            "dynamic": [h.as_json() | {"appKey": h.app_key} for h in st.dynamic.values()],
            "admin": [{"id": h.id, "name": h.name, "url": h.url, "events": h.events, "jql": h.jql,
                       "excludeBody": h.exclude_body, "signed": bool(h.secret), "enabled": h.enabled}
                      for h in st.admin.values()],
            "connect": [{"appKey": a.key, **m} for a in site.apps.values()
                        for m in (a.descriptor.get("modules") or {}).get("webhooks") or []],
        })

    return [
        Route("/_jirasim/webhooks", registrations, methods=["GET"]),
        *dispatcher_routes("/_jirasim/webhooks", st.dispatcher),
        Route("/_jirasim/webhooks/clock", clock, methods=["GET", "POST"]),
    ]


def routes(sim: Sites, site: Site) -> list[Route]:
    return dynamic_routes(sim, site) + admin_routes(sim, site) + control_routes(sim, site)
