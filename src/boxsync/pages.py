"""Rendering our iframe pages: Jinja templates, the Connect JS bridge, and framing rules."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from boxsync.connect.auth import JiraContext
from boxsync.connect.jwt import session_token


def _utc(value: str | dt.datetime) -> str:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def environment(templates_dir: Path) -> Environment:
    # Templates ship with the release: checking their mtimes on every page (auto_reload) only costs.
    env = Environment(loader=FileSystemLoader(templates_dir), autoescape=select_autoescape(["html"]),
                      auto_reload=False)
    env.filters["utc"] = _utc
    return env


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_csp(base_url: str, all_js_url: str, ancestors: str) -> str:
    """Scripts only from our own origin and the one serving Atlassian's all.js (the pages have no
    inline script), no plugins, no <base> rewriting our relative URLs, framed by the tenant only."""
    scripts = " ".join(dict.fromkeys(_origin(u) for u in (base_url, all_js_url)))
    return (f"script-src 'self' {scripts}; object-src 'none'; base-uri 'none'; "
            f"frame-ancestors 'self' {ancestors}")


def render_page(request: Request, ctx: JiraContext, template: str, **values: Any) -> HTMLResponse:
    settings = request.app.state.settings
    tenant = ctx.tenant
    html = request.app.state.templates.get_template(template).render(
        all_js_url=settings.all_js_url,
        base_url=settings.base_url,
        site_url=tenant.display_url or tenant.base_url,
        # The page calls our JSON routes with this (or a fresh AP.context.getToken()).
        session_token=session_token(settings.app_key, tenant.client_key, tenant.shared_secret, ctx.account_id),
        account_id=ctx.account_id,
        **values,
    )
    # Only the tenant's own Jira may frame the page (clickjacking); never cache a page with a token.
    ancestors = " ".join(dict.fromkeys(u for u in (tenant.base_url, tenant.display_url) if u))
    return HTMLResponse(html, headers={
        "Content-Security-Policy": page_csp(settings.base_url, settings.all_js_url, ancestors),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    })
