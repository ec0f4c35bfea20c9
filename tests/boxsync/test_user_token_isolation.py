"""Acting as a user: each (site, user, scopes) gets its own OAuth token, and Jira sees that user.

Against jirasim's OAuth 2.0 JWT-bearer server and REST API on loopback. A token cache that lost a
part of its key would make BoxSync act in Jira as one user with another user's token, or on one
site with a token of another: every call here checks who Jira thinks is calling.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass

import httpx
import pytest

from boxsync.netpolicy import DEVELOPMENT  # test servers and the simulator listen on loopback
from boxsync.connect.tenants import Tenant
from boxsync.jira import OAuthTokens, RetryPolicy, new_http_client, user_client
from jirasim.model import InstalledApp, Site
from jirasim.simulator import Simulator
from tests.support.servers import serve

APP_KEY = "boxsync-test"
SECRETS = {"one": "user-token-test-secret-one-0123456789abcdef", "two": "user-token-test-secret-two-0123456789abcdef"}
FAST = RetryPolicy(max_attempts=2, max_wait=1, backoff_base=0.01, backoff_max=0.05, jitter=0.01)
ALICE, BOB = "557058:alice-0000-4000-8000-000000000001", "557058:bob-00000-4000-8000-000000000002"


@dataclass
class World:
    sites: dict[str, Site]
    tenants: dict[str, Tenant]
    oauth_url: str  # real Atlassian has one authorization server for every site: here site one's

    def exchanges(self) -> int:
        return sum(site.traffic.by_endpoint.get("POST /oauth2/token", 0) for site in self.sites.values())

    def grants(self, name: str) -> list[str]:
        """Account ids of the tokens site `name` issued, in order."""
        return [grant.account_id for grant in self.sites[name].oauth_tokens.values()]


@pytest.fixture(scope="module")
def world():
    sim = Simulator(seed=5)
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(serve(lambda url, name=name: sim.add_site(name, url, issues=3)))
                for name in SECRETS}
        now = dt.datetime.now(dt.timezone.utc)
        sites, tenants = {}, {}
        for index, (name, url) in enumerate(urls.items(), start=1):
            site = sites[name] = sim.site(name)
            client_key = f"jira:{name}"
            site.apps[APP_KEY] = InstalledApp(
                key=APP_KEY, base_url="http://127.0.0.1:9", client_key=client_key, shared_secret=SECRETS[name],
                oauth_client_id=f"oauth-{name}", descriptor={"key": APP_KEY},
                scopes=frozenset({"READ", "WRITE", "ACT_AS_USER"}), enabled=True,
                app_account_id=f"557058:app-{name}")
            # The same two people work on both sites (one Atlassian account each).
            site.add_user("alice@example.com", "Alice", account_id=ALICE)
            site.add_user("bob@example.com", "Bob", account_id=BOB)
            tenants[name] = Tenant(id=index, client_key=client_key, base_url=url, display_url=None,
                                   product_type="jira", oauth_client_id=f"oauth-{name}", installed=True,
                                   enabled=True, installed_at=now, updated_at=now, shared_secret=SECRETS[name])
        yield World(sites, tenants, urls["one"])


@pytest.fixture(autouse=True)
def clean(world):
    for site in world.sites.values():
        site.oauth_tokens.clear()
        site.traffic.reset_counters()


@pytest.fixture
async def http():
    client = new_http_client(addresses=DEVELOPMENT)
    yield client
    await client.aclose()


async def me(http, tokens, tenant, account_id, **kw) -> str:
    return (await user_client(http, tokens, tenant, account_id, policy=FAST, **kw).myself())["accountId"]


async def test_two_users_of_one_site_each_act_as_themselves(http, world):
    tokens = OAuthTokens(http, world.oauth_url)
    one = world.tenants["one"]
    # Interleaved, and each twice: the second round is served from the cache.
    for _ in range(2):
        assert await me(http, tokens, one, ALICE) == ALICE
        assert await me(http, tokens, one, BOB) == BOB
    assert world.exchanges() == 2
    assert sorted(world.grants("one")) == sorted([ALICE, BOB])
    traffic = world.sites["one"].traffic.by_caller
    assert traffic[f"user:{ALICE}"] == 2 and traffic[f"user:{BOB}"] == 2


async def test_the_same_user_on_two_sites_gets_a_token_per_site(http, world):
    tokens = OAuthTokens(http, world.oauth_url)
    for _ in range(2):
        for name in ("one", "two"):
            assert await me(http, tokens, world.tenants[name], ALICE) == ALICE
    assert world.exchanges() == 2
    assert world.grants("one") == [ALICE] and world.grants("two") == [ALICE]
    # Each site was called only with a token it issued itself.
    for site in world.sites.values():
        assert site.traffic.by_caller[f"user:{ALICE}"] == 2 and "user:?" not in site.traffic.by_caller


async def test_scopes_are_part_of_the_token(http, world):
    tokens = OAuthTokens(http, world.oauth_url)
    one = world.tenants["one"]
    assert await me(http, tokens, one, ALICE, scopes=["read"]) == ALICE
    assert await me(http, tokens, one, ALICE, scopes=["READ", "read"]) == ALICE  # same scopes: cached
    assert await me(http, tokens, one, ALICE) == ALICE  # all of the app's scopes: another token
    assert world.exchanges() == 2


async def test_a_revoked_token_is_replaced_for_its_user_only(http, world):
    tokens = OAuthTokens(http, world.oauth_url)
    one = world.tenants["one"]
    assert await me(http, tokens, one, ALICE) == ALICE
    assert await me(http, tokens, one, BOB) == BOB
    site = world.sites["one"]
    for value in [v for v, grant in site.oauth_tokens.items() if grant.account_id == ALICE]:
        del site.oauth_tokens[value]  # Jira revoked Alice's token
    assert await me(http, tokens, one, ALICE) == ALICE  # 401, one new exchange, retried
    assert await me(http, tokens, one, BOB) == BOB  # Bob's token was kept
    assert world.exchanges() == 3
    assert site.traffic.by_status.get(401) == 1
