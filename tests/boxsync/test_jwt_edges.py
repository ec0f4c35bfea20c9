"""Edges of verifying Jira's tokens, over real HTTP: where the token may be, which claims it needs,
clock leeway, session tokens, install-token audience, and how refusals look.

Complements test_request_auth.py and test_lifecycle.py, which cover the main forgeries.
"""
from __future__ import annotations

import time

import httpx
import jwt
import pytest
import sqlalchemy as sa

from boxsync import crypto
from boxsync.connect.jwt import session_token
from boxsync.connect.tables import tenants
from tests.boxsync.connectkit import (
    APP_KEY, boxsync_server, install_body, install_token, key_server, qsh_of, request_token,
)

SECRET_A, SECRET_B = "a" * 64, "b" * 64
SITE_A, SITE_B = "http://127.0.0.1:2990", "http://127.0.0.1:2991"


@pytest.fixture
def stack(database_url):
    with key_server() as keys, boxsync_server(database_url, keys.url) as url:
        kid, key = keys.new_key()
        for client, secret, site in (("site-a", SECRET_A, SITE_A), ("site-b", SECRET_B, SITE_B)):
            token = install_token(key, kid, iss=client, aud=url, qsh=qsh_of("POST", "/installed"))
            resp = httpx.post(url + "/installed", json=install_body(client, secret, site),
                              headers={"Authorization": f"JWT {token}"})
            assert resp.status_code == 204, resp.text
        yield {"app": url, "kid": kid, "key": key}


def panel(stack) -> str:
    return stack["app"] + "/panel/wbs?issueKey=ABC-1"


def overview(stack) -> str:
    return stack["app"] + "/api/admin/overview"


def good(stack, **kw) -> str:
    return request_token(SECRET_A, iss="site-a", qsh=qsh_of("GET", panel(stack)), **kw)


# -- where the token is ---------------------------------------------------------------------------------

def test_header_and_query_must_not_carry_different_tokens(stack):
    url = panel(stack)
    first, second = good(stack), good(stack, sub="557058:bob")
    assert httpx.get(f"{url}&jwt={first}", headers={"Authorization": f"JWT {first}"}).status_code == 200
    resp = httpx.get(f"{url}&jwt={first}", headers={"Authorization": f"JWT {second}"})
    assert resp.status_code == 401


def test_the_authorization_scheme_is_case_insensitive_and_must_be_jwt(stack):
    url = panel(stack)
    assert httpx.get(url, headers={"Authorization": f"jwt {good(stack)}"}).status_code == 200
    resp = httpx.get(url, headers={"Authorization": f"Bearer {good(stack)}"})
    assert resp.status_code == 401 and "no Jira token" in resp.json()["error"]


def test_a_malformed_token_is_a_401_with_a_challenge(stack):
    resp = httpx.get(panel(stack) + "&jwt=not-a-token")
    assert resp.status_code == 401
    assert resp.json() == {"error": "Malformed token."}
    assert resp.headers["www-authenticate"] == f'JWT realm="{APP_KEY}"'


# -- claims and clocks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("drop", ["iat", "iss", "qsh"])
def test_a_token_without_a_required_claim_is_refused(stack, drop):
    now = int(time.time())
    claims = {"iss": "site-a", "iat": now, "exp": now + 60, "qsh": qsh_of("GET", panel(stack))}
    del claims[drop]
    token = jwt.encode(claims, SECRET_A, algorithm="HS256")
    assert httpx.get(panel(stack) + "&jwt=" + token).status_code == 401


@pytest.mark.parametrize("iss", ["", 12345, ["site-a"]])
def test_an_unusable_issuer_is_refused(stack, iss):
    now = int(time.time())
    token = _hs256({"iss": iss, "iat": now, "exp": now + 60, "qsh": qsh_of("GET", panel(stack))}, SECRET_A)
    resp = httpx.get(panel(stack) + "&jwt=" + token)
    assert resp.status_code == 401 and resp.json()["error"] in ("Invalid token.", "Malformed token.")


