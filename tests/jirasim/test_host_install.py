"""Installing a Connect app on a simulated site: signed lifecycle callbacks, install keys, tampering."""
from __future__ import annotations

import httpx
import jwt
import pytest

from tests.jirasim.hostkit import ADMIN_ACCOUNT_ID, Peer, qsh, running, serve


def test_install_sends_rs256_signed_installed_lifecycle_with_a_fetchable_key():
    with running() as env:
        response = env.install()
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["key"] == env.peer.key and body["status"] == "installed"
        assert body["installKeysUrl"] == env.keys_url and body["oauthUrl"] == env.site_url

        [seen] = env.peer.seen_at("/installed")
        assert seen.verdict == "ok"  # the peer verified RS256 against the site's key URL, aud, iss, qsh
        token = seen.headers["authorization"][4:]
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "RS256" and header["kid"]
        pem = env.client.get(f"{env.keys_url}/{header['kid']}")
        assert pem.status_code == 200 and pem.text.startswith("-----BEGIN PUBLIC KEY-----")
        claims = jwt.decode(token, pem.text, algorithms=["RS256"], audience=env.peer.base_url)
        assert claims["qsh"] == qsh("POST", "/installed") == (
            "4a2e1de8ca74e6cafe8862d332fa3ac7a8e51e692bc6d798ea4dfedc14948bf4")
        assert 180 <= claims["exp"] - claims["iat"] <= 900
        assert claims["sub"] == ADMIN_ACCOUNT_ID

        payload = seen.json()
        assert payload["eventType"] == "installed" and payload["productType"] == "jira"
        assert payload["key"] == env.peer.key and payload["baseUrl"] == env.site_url
        assert payload["clientKey"] == claims["iss"] == body["clientKey"]
        assert len(payload["sharedSecret"]) >= 64
        for name in ("displayUrl", "description", "serverVersion", "pluginsVersion", "oauthClientId"):
            assert payload[name], name

        # `enabled` follows, asynchronously, HS256-signed with the new secret and a computed qsh.
        assert env.lifecycle_flush()["idle"] is True
        [enabled] = env.peer.seen_at("/enabled")
        assert enabled.verdict == "ok" and enabled.json()["eventType"] == "enabled"

        listed = env.client.get(f"{env.site_url}/_jirasim/apps").json()["apps"]
        assert [a["key"] for a in listed] == [env.peer.key] and listed[0]["enabled"] is True


def test_unknown_kid_is_404_and_keys_are_shared_by_all_sites_of_a_simulator():
    with running() as env:
        assert env.client.get(f"{env.keys_url}/no-such-kid").status_code == 404
        env.install()
        kid = jwt.get_unverified_header(env.peer.seen_at("/installed")[0].headers["authorization"][4:])["kid"]
        # A second site of the same Simulator serves the first site's key (one registry, like the CDN).
        with serve(lambda url: env.sim.add_site("other", url)) as other_url:
            other = env.client.get(f"{other_url}/_jirasim/install-keys/{kid}")
            assert other.status_code == 200
            assert other.text == env.client.get(f"{env.keys_url}/{kid}").text


def test_reinstall_keeps_client_key_and_rotates_the_shared_secret():
    with running() as env:
        first = env.install().json()
        secret1 = env.peer.shared_secret
        second = env.install().json()
        assert second["clientKey"] == first["clientKey"]
        assert second["oauthClientId"] == first["oauthClientId"]
        assert env.peer.shared_secret != secret1
        assert len(env.peer.seen_at("/installed")) == 2


@pytest.mark.parametrize("tamper", [
    "unsigned", "expired", "wrong_aud", "wrong_iss", "wrong_qsh", "alg_none", "hs256_with_public_key",
    "unknown_kid", "no_kid", "bad_signature",
])
def test_tampered_install_tokens_are_rejected_by_a_careful_app(tamper):
    with running() as env:
        response = env.install(tamper=tamper)
        assert response.status_code == 502, response.text
        assert response.json()["status"] == 401
        [seen] = env.peer.seen_at("/installed")
        assert seen.verdict != "ok"
        assert env.client.get(f"{env.site_url}/_jirasim/apps").json()["apps"] == []


def test_install_fails_when_the_app_does_not_answer_2xx():
    peer = Peer()
    peer.statuses["/installed"] = [500]
    with running(peer) as env:
        response = env.install()
        assert response.status_code == 502
        assert response.json()["status"] == 500 and response.json()["error"] == "installed_callback_failed"
        assert env.client.get(f"{env.site_url}/_jirasim/apps").json()["apps"] == []


def test_install_validates_the_descriptor():
    with running() as env:
        bad = env.client.post(f"{env.site_url}/_jirasim/apps/install",
                              json={"descriptor": {"key": "bad key!", "baseUrl": "ftp://x"}})
        assert bad.status_code == 400
        assert len(bad.json()["errors"]) >= 3
        missing = env.client.post(f"{env.site_url}/_jirasim/apps/install",
                                  json={"descriptorUrl": env.peer_url + "/nope.json"})
        assert missing.status_code == 502


def test_disable_enable_and_uninstall_send_signed_lifecycles():
    with running() as env:
        env.install()
        app_id = env.site.apps[env.peer.key].app_account_id
        disabled = env.client.post(f"{env.site_url}/_jirasim/apps/{env.peer.key}/disable")
        assert disabled.status_code == 200 and disabled.json()["enabled"] is False
        assert env.lifecycle_flush()["idle"] is True  # the callback is asynchronous
        [seen] = env.peer.seen_at("/disabled")
        assert seen.verdict == "ok" and seen.json()["eventType"] == "disabled"
        # A disabled app's JWT is refused by the site.
        assert env.as_app("GET", "/rest/api/3/webhook").status_code == 401

        assert env.client.post(f"{env.site_url}/_jirasim/apps/{env.peer.key}/enable").json()["enabled"] is True
        assert env.as_app("GET", "/rest/api/3/webhook").status_code == 200

        gone = env.client.post(f"{env.site_url}/_jirasim/apps/{env.peer.key}/uninstall")
        assert gone.status_code == 200 and gone.json()["status"] == "uninstalled"
        assert env.lifecycle_flush()["idle"] is True
        assert [d["status"] for d in env.lifecycle_deliveries(event="uninstalled")] == [204]
        [uninstalled] = env.peer.seen_at("/uninstalled")
        assert uninstalled.verdict == "ok"  # RS256, same checks as installed
        assert uninstalled.json()["eventType"] == "uninstalled"
        assert env.client.get(f"{env.site_url}/_jirasim/apps").json()["apps"] == []
        assert env.site.users[app_id].active is False
        assert env.client.post(f"{env.site_url}/_jirasim/apps/{env.peer.key}/uninstall").status_code == 404


def test_app_user_exists_and_acts_through_jwt():
    with running() as env:
        env.install()
        me = env.as_app("GET", "/rest/api/3/myself")
        assert me.status_code == 200, me.text
        assert me.json()["accountType"] == "app"
        assert me.json()["accountId"] == env.site.apps[env.peer.key].app_account_id


def test_install_from_a_plain_http_client_without_fixtures():
    """The documented way for any test: POST the descriptor URL to the site's control API."""
    with running() as env:
        response = httpx.post(f"{env.site_url}/_jirasim/apps/install", json={"descriptorUrl": env.peer.descriptor_url})
        assert response.status_code == 200
