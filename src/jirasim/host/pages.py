"""Host pages: the Jira pages that embed Connect iframes, the context-token bridge and `all.js`.

`/browse/{issueKey}` is a plain issue view with the issue web panels of enabled apps;
`/plugins/servlet/ac/{appKey}/{moduleKey}` hosts general, admin, configure and post-install pages.
Each iframe URL is built like Jira's (connect-protocol.md §1.7): the module URL relative to the app's
baseUrl with `{context}` parameters substituted (unknown ones empty), the standard parameters
`lic, cp, xdm_e, xdm_c, cv`, and a 180-second HS256 `jwt` whose `qsh` covers all of that.
The viewing user is `?as=<accountId>` (default: the site admin); there is no login.

Inside the iframe, `all.js` (served at `/_jirasim/all.js`, standing in for the Connect CDN copy) asks
the host page over `postMessage`; the host page gets context JWTs from `POST /_jirasim/context-token`.
"""
from __future__ import annotations


import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from jirasim.host.connect import display_name
from jirasim.host.signing import CONTEXT_TOKEN_TTL, app_request_token, context_token
from jirasim.model import ADMINISTER, BROWSE, START_DATE_FIELD, InstalledApp, Issue, Site, Sites
from jirasim.render import render_issue

CONNECT_VERSION = "1001.0.0-SNAPSHOT"
ISSUE_PANEL_PREFIX = "atl.jira.view.issue."
PAGE_MODULES = ("generalPages", "adminPages", "configurePage", "postInstallPage")
ADMIN_MODULES = frozenset({"adminPages", "configurePage"})
ISSUE_VIEW_MODULES = ("jiraIssueGlances", "jiraIssueContents", "jiraIssueContexts")
NOT_FOUND = "Issue does not exist or you do not have permission to see it."

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)
_STATIC = Path(__file__).resolve().parent.parent / "static"
_CONTEXT_VAR = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")


def iframe_url(site: Site, app: InstalledApp, module_key: str, module_url: str, context: dict[str, str],
               account_id: str | None, *, cacheable: bool = False) -> str:
    """The signed iframe URL Jira would render for a module (absolute, ends with `&jwt=…`)."""
    path = _CONTEXT_VAR.sub(lambda m: quote(str(context.get(m.group(1), "")), safe=""), module_url)
    if not path.startswith("/"):
        path = "/" + path
    url = app.base_url.rstrip("/") + path
    if cacheable:
        # Cacheable modules get neither parameters nor a JWT; they use AP.context.getToken().
        return url.split("?", 1)[0]
    split = urlsplit(url)
    pairs = parse_qsl(split.query, keep_blank_values=True) + [
        ("lic", "none"), ("cp", ""), ("xdm_e", site.base_url), ("xdm_c", f"channel-{module_key}"),
        ("cv", CONNECT_VERSION),
    ]
    # Every reserved character encoded (`xdm_e=http%3A%2F%2F…`), spaces as %20, as Jira renders it.
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    unsigned = split._replace(query=query).geturl()
    token = app_request_token(client_key=app.client_key, shared_secret=app.shared_secret, method="GET",
                              url=unsigned, app_base_url=app.base_url, sub=account_id)
    return f"{unsigned}&jwt={token}"


def issue_context(site: Site, issue: Issue) -> dict[str, str]:
    project = site.projects.get(issue.project_id)
    return {
        "issue.id": str(issue.id), "issue.key": issue.key, "issuetype.id": str(issue.issuetype_id),
        "project.id": str(issue.project_id), "project.key": project.key if project else "",
        "status.id": str(issue.status_id),
    }


def _js_context(context: dict[str, str]) -> dict[str, Any]:
    """The object `AP.context.getContext()` resolves to."""
    jira: dict[str, Any] = {}
    if context.get("issue.id") or context.get("issue.key"):
        jira["issue"] = {"id": context.get("issue.id"), "key": context.get("issue.key"),
                         "issuetypeid": context.get("issuetype.id")}
    if context.get("project.id") or context.get("project.key"):
        jira["project"] = {"id": context.get("project.id"), "key": context.get("project.key")}
    return {"jira": jira, "license": {"active": False}}


def _viewer(request: Request, site: Site) -> str:
    return request.query_params.get("as") or site.admin_account_id()


def _frame(site: Site, app: InstalledApp, module_key: str, name: str, url: str, context: dict[str, str],
           account_id: str, *, cacheable: bool = False, height: str | None = None) -> dict[str, Any]:
    return {
        "app_key": app.key, "module_key": module_key, "name": name, "height": height or "200px",
        "src": iframe_url(site, app, module_key, url, context, account_id, cacheable=cacheable),
        "context": json.dumps({"appKey": app.key, "accountId": account_id, "context": _js_context(context)}),
    }