def _hs256(claims: dict, secret: str) -> str:
    # Signed by hand: PyJWT refuses to *make* a token whose iss is not a string; Jira-like peers may.
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def test_small_clock_differences_are_tolerated(stack):
    now = int(time.time())
    url = panel(stack)
    just_expired = request_token(SECRET_A, iss="site-a", qsh=qsh_of("GET", url), iat=now - 190, lifetime=180)
    slightly_ahead = request_token(SECRET_A, iss="site-a", qsh=qsh_of("GET", url), iat=now + 10)
    assert httpx.get(url + "&jwt=" + just_expired).status_code == 200
    assert httpx.get(url + "&jwt=" + slightly_ahead).status_code == 200
    long_expired = request_token(SECRET_A, iss="site-a", qsh=qsh_of("GET", url), iat=now - 400, lifetime=180)
    resp = httpx.get(url + "&jwt=" + long_expired)
    assert resp.status_code == 401 and "expired" in resp.json()["error"]


def test_a_computed_route_names_the_mismatch(stack):
    token = request_token(SECRET_A, iss="site-a", qsh="context-qsh")
    resp = httpx.get(panel(stack) + "&jwt=" + token)
    assert resp.status_code == 401 and resp.json() == {"error": "Token does not match this request."}


# -- context routes: Jira's context tokens and our session tokens ---------------------------------------
# Without a user, a verified token on the admin JSON route gets 403 "needs a signed-in Jira
# administrator": verification passed (a refused token is 401), and Jira is not asked anything.

def test_context_tokens_from_jira_and_our_session_tokens_pass_verification(stack):
    accepted = {
        "Jira context token": request_token(SECRET_A, iss="site-a", qsh="context-qsh", sub=None),
        "session token": session_token(APP_KEY, "site-a", SECRET_A, None),
        "session token, aud as a list": jwt.encode(
            {"iss": APP_KEY, "aud": ["site-a"], "iat": int(time.time()), "exp": int(time.time()) + 60,
             "qsh": "context-qsh"}, SECRET_A, algorithm="HS256"),
    }
    for name, token in accepted.items():
        resp = httpx.get(overview(stack), headers={"Authorization": f"JWT {token}"})
        assert resp.status_code == 403 and "signed-in Jira administrator" in resp.json()["error"], name


def test_session_tokens_are_bound_to_their_tenant_and_to_context_routes(stack):
    refused = {
        "aud names B, signed by A": session_token(APP_KEY, "site-b", SECRET_A, None),
        "empty aud list": jwt.encode({"iss": APP_KEY, "aud": [], "iat": int(time.time()),
                                      "exp": int(time.time()) + 60, "qsh": "context-qsh"}, SECRET_A,
                                     algorithm="HS256"),
        "context qsh replaced": jwt.encode({"iss": APP_KEY, "aud": "site-a", "iat": int(time.time()),
                                            "exp": int(time.time()) + 60, "qsh": qsh_of("GET", overview(stack))},
                                           SECRET_A, algorithm="HS256"),
    }
    for name, token in refused.items():
        assert httpx.get(overview(stack), headers={"Authorization": f"JWT {token}"}).status_code == 401, name
    session = session_token(APP_KEY, "site-a", SECRET_A, None)
    assert httpx.get(panel(stack) + "&jwt=" + session).status_code == 401


def test_session_token_claims():
    before = int(time.time())
    token = session_token(APP_KEY, "site-a", SECRET_A, "557058:alice", seconds=120)
    claims = jwt.decode(token, SECRET_A, algorithms=["HS256"], audience="site-a")
    assert claims["iss"] == APP_KEY and claims["aud"] == "site-a" and claims["qsh"] == "context-qsh"
    assert claims["sub"] == "557058:alice" and before <= claims["iat"] <= before + 5
    assert claims["exp"] - claims["iat"] == 120
    assert "sub" not in jwt.decode(session_token(APP_KEY, "site-a", SECRET_A, None), SECRET_A,
                                   algorithms=["HS256"], audience="site-a")
    default = jwt.decode(session_token(APP_KEY, "site-a", SECRET_A, None), SECRET_A, algorithms=["HS256"],
                         audience="site-a")
    assert default["exp"] - default["iat"] == 600


