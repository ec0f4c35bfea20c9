"""The OAuth 2.0 JWT-bearer exchange (acting as a user): scopes, throttling, outages, bad answers.

Throttling and outages are injected into jirasim's token endpoint with its fault API. Answers no
real authorization server should give (a 200 without a usable token) come from a small loopback
stand-in for the authorization server; BoxSync must refuse them rather than send "Bearer None".
"""
from __future__ import annotations

import datetime as dt

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from boxsync.netpolicy import DEVELOPMENT  # test servers and the simulator listen on loopback
from boxsync.connect.tenants import Tenant
from boxsync.jira import (
    JiraAuthError, JiraForbidden, JiraRateLimited, JiraUnavailable, OAuthTokens, RetryPolicy, new_http_client,
    user_client,
)
from jirasim.model import InstalledApp
from jirasim.simulator import Simulator
from tests.support.servers import serve

SECRET = "oauth-exchange-test-secret-0123456789abcdef"
FAST = RetryPolicy(max_attempts=3, max_wait=1, backoff_base=0.01, backoff_max=0.05, jitter=0.01)
ALICE = "557058:alice-0000-4000-8000-00000000000a"
TOKEN_ENDPOINT = "/oauth2/token"


def _tenant(client_key: str, base_url: str, oauth_client_id: str) -> Tenant:
    now = dt.datetime.now(dt.timezone.utc)
    return Tenant(id=1, client_key=client_key, base_url=base_url, display_url=None, product_type="jira",
                  oauth_client_id=oauth_client_id, installed=True, enabled=True, installed_at=now,
                  updated_at=now, shared_secret=SECRET)


@pytest.fixture(scope="module")
def jira():
    sim = Simulator(seed=9)
    with serve(lambda url: sim.add_site("oauth", url, issues=3)) as base_url:
        site = sim.site("oauth")
        # Two apps on the site: one may read and write, the other only read.
        for key, scopes in (("boxsync-rw", {"READ", "WRITE"}), ("boxsync-ro", {"READ"})):
            site.apps[key] = InstalledApp(
                key=key, base_url="http://127.0.0.1:9", client_key=f"jira:{key}", shared_secret=SECRET,
                oauth_client_id=f"oauth-{key}", descriptor={"key": key}, scopes=frozenset(scopes | {"ACT_AS_USER"}),
                enabled=True, app_account_id=f"557058:app-{key}")
        site.add_user("alice@example.com", "Alice", account_id=ALICE)
        with httpx.Client(base_url=base_url, timeout=10) as control:
            yield {"site": site, "url": base_url, "control": control,
                   "rw": _tenant("jira:boxsync-rw", base_url, "oauth-boxsync-rw"),
                   "ro": _tenant("jira:boxsync-ro", base_url, "oauth-boxsync-ro")}


@pytest.fixture(autouse=True)
def clean(jira):
    jira["control"].delete("/_jirasim/faults").raise_for_status()
    jira["control"].delete("/_jirasim/counters").raise_for_status()


@pytest.fixture
async def http():
    client = new_http_client(timeout=httpx.Timeout(5.0, read=0.5), addresses=DEVELOPMENT)
    yield client
    await client.aclose()


def fault(jira, **spec) -> None:
    jira["control"].post("/_jirasim/faults", json=spec).raise_for_status()


def token_requests(jira) -> int:
    return jira["control"].get("/_jirasim/counters").json()["endpoints"].get(f"POST {TOKEN_ENDPOINT}", 0)


def rest_requests(jira) -> int:
    counters = jira["control"].get("/_jirasim/counters").json()
    return counters["total"] - token_requests(jira)


# -- scopes ----------------------------------------------------------------------------------------------

async def test_requested_scopes_are_sent_to_the_authorization_server(http, jira):
    tokens = OAuthTokens(http, jira["url"], policy=FAST)
    # Both scopes asked for, space-separated: granted, and the user can act.
    both = user_client(http, tokens, jira["rw"], ALICE, scopes=["write", "read"], policy=FAST)
    assert (await both.myself())["accountId"] == ALICE
    # A scope the app does not have is refused by the authorization server: it was asked for.
    beyond = user_client(http, tokens, jira["ro"], ALICE, scopes=["write"], policy=FAST)
    with pytest.raises(JiraAuthError) as info:
        await beyond.myself()
    assert "invalid_scope" in str(info.value) and info.value.status == 400
    assert tokens.exchanges == 2 and token_requests(jira) == 2


async def test_a_read_only_user_token_cannot_write(http, jira):
    tokens = OAuthTokens(http, jira["url"], policy=FAST)
    reader = user_client(http, tokens, jira["rw"], ALICE, scopes=["read"], policy=FAST)
    key = next(iter(jira["site"].key_index))
    with pytest.raises(JiraForbidden):
        await reader.edit_issue(key, {"summary": "written with a READ token"})


async def test_a_revoked_scoped_token_is_exchanged_again(http, jira):
    tokens = OAuthTokens(http, jira["url"], policy=FAST)
    reader = user_client(http, tokens, jira["rw"], ALICE, scopes=["read"], policy=FAST)
    assert (await reader.myself())["accountId"] == ALICE
    jira["site"].oauth_tokens.clear()  # revoked by Jira
    assert (await reader.myself())["accountId"] == ALICE
    assert token_requests(jira) == 2


