"""Install-key fetches cannot be used as a lever against genuine installs.

Issue 6: with one lock held across every key fetch, ten requests naming made-up kids delayed a
genuine install by 20 s. Here a key server that is slow about kids it does not know (it holds the
answer until the test releases it) shows the genuine install completing while all ten made-up
fetches are still pending; then that a made-up kid is asked about once, and that one source can
only spend its own budget of new-kid fetches.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from boxsync.connect.install_keys import InstallKeys, KeyUnavailable, TooManyKeyLookups
from tests.boxsync.connectkit import (
    boxsync_server, install_body, install_token, key_server, public_pem, qsh_of,
)
from tests.support.servers import serve

SITE = "http://127.0.0.1:2990"
SECRET = "s" * 64
HOLD_AT_MOST = 3.0  # seconds the slow key server keeps an unknown kid's answer when not released


@dataclass
class SlowKeyServer:
    url: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    answered_unknown: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    def new_key(self) -> tuple[str, rsa.RSAPrivateKey]:
        kid = f"kid-{uuid.uuid4().hex[:10]}"
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid, self.keys[kid]


@contextlib.contextmanager
def slow_key_server() -> Iterator[SlowKeyServer]:
    """Answers known kids at once; holds the 404 for unknown kids until released (or a few seconds)."""
    ks = SlowKeyServer()

    async def get_key(request):
        kid = request.path_params["kid"]
        ks.hits.append(kid)
        if kid in ks.keys:
            return Response(public_pem(ks.keys[kid]), media_type="application/x-pem-file")
        deadline = time.monotonic() + HOLD_AT_MOST
        while not ks.release.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        ks.answered_unknown += 1
        return PlainTextResponse("Not Found", status_code=404)

    def factory(url: str):
        ks.url = url + "/keys"
        return Starlette(routes=[Route("/keys/{kid:path}", get_key)])

    with serve(factory, lifespan="off"):
        yield ks


def install(client_key: str, key, kid: str, app: str, *, source: str | None = None) -> dict:
    token = install_token(key, kid, iss=client_key, aud=app, qsh=qsh_of("POST", "/installed"))
    headers = {"Authorization": f"JWT {token}"}
    if source:  # uvicorn trusts X-Forwarded-For from 127.0.0.1, as from a proxy in front of us
        headers["X-Forwarded-For"] = source
    return {"url": app + "/installed", "json": install_body(client_key, SECRET, SITE), "headers": headers}


async def test_made_up_kids_in_flight_do_not_delay_a_genuine_install(database_url):
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with slow_key_server() as keys, boxsync_server(database_url, keys.url) as app:
        kid, key = keys.new_key()
        async with httpx.AsyncClient(timeout=60) as client:
            fakes = [asyncio.create_task(client.post(**install(f"fake-{i}", attacker, f"made-up-{i}", app)))
                     for i in range(10)]
            # All ten fetches reach the key server together (none waits for another)...
            deadline = time.monotonic() + 2 * HOLD_AT_MOST
            while len(keys.hits) < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert sorted(keys.hits) == sorted(f"made-up-{i}" for i in range(10))
            # ...and while they are all pending, a genuine install with a new kid goes through.
            genuine = await client.post(**install("client-a", key, kid, app))
            assert genuine.status_code == 204, genuine.text
            assert keys.answered_unknown == 0 and all(not f.done() for f in fakes)
            keys.release.set()
            assert [r.status_code for r in await asyncio.gather(*fakes)] == [401] * 10

            # A made-up kid is asked about once: repeats are answered from memory, at once.
            again = await asyncio.gather(*[client.post(**install(f"fake-{i}", attacker, f"made-up-{i}", app))
                                           for i in range(10)])
            assert [r.status_code for r in again] == [401] * 10
            # Concurrent installs naming one new kid share a single fetch.
            kid_b, key_b = keys.new_key()
            both = await asyncio.gather(*[client.post(**install(f"client-{c}", key_b, kid_b, app)) for c in "bcd"])
            assert [r.status_code for r in both] == [204] * 3
    assert len(keys.hits) == 12 and keys.hits.count(kid) == 1 and keys.hits.count(kid_b) == 1


def test_one_source_cannot_spend_everyone_s_key_lookups(database_url):
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with key_server() as keys, boxsync_server(database_url, keys.url) as app:
        flood = [httpx.post(**install("fake", attacker, f"made-up-{i}", app, source="203.0.113.7"))
                 for i in range(25)]
        assert [r.status_code for r in flood] == [401] * 20 + [429] * 5
        assert "try again in a minute" in flood[-1].json()["error"]
        assert len(keys.hits) == 20  # the refused ones never reached the key server
        # Another source still gets a genuine new kid fetched and its install accepted...
        kid, key = keys.new_key()
        assert httpx.post(**install("client-a", key, kid, app, source="198.51.100.9")).status_code == 204
        # ...and once known, that kid is served from the cache, to the flooding source too.
        assert httpx.post(**install("client-b", key, kid, app, source="203.0.113.7")).status_code == 204
        assert keys.hits[20:] == [kid]


async def test_budget_window_memory_and_bounds():
    now = [1000.0]
    with key_server() as server:
        kid, _ = server.new_key()
        async with httpx.AsyncClient() as http:
            keys = InstallKeys(server.url, http, per_source=2, total=3, window=60, miss_seconds=30,
                               max_misses=2, clock=lambda: now[0])
            with pytest.raises(KeyUnavailable):
                await keys.get("unknown-1", source="2001:db8:1:2::10")
            with pytest.raises(KeyUnavailable):  # same /64: the same source
                await keys.get("unknown-2", source="2001:db8:1:2::99")
            with pytest.raises(TooManyKeyLookups):
                await keys.get("unknown-3", source="2001:db8:1:2:ffff::1")
            with pytest.raises(KeyUnavailable):
                await keys.get("unknown-3", source="192.0.2.1")
            with pytest.raises(TooManyKeyLookups):  # the global budget is spent too
                await keys.get(kid, source="192.0.2.2")
            assert server.hits == ["unknown-1", "unknown-2", "unknown-3"]
            # Remembered misses cost no budget and no request; only max_misses are kept (unknown-1 went).
            with pytest.raises(KeyUnavailable, match="moments ago"):
                await keys.get("unknown-3", source="192.0.2.3")
            now[0] += 60  # a new window
            assert (await keys.get(kid, source="192.0.2.2")).key_size == 2048
            with pytest.raises(KeyUnavailable):
                await keys.get("unknown-1")
            assert server.hits[3:] == [kid, "unknown-1"]
            now[0] += 31  # memory of misses expires
            with pytest.raises(KeyUnavailable):
                await keys.get("unknown-3")
            assert server.hits[5:] == ["unknown-3"] and keys.fetches == 6
