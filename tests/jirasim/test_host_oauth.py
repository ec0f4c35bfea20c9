"""OAuth 2.0 JWT-bearer: a Connect app exchanges an assertion for a user's access token."""
from __future__ import annotations

import time

import jwt
import pytest

from tests.jirasim.hostkit import Peer, running


def assertion(env, account_id: str, **overrides) -> str:
    now = int(time.time())
    payload = env.peer.install_payload
    claims = {
        "iss": f"urn:atlassian:connect:clientid:{payload['oauthClientId']}",
        "sub": f"urn:atlassian:connect:useraccountid:{account_id}",
        "tnt": payload["baseUrl"], "aud": env.site_url, "iat": now, "exp": now + 60,
    }
    claims.update(overrides)
    secret = overrides.pop("_secret", None) or env.peer.shared_secret
    claims.pop("_secret", None)
    return jwt.encode(claims, secret, algorithm="HS256")


def exchange(env, token: str, **form):
    return env.client.post(f"{env.site_url}/oauth2/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": token, **form})


def test_token_exchange_then_bearer_call_acts_as_the_user():
    with running() as env:
        env.install()
        alice = env.site.add_user("alice@example.com", "Alice")
        response = exchange(env, assertion(env, alice.account_id))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 900
        assert set(body["scope"].split()) == {"READ", "WRITE"}
        me = env.client.get(f"{env.site_url}/rest/api/3/myself",
                            headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200, me.text
        assert me.json()["accountId"] == alice.account_id
        grant = env.site.oauth_tokens[body["access_token"]]
        assert grant.account_id == alice.account_id and grant.app_key == env.peer.key


@pytest.mark.parametrize("override,error,status", [
    ({"aud": "https://oauth-2-authorization-server.services.atlassian.com"}, "invalid_grant", 400),
    ({"exp": int(time.time()) + 3600}, "invalid_grant", 400),
    ({"exp": int(time.time()) - 600}, "invalid_grant", 400),
    ({"tnt": "https://other.atlassian.net"}, "invalid_grant", 400),
    ({"sub": "urn:atlassian:connect:useraccountid:557058:nobody"}, "invalid_grant", 400),
    ({"iss": "urn:atlassian:connect:clientid:unknown"}, "invalid_client", 401),
    ({"_secret": "x" * 64}, "invalid_grant", 401),
])
def test_bad_assertions_get_oauth2_errors(override, error, status):
    with running() as env:
        env.install()
        account = next(u.account_id for u in env.site.users.values() if u.account_type != "app")
        token = assertion(env, account, **override) if "sub" not in override else assertion(env, "x", **override)
        response = exchange(env, token)
        assert response.status_code == status, response.text
        assert response.json()["error"] == error and response.json()["error_description"]


def test_inactive_user_wrong_grant_type_and_missing_act_as_user_scope():
    with running() as env:
        env.install()
        carol = env.site.add_user("carol@example.com", "Carol", active=False)
        assert exchange(env, assertion(env, carol.account_id)).json()["error"] == "invalid_grant"
        wrong = env.client.post(f"{env.site_url}/oauth2/token", data={"grant_type": "client_credentials"})
        assert wrong.status_code == 400 and wrong.json()["error"] == "unsupported_grant_type"
    with running(Peer(scopes=["READ"])) as env:
        env.install()
        account = "557058:00000000-0000-4000-8000-000000000001"
        response = exchange(env, assertion(env, account))
        assert response.status_code == 401 and response.json()["error"] == "unauthorized_client"