def issue_panels(site: Site, issue: Issue, account_id: str) -> list[dict[str, Any]]:
    context = issue_context(site, issue)
    frames = []
    for app in site.apps.values():
        if not app.enabled:
            continue
        modules = app.descriptor.get("modules") or {}
        panels = sorted((p for p in modules.get("webPanels") or []
                         if str(p.get("location", "")).startswith(ISSUE_PANEL_PREFIX) and p.get("url")),
                        key=lambda p: p.get("weight", 100))
        for panel in panels:
            layout = panel.get("layout") or {}
            frames.append(_frame(site, app, panel["key"], display_name(panel), panel["url"], context, account_id,
                                 height=layout.get("height")))
        for kind in ISSUE_VIEW_MODULES:
            for module in modules.get(kind) or []:
                target = module.get("target") or {}
                if target.get("url"):
                    frames.append(_frame(site, app, module["key"], display_name(module), target["url"],
                                         context, account_id))
    return frames


def find_page_module(app: InstalledApp, module_key: str) -> tuple[str, dict] | None:
    modules = app.descriptor.get("modules") or {}
    for kind in PAGE_MODULES:
        entries = modules.get(kind)
        for module in entries if isinstance(entries, list) else [entries] if isinstance(entries, dict) else []:
            if module.get("key") == module_key and module.get("url"):
                return kind, module
    return None


def _not_found(message: str = NOT_FOUND) -> HTMLResponse:
    return HTMLResponse(_TEMPLATES.get_template("host_404.html").render(message=message), status_code=404)


def routes(sim: Sites, site: Site) -> list[Route]:
    async def browse(request: Request) -> Response:
        account_id = _viewer(request, site)
        issue = site.issue(request.path_params["issue_key"])
        if issue is None or not site.has_permission(account_id, BROWSE, issue.project_id):
            return _not_found()
        rendered = render_issue(site, issue)
        html = _TEMPLATES.get_template("host_browse.html").render(
            site_base=site.base_url, issue=rendered, fields=rendered.get("fields") or {},
            start_date=(rendered.get("fields") or {}).get(site.field_id(START_DATE_FIELD)),
            viewer=site.users.get(account_id), panels=issue_panels(site, issue, account_id),
        )
        return HTMLResponse(html)

    async def servlet(request: Request) -> Response:
        account_id = _viewer(request, site)
        app = site.apps.get(request.path_params["app_key"])
        found = find_page_module(app, request.path_params["module_key"]) if app and app.enabled else None
        if found is None:
            return _not_found("The page you are looking for does not exist.")
        kind, module = found
        user = site.users.get(account_id)
        if user is None or not user.active:
            return _not_found("You must log in to view this page.")
        if kind in ADMIN_MODULES and not site.has_permission(account_id, ADMINISTER):
            return HTMLResponse(_TEMPLATES.get_template("host_404.html").render(
                message="You do not have permission to view this page."), status_code=403)
        # Context comes from the page URL, as on Jira (`?project.key=…`, `?ac.<name>=…`).
        context = {k: v for k, v in request.query_params.items() if k != "as"}
        frame = _frame(site, app, module["key"], display_name(module), module["url"], context, account_id,
                       cacheable=bool(module.get("cacheable")), height="600px")
        html = _TEMPLATES.get_template("host_page.html").render(
            site_base=site.base_url, title=display_name(module), frame=frame,
            viewer=user, full_page=bool(module.get("fullPage")),
        )
        return HTMLResponse(html)

    async def context_token_route(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "JSON object required"}, status_code=400)
        app = site.apps.get(str(body.get("appKey")))
        if app is None or not app.enabled:
            return JSONResponse({"error": "app not installed or disabled"}, status_code=404)
        account_id = body.get("accountId") or site.admin_account_id()
        user = site.users.get(account_id)
        if user is None or not user.active:
            return JSONResponse({"error": "unknown or inactive user"}, status_code=400)
        context = body.get("context") if isinstance(body.get("context"), dict) else {}
        token = context_token(client_key=app.client_key, shared_secret=app.shared_secret, sub=account_id,
                              context=context)
        return JSONResponse({"token": token, "expiresIn": CONTEXT_TOKEN_TTL})

    async def all_js(request: Request) -> Response:
        return Response((_STATIC / "jirasim-all.js").read_text(encoding="utf-8"),
                        media_type="application/javascript",
                        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=60"})

    return [
        Route("/browse/{issue_key}", browse, methods=["GET"]),
        Route("/plugins/servlet/ac/{app_key}/{module_key}", servlet, methods=["GET"]),
        Route("/_jirasim/context-token", context_token_route, methods=["POST"]),
        Route("/_jirasim/all.js", all_js, methods=["GET"]),
    ]