# -- refusals: status, challenge, HTML or JSON -------------------------------------------------------------

def test_refusals_are_html_for_pages_and_only_401_carries_a_challenge(stack):
    url = stack["app"] + "/disabled"
    token = request_token(SECRET_A, iss="site-a", qsh=qsh_of("POST", url))
    assert httpx.post(url, json={}, headers={"Authorization": f"JWT {token}"}).status_code == 204
    resp = httpx.get(panel(stack) + "&jwt=" + good(stack))
    assert resp.status_code == 403 and "www-authenticate" not in resp.headers
    assert resp.json() == {"error": "BoxSync is disabled on this Jira site."}
    page = httpx.get(panel(stack) + "&jwt=" + good(stack), headers={"Accept": "text/html"})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "BoxSync is disabled on this Jira site." in page.text
    unauthenticated = httpx.get(panel(stack), headers={"Accept": "text/html"})
    assert unauthenticated.status_code == 401 and "www-authenticate" in unauthenticated.headers
    assert unauthenticated.headers["content-type"].startswith("text/html")


async def test_an_unreadable_tenant_secret_is_a_500_without_the_secret(stack, engine):
    # As after starting with another BOXSYNC_SECRET_KEY: the stored ciphertext no longer opens.
    async with engine.begin() as conn:
        await conn.execute(tenants.update().where(tenants.c.client_key == "site-a")
                           .values(shared_secret=crypto.encrypt(b"z" * 32, SECRET_A, "site-a")))
    resp = httpx.get(panel(stack) + "&jwt=" + good(stack))
    assert resp.status_code == 500 and "cannot read its stored secret" in resp.json()["error"]
    assert SECRET_A not in resp.text
    # The other tenant is unaffected.
    url = panel(stack)
    other = request_token(SECRET_B, iss="site-b", qsh=qsh_of("GET", url))
    assert httpx.get(url + "&jwt=" + other).status_code == 200


# -- install tokens ------------------------------------------------------------------------------------

def test_install_token_audience_may_end_with_a_slash(stack, engine):
    token = install_token(stack["key"], stack["kid"], iss="site-c", aud=stack["app"] + "/",
                          qsh=qsh_of("POST", "/installed"))
    resp = httpx.post(stack["app"] + "/installed", json=install_body("site-c", "c" * 64, "http://127.0.0.1:2992"),
                      headers={"Authorization": f"JWT {token}"})
    assert resp.status_code == 204, resp.text


def test_install_token_only_in_the_authorization_header(stack):
    token = install_token(stack["key"], stack["kid"], iss="site-c", aud=stack["app"],
                          qsh=qsh_of("POST", "/installed"))
    resp = httpx.post(stack["app"] + f"/installed?jwt={token}",
                      json=install_body("site-c", "c" * 64, "http://127.0.0.1:2992"))
    assert resp.status_code == 401


async def test_install_with_an_unreachable_key_server_is_refused(database_url, engine):
    with boxsync_server(database_url, "http://127.0.0.1:9/keys") as url:
        from cryptography.hazmat.primitives.asymmetric import rsa
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = install_token(key, "kid-1", iss="site-c", aud=url, qsh=qsh_of("POST", "/installed"))
        resp = httpx.post(url + "/installed", json=install_body("site-c", "c" * 64, "http://127.0.0.1:2992"),
                          headers={"Authorization": f"JWT {token}"})
    assert resp.status_code == 401 and resp.json() == {"error": "Install token key could not be verified."}
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(tenants))).scalar_one() == 0
