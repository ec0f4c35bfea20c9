"""Request security over real HTTP: where tokens may travel, unreadable stored secrets, and the
headers every response carries (nosniff, a script policy on pages).

Pages and context tokens are exercised through a simulated Jira site (jirasim), which installs
BoxSync, renders our iframes and mints context tokens as Jira does.
"""
from __future__ import annotations

import contextlib
import html
import os
import re
import time
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from boxsync import crypto
from boxsync.app import create_app
from boxsync.config import Settings
from boxsync.connect.tables import tenants
from jirasim.simulator import Simulator
from tests.boxsync.connectkit import (
    SECRET_KEY, boxsync_server, install_body, install_token, key_server, qsh_of, request_token,
)
from tests.support.servers import serve

UNREADABLE = "cannot read its stored secret"


# -- a Jira site with BoxSync installed --------------------------------------------------------------

@pytest.fixture
def world(database_url):
    sim = Simulator(seed=5)
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(serve(lambda url: sim.add_site("s", url, issues=5)))
        settings = lambda url: Settings(  # noqa: E731
            base_url=url, database_url=database_url, app_key="boxsync", secret_key=SECRET_KEY,
            install_keys_url=f"{site}/_jirasim/install-keys", oauth_url=site,
            all_js_url=f"{site}/_jirasim/all.js")
        app = stack.enter_context(serve(lambda url: create_app(settings(url))))
        resp = httpx.post(f"{site}/_jirasim/apps/install", json={"descriptorUrl": f"{app}/atlassian-connect.json"},
                          timeout=30)
        assert resp.status_code == 200, resp.text
        summary = httpx.get(f"{site}/_jirasim/site").json()
        admin = next(u["accountId"] for u in summary["users"] if "ADMINISTER" in u["globalPermissions"])
        issue = min(sim.site("s").issues.values(), key=lambda i: i.id).key
        yield {"site": site, "app": app, "admin": admin, "issue": issue}


def iframe_src(page: httpx.Response) -> str:
    found = re.findall(r'<iframe[^>]*src="([^"]+)"', page.text)
    assert len(found) == 1, page.text[:500]
    return html.unescape(found[0])


