"""Host pages with signed iframes, context tokens and the all.js stand-in."""
from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.jirasim.hostkit import ADMIN_ACCOUNT_ID, Peer, qsh, running

MODULES = {
    "webPanels": [{
        "key": "wbs-panel", "name": {"value": "WBS"}, "location": "atl.jira.view.issue.right.context",
        "url": "/ui/panel?issueKey={issue.key}&issueId={issue.id}&projectKey={project.key}&x={no.such}",
    }],
    "adminPages": [{"key": "admin", "name": {"value": "Configure"}, "url": "/ui/admin",
                    "conditions": [{"condition": "user_is_admin"}]}],
    "generalPages": [{"key": "portfolio", "name": {"value": "Portfolio"}, "url": "/ui/general/{project.key}"}],
}


def _iframes(page: str) -> list[str]:
    return [html.unescape(src) for src in re.findall(r'<iframe[^>]*\ssrc="([^"]+)"', page)]


def test_issue_view_embeds_panels_with_a_jwt_whose_qsh_matches_the_url():
    with running(Peer(modules=MODULES)) as env:
        env.install()
        issue = env.create_issue("DEMO", "Plan the launch")
        page = env.client.get(f"{env.site_url}/browse/{issue.key}")
        assert page.status_code == 200
        assert "Plan the launch" in page.text and "To Do" in page.text
        [src] = _iframes(page.text)
        assert src.startswith(env.peer.base_url + "/ui/panel?")
        params = parse_qs(urlsplit(src).query, keep_blank_values=True)
        assert params["issueKey"] == [issue.key] and params["issueId"] == [str(issue.id)]
        assert params["projectKey"] == ["DEMO"] and params["x"] == [""]
        assert params["lic"] == ["none"] and params["cp"] == [""] and params["xdm_e"] == [env.site_url]
        assert params["xdm_c"] == ["channel-wbs-panel"] and params["cv"] == ["1001.0.0-SNAPSHOT"]

        claims = jwt.decode(params["jwt"][0], env.peer.shared_secret, algorithms=["HS256"])
        assert claims["qsh"] == qsh("GET", src)
        assert claims["iss"] == env.peer.install_payload["clientKey"]
        assert claims["sub"] == ADMIN_ACCOUNT_ID and claims["exp"] - claims["iat"] == 180
        assert claims["context"] == {}

        # Loading the iframe: the peer verifies the token like a real app does.
        loaded = env.client.get(src)
        assert loaded.status_code == 200, loaded.text
        assert f'<script src="{env.site_url}/_jirasim/all.js">' in loaded.text


def test_viewer_is_chosen_with_as_and_needs_browse_permission():
    with running(Peer(modules=MODULES)) as env:
        env.install()
        issue = env.create_issue("DEMO", "Secret")
        alice = env.site.add_user("alice@example.com", "Alice")
        mallory = env.site.add_user("mallory@example.com", "Mallory", default_permissions=())
        page = env.client.get(f"{env.site_url}/browse/{issue.key}", params={"as": alice.account_id})
        [src] = _iframes(page.text)
        token = parse_qs(urlsplit(src).query)["jwt"][0]
        assert jwt.decode(token, env.peer.shared_secret, algorithms=["HS256"])["sub"] == alice.account_id
        denied = env.client.get(f"{env.site_url}/browse/{issue.key}", params={"as": mallory.account_id})
        assert denied.status_code == 404
        assert "Issue does not exist or you do not have permission to see it." in denied.text
        assert env.client.get(f"{env.site_url}/browse/DEMO-999").status_code == 404


def test_servlet_pages_admin_only_for_admins_and_context_from_the_url():
    with running(Peer(modules=MODULES)) as env:
        env.install()
        bob = env.site.add_user("bob@example.com", "Bob")
        admin_page = env.client.get(f"{env.site_url}/plugins/servlet/ac/{env.peer.key}/admin")
        assert admin_page.status_code == 200
        [src] = _iframes(admin_page.text)
        assert env.client.get(src).status_code == 200  # signed correctly
        assert env.client.get(f"{env.site_url}/plugins/servlet/ac/{env.peer.key}/admin",
                              params={"as": bob.account_id}).status_code == 403
        general = env.client.get(f"{env.site_url}/plugins/servlet/ac/{env.peer.key}/portfolio",
                                 params={"project.key": "DEMO", "as": bob.account_id})
        [gsrc] = _iframes(general.text)
        assert urlsplit(gsrc).path == "/ui/general/DEMO"
        assert env.client.get(gsrc).status_code == 200
        assert env.peer.seen_at("/ui/general/DEMO")[-1].claims["sub"] == bob.account_id
        assert env.client.get(f"{env.site_url}/plugins/servlet/ac/{env.peer.key}/nope").status_code == 404


def test_context_token_and_all_js():
    with running(Peer(modules=MODULES)) as env:
        env.install()
        response = env.client.post(f"{env.site_url}/_jirasim/context-token", json={
            "appKey": env.peer.key, "accountId": ADMIN_ACCOUNT_ID,
            "context": {"jira": {"issue": {"key": "DEMO-1"}}}})
        assert response.status_code == 200
        token = response.json()["token"]
        verdict, claims = env.peer.verify_hs256(token, "GET", "/anything", context=True)
        assert verdict == "ok"
        assert claims["qsh"] == "context-qsh" and claims["sub"] == ADMIN_ACCOUNT_ID
        assert claims["exp"] - claims["iat"] == 15 * 60
        assert env.client.post(f"{env.site_url}/_jirasim/context-token",
                               json={"appKey": "nope"}).status_code == 404

        js = env.client.get(f"{env.site_url}/_jirasim/all.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        for name in ("getToken", "getContext", "resize", "sizeToParent", "postMessage"):
            assert name in js.text
        issue = env.create_issue("DEMO", "Bridge")
        page = env.client.get(f"{env.site_url}/browse/{issue.key}")
        assert "/_jirasim/context-token" in page.text  # the host side of the bridge
