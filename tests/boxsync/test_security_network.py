"""The address policy, enforced where connections are made.

Production reaches public addresses only: loopback, private, shared (100.64.0.0/10), link-local and
their IPv6 wrappings are refused before a connection is opened, for every kind of client (app JWT,
user OAuth, Basic, install keys), and names are checked by what they resolve to. Listeners on
loopback count every connection they accept, so "refused" means nothing reached them.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass, field

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from boxsync import crypto
from boxsync.app import create_app
from boxsync.config import Settings
from boxsync.connect.install_keys import InstallKeys, KeyUnavailable
from boxsync.connect.tables import tenants
from boxsync.connect.tenants import Tenant
from boxsync.jira import OAuthTokens, app_client, basic_client, new_http_client, user_client
from boxsync.netpolicy import DEVELOPMENT, PRODUCTION, AddressRefused, URLRefused, check_site_url
from tests.boxsync.connectkit import APP_KEY, SECRET_KEY, install_body, install_token, key_server, qsh_of, request_token
from tests.support.servers import serve

SECRET = "network-test-shared-secret-0123456789abcdef"


@dataclass
class Listeners:
    """Minimal HTTP responders on 127.0.0.1 and ::1 that count accepted connections and requests."""
    v4: int = 0
    v6: int = 0
    connections: int = 0
    requests: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.decode("latin-1"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                     b"Connection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()


@pytest.fixture
async def listeners():
    found = Listeners()
    v4 = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    v6 = await asyncio.start_server(found.handle, "::1", 0)
    found.v4 = v4.sockets[0].getsockname()[1]
    found.v6 = v6.sockets[0].getsockname()[1]
    yield found
    for server in (v4, v6):
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def pool(addresses):
    http = new_http_client(addresses=addresses)
    try:
        yield http
    finally:
        await http.aclose()


def targets(ports: Listeners) -> list[str]:
    """Hosts that are, or resolve to, a non-public address; loopback ones point at the listeners."""
    return [
        f"127.0.0.1:{ports.v4}", f"localhost:{ports.v4}", f"127.1.2.3:{ports.v4}",
        f"[::1]:{ports.v6}", f"[::ffff:127.0.0.1]:{ports.v4}", f"[::ffff:7f00:1]:{ports.v4}",
        f"[64:ff9b::7f00:1]:{ports.v4}", f"[2002:7f00:1::]:{ports.v4}", f"0.0.0.0:{ports.v4}",
        "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "100.127.255.254", "169.254.169.254",
        "[fe80::1]", "[fc00::1]", "[::ffff:10.0.0.1]", "[::ffff:100.64.0.1]", "198.18.0.1", "224.0.0.1",
    ]


async def test_production_refuses_every_non_public_address_before_connecting(listeners):
    async with pool(PRODUCTION) as http:
        for host in targets(listeners):
            for scheme in ("http", "https"):
                with pytest.raises(AddressRefused, match="not a public address"):
                    await http.get(f"{scheme}://{host}/rest/api/3/myself")
    assert listeners.connections == 0 and listeners.requests == []

    # The listeners were there: a development pool reaches loopback, by address and by name, and the
    # request names the host it was made for while the socket went to the address that was checked.
    async with pool(DEVELOPMENT) as http:
        for host in (f"127.0.0.1:{listeners.v4}", f"localhost:{listeners.v4}", f"[::1]:{listeners.v6}"):
            assert (await http.get(f"http://{host}/rest/api/3/myself")).status_code == 200
        # Development still refuses what is neither public nor loopback.
        with pytest.raises(AddressRefused):
            await http.get("http://169.254.169.254/latest/meta-data/")
    assert listeners.connections == 3
    assert [r.split("\r\n")[0] for r in listeners.requests] == ["GET /rest/api/3/myself HTTP/1.1"] * 3
    assert f"host: localhost:{listeners.v4}" in listeners.requests[1].lower()


async def test_every_kind_of_client_goes_through_the_policy(listeners):
    site = f"http://localhost:{listeners.v4}"
    now = dt.datetime.now(dt.timezone.utc)
    tenant = Tenant(id=1, client_key="jira:net", base_url=site, display_url=None, product_type="jira",
                    oauth_client_id="oauth-net", installed=True, enabled=True, installed_at=now, updated_at=now,
                    shared_secret=SECRET)
    async with pool(PRODUCTION) as http:
        with pytest.raises(AddressRefused):
            await app_client(http, tenant, APP_KEY).myself()
        with pytest.raises(AddressRefused):
            await basic_client(http, site, "robot@example.com", "api-token").myself()
        tokens = OAuthTokens(http, f"http://127.0.0.1:{listeners.v4}")
        with pytest.raises(AddressRefused):  # the token exchange itself is refused
            await user_client(http, tokens, tenant, "557058:alice").myself()
        keys = InstallKeys(f"http://[::1]:{listeners.v6}/keys", http)
        with pytest.raises(KeyUnavailable, match="address refused"):
            await keys.get("kid-1")
    assert listeners.connections == 0


@pytest.mark.parametrize("url", [
    "https://100.64.0.1", "https://[::ffff:127.0.0.1]", "https://[::ffff:10.1.2.3]", "https://192.168.0.10",
    "https://[64:ff9b::a00:1]", "https://198.51.100.7", "https://localhost",
])
async def test_install_time_check_uses_the_same_rule(url):
    with pytest.raises(URLRefused):
        await check_site_url(url, production=True)


def recorder():
    """A loopback HTTP server that records every request it receives."""
    hits: list[str] = []

    async def anything(request: Request):
        hits.append(f"{request.method} {request.url.path}")
        return JSONResponse({})

    app = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST", "PUT", "DELETE"])])
    return hits, app


async def test_a_production_app_calls_no_loopback_address(database_url, engine):
    hits, jira = recorder()
    with key_server() as keys, serve(lambda url: jira, lifespan="off") as site:
        settings = lambda url: Settings(  # noqa: E731
            base_url=url, database_url=database_url, app_key=APP_KEY, secret_key=SECRET_KEY,
            install_keys_url=keys.url, oauth_url=site, env="production")
        with serve(lambda url: create_app(settings(url))) as app:
            # The install key server is on loopback: its key is never fetched, the install refused.
            kid, key = keys.new_key()
            token = install_token(key, kid, iss="jira:net", aud=app, qsh=qsh_of("POST", "/installed"))
            resp = httpx.post(app + "/installed", json=install_body("jira:net", SECRET, "https://acme.atlassian.net"),
                              headers={"Authorization": f"JWT {token}"})
            assert resp.status_code == 401 and keys.hits == []

            # A tenant whose site now resolves to loopback: the admin check asks nothing of it.
            now = dt.datetime.now(dt.timezone.utc)
            async with engine.begin() as conn:
                await conn.execute(sa.insert(tenants).values(
                    client_key="jira:net", base_url=site.replace("127.0.0.1", "localhost"), product_type="jira",
                    shared_secret=crypto.encrypt(SECRET_KEY, SECRET, "jira:net"), installed=True, enabled=True,
                    installed_at=now, updated_at=now))
            context = request_token(SECRET, iss="jira:net", qsh="context-qsh")
            resp = httpx.get(app + "/api/admin/overview", headers={"Authorization": f"JWT {context}"})
            assert resp.status_code == 502 and "not public" in resp.json()["error"]
    assert hits == []