def context_token(site: str, account_id: str) -> str:
    resp = httpx.post(f"{site}/_jirasim/context-token", json={"appKey": "boxsync", "accountId": account_id})
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def csp(resp: httpx.Response) -> dict[str, list[str]]:
    directives = [d.split() for d in resp.headers["content-security-policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_context_and_session_tokens_are_taken_from_the_authorization_header_only(world):
    overview = world["app"] + "/api/admin/overview"
    admin_page = httpx.get(iframe_src(httpx.get(
        f"{world['site']}/plugins/servlet/ac/boxsync/app-configuration", params={"as": world["admin"]})))
    assert admin_page.status_code == 200
    tokens = {
        "Jira's context token": context_token(world["site"], world["admin"]),
        "our session token": re.search(r'data-session-token="([^"]+)"', admin_page.text).group(1),
    }
    for name, token in tokens.items():
        ok = httpx.get(overview, headers={"Authorization": f"JWT {token}"})
        assert ok.status_code == 200, (name, ok.text)
        in_url = httpx.get(overview, params={"jwt": token})
        assert in_url.status_code == 401, name
        assert "Authorization header" in in_url.json()["error"], name
        assert token not in in_url.text


def test_every_response_is_nosniff(world):
    token = context_token(world["site"], world["admin"])
    responses = {
        "json": httpx.get(world["app"] + "/api/admin/overview", headers={"Authorization": f"JWT {token}"}),
        "json refusal": httpx.get(world["app"] + "/api/admin/overview"),
        "health": httpx.get(world["app"] + "/healthz"),
        "descriptor": httpx.get(world["app"] + "/atlassian-connect.json"),
        "not found": httpx.get(world["app"] + "/no/such/route"),
        "script": httpx.get(world["app"] + "/static/boxsync.js"),
    }
    for name, resp in responses.items():
        assert resp.headers.get("x-content-type-options") == "nosniff", name
    assert responses["json"].headers["content-type"] == "application/json"
    assert responses["script"].headers["content-type"].startswith("text/javascript")


def test_pages_allow_only_our_scripts_and_jiras_bridge(world):
    # The page as the simulated Jira frames it, with all.js served by the Jira site.
    page = httpx.get(iframe_src(httpx.get(f"{world['site']}/browse/{world['issue']}")))
    assert page.status_code == 200 and world["issue"] in page.text
    policy = csp(page)
    assert policy["frame-ancestors"] == ["'self'", world["site"]]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    allowed = set(policy["script-src"])
    assert "'unsafe-inline'" not in allowed and "*" not in allowed
    assert {"'self'", origin(world["site"])} <= allowed
    # Every script of the page is allowed by that policy, and none is inline.
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page.text, re.S)
    assert len(scripts) == 3  # all.js, boxsync.js and the panel's own script
    for attributes, body in scripts:
        src = re.search(r'src="([^"]+)"', attributes)
        assert src and not body.strip(), attributes
        assert origin(src.group(1)) in allowed | {origin(world["app"])}
        assert httpx.get(src.group(1)).status_code == 200
    # HTML without a tenant (refusals, the administrator guide) runs no script at all.
    refusal = httpx.get(world["app"] + "/panel/wbs?issueKey=A-1", headers={"Accept": "text/html"})
    guide = httpx.get(world["app"] + "/docs/admin")
    for resp in (refusal, guide):
        assert resp.headers["content-type"].startswith("text/html")
        assert csp(resp)["script-src"] == ["'none'"] and csp(resp)["base-uri"] == ["'none'"]
        assert "<script" not in resp.text


# -- a stored secret that does not decrypt -----------------------------------------------------------

SITE = "http://127.0.0.1:2990"
SECRET = "s" * 64
LEAKY = "plaintext-shared-secret-stored-by-mistake"


def _damaged(kind: str) -> str:
    good = crypto.encrypt(SECRET_KEY, SECRET, "client-a")
    return {
        "not base64": "v1:@@not base64@@",
        "unknown version": "v9:" + good.partition(":")[2],
        "plaintext": LEAKY,
        "truncated": "v1:AAAA",
        "another key": crypto.encrypt(os.urandom(32), SECRET, "client-a"),
        "another owner": crypto.encrypt(SECRET_KEY, SECRET, "client-b"),
    }[kind]


@pytest.mark.parametrize("kind", ["not base64", "unknown version", "plaintext", "truncated", "another key",
                                  "another owner"])
async def test_an_unreadable_stored_secret_is_a_handled_error_everywhere(database_url, engine, caplog, kind):
    with key_server() as keys, boxsync_server(database_url, keys.url) as app:
        kid, key = keys.new_key()

        def signed(path: str, event: str, later: int = 0) -> httpx.Response:
            # Each install token is accepted once: a later one gets a later iat (so other bytes).
            token = install_token(key, kid, iss="client-a", aud=app, qsh=qsh_of("POST", path),
                                  iat=int(time.time()) + later)
            return httpx.post(app + path, json={**install_body("client-a", SECRET, SITE), "eventType": event},
                              headers={"Authorization": f"JWT {token}"})

        assert signed("/installed", "installed").status_code == 204
        async with engine.begin() as conn:
            await conn.execute(sa.update(tenants).values(shared_secret=_damaged(kind)))

        panel = app + "/panel/wbs?issueKey=ABC-1"
        webhook = app + "/webhooks/jira"
        enabled = app + "/enabled"
        answers = {
            "iframe": httpx.get(panel + "&jwt=" + request_token(SECRET, iss="client-a", qsh=qsh_of("GET", panel)),
                                headers={"Accept": "text/html"}),
            "context": httpx.get(app + "/api/admin/overview", headers={
                "Authorization": "JWT " + request_token(SECRET, iss="client-a", qsh="context-qsh")}),
            "webhook": httpx.post(webhook, json={"webhookEvent": "jira:issue_updated"}, headers={
                "Authorization": "JWT " + request_token(SECRET, iss="client-a", qsh=qsh_of("POST", webhook))}),
            "enabled": httpx.post(enabled, json={"clientKey": "client-a"}, headers={
                "Authorization": "JWT " + request_token(SECRET, iss="client-a", qsh=qsh_of("POST", enabled))}),
            "uninstalled": signed("/uninstalled", "uninstalled"),
        }
        for route, resp in answers.items():
            assert resp.status_code == 500, (route, resp.status_code, resp.text[:300])
            if route == "iframe":
                assert resp.headers["content-type"].startswith("text/html") and UNREADABLE in resp.text
            else:
                assert UNREADABLE in resp.json()["error"], route
        assert "tenant secret unreadable" in caplog.text
        assert "Traceback" not in caplog.text and LEAKY not in caplog.text
        async with engine.connect() as conn:
            assert (await conn.execute(sa.select(tenants.c.installed, tenants.c.enabled))).one() == (True, True)

        # A signed reinstall stores a fresh secret, and the site works again.
        assert signed("/installed", "installed", later=2).status_code == 204
        resp = httpx.get(panel + "&jwt=" + request_token(SECRET, iss="client-a", qsh=qsh_of("GET", panel)))
        assert resp.status_code == 200


def test_decrypt_refuses_damaged_text_with_secret_error_only():
    for kind in ("not base64", "unknown version", "plaintext", "truncated", "another key", "another owner"):
        with pytest.raises(crypto.SecretError) as info:
            crypto.decrypt(SECRET_KEY, _damaged(kind), "client-a")
        assert LEAKY not in str(info.value)
    assert crypto.decrypt(SECRET_KEY, crypto.encrypt(SECRET_KEY, SECRET, "client-a"), "client-a") == SECRET