# -- throttling and outages of the token endpoint --------------------------------------------------------

async def test_a_long_retry_after_on_the_token_endpoint_is_rate_limited(http, jira):
    fault(jira, kind="rate_limit", endpoint=TOKEN_ENDPOINT, retry_after=3600, reason="jira-quota-global-based")
    tokens = OAuthTokens(http, jira["url"], policy=FAST)
    with pytest.raises(JiraRateLimited) as info:
        await user_client(http, tokens, jira["rw"], ALICE, policy=FAST).myself()
    assert info.value.status == 429 and info.value.retry_after == 3600
    assert token_requests(jira) == 1 and rest_requests(jira) == 0


async def test_a_short_retry_after_on_the_token_endpoint_is_waited_out(http, jira):
    fault(jira, kind="rate_limit", endpoint=TOKEN_ENDPOINT, retry_after=0, count=1)
    tokens = OAuthTokens(http, jira["url"], policy=FAST)
    assert (await user_client(http, tokens, jira["rw"], ALICE, policy=FAST).myself())["accountId"] == ALICE
    assert token_requests(jira) == 2


@pytest.mark.parametrize("status", [500, 503])
async def test_a_failing_token_endpoint_is_retried_then_unavailable(http, jira, status):
    fault(jira, kind="error", status=status, endpoint=TOKEN_ENDPOINT)
    tokens = OAuthTokens(http, jira["url"], policy=FAST)
    with pytest.raises(JiraUnavailable) as info:
        await user_client(http, tokens, jira["rw"], ALICE, policy=FAST).myself()
    assert info.value.status == status and not isinstance(info.value, JiraAuthError)
    assert token_requests(jira) == FAST.max_attempts and rest_requests(jira) == 0


async def test_a_timed_out_token_request_is_retried(http, jira):
    # Trading an assertion for a token creates nothing in Jira: repeating it is harmless.
    fault(jira, kind="timeout", endpoint=TOKEN_ENDPOINT, count=1)
    tokens = OAuthTokens(http, jira["url"], policy=FAST)
    assert (await user_client(http, tokens, jira["rw"], ALICE, policy=FAST).myself())["accountId"] == ALICE
    assert token_requests(jira) == 2 and tokens.exchanges == 1


# -- answers without a usable token ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def odd_server():
    """A stand-in authorization server answering POST /oauth2/token with whatever the test set."""
    state: dict = {"answer": (200, {}), "requests": 0}

    async def token(request: Request) -> Response:
        state["requests"] += 1
        status, body = state["answer"]
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=status)
        return JSONResponse(body, status_code=status)

    with serve(lambda url: Starlette(routes=[Route(TOKEN_ENDPOINT, token, methods=["POST"])]),
               lifespan="off") as url:
        yield url, state


async def _exchange(http, url: str) -> str:
    tokens = OAuthTokens(http, url, policy=FAST)
    return await tokens.access_token(client_key="jira:odd", base_url="https://odd.atlassian.net",
                                     shared_secret=SECRET, oauth_client_id="oauth-odd", account_id=ALICE)


@pytest.mark.parametrize("body, message", [
    ({"expires_in": 900, "token_type": "Bearer"}, "without access_token"),
    ("<html>not json</html>", "without access_token"),
    ([{"access_token": "t"}], "without access_token"),
    ({"access_token": "", "expires_in": 900}, "usable"),
    ({"access_token": None, "expires_in": 900}, "usable"),
    ({"access_token": 12345, "expires_in": 900}, "usable"),
    ({"access_token": "t0k3n"}, "usable"),  # no lifetime: cannot be cached safely
    ({"access_token": "t0k3n", "expires_in": 0}, "usable"),
    ({"access_token": "t0k3n", "expires_in": -5}, "usable"),
    ({"access_token": "t0k3n", "expires_in": "soon"}, "without access_token"),
])
async def test_a_200_without_a_usable_token_is_an_auth_error(http, odd_server, body, message):
    url, state = odd_server
    state["answer"] = (200, body)
    with pytest.raises(JiraAuthError) as info:
        await _exchange(http, url)
    error = info.value
    assert error.status == 200 and message in str(error)
    assert error.method == "POST" and error.url == f"{url}{TOKEN_ENDPOINT}"
    assert SECRET not in str(error)


async def test_a_short_lived_token_is_accepted(http, odd_server):
    url, state = odd_server
    state["answer"] = (200, {"access_token": "short-lived", "expires_in": 1})
    assert await _exchange(http, url) == "short-lived"


async def test_a_refusal_is_an_auth_error_with_the_servers_words(http, odd_server):
    url, state = odd_server
    state["answer"] = (401, {"error": "invalid_client", "error_description": "Unknown OAuth client"})
    before = state["requests"]
    with pytest.raises(JiraAuthError) as info:
        await _exchange(http, url)
    assert info.value.status == 401 and "invalid_client: Unknown OAuth client" in str(info.value)
    assert state["requests"] == before + 1  # a refusal is final: not retried
