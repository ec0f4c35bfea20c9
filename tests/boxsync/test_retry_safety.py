"""Retry safety: a request that may have reached Jira is repeated only when repeating is harmless.

A POST that creates something (an issue link) and then times out or loses its connection may have
been processed: retrying it would create a duplicate link. Idempotent calls (GET, and POSTs that only
read, like search) are retried. Counted on the server side: jirasim's counters, or a loopback server
that reads each request and hangs up without answering.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import socket
import socketserver
import threading
from typing import Iterator

import httpx
import pytest

from boxsync.netpolicy import DEVELOPMENT  # test servers and the simulator listen on loopback
from boxsync.connect.tenants import Tenant
from boxsync.jira import AppJwt, JiraClient, JiraUnavailable, RetryPolicy, app_client, new_http_client
from jirasim.model import InstalledApp
from jirasim.simulator import Simulator
from tests.support.servers import serve

APP_KEY = "boxsync-test"
SECRET = "retry-safety-test-shared-secret-0123456789"
FAST = RetryPolicy(max_attempts=3, max_wait=1, backoff_base=0.01, backoff_max=0.05, jitter=0.01)
READ_TIMEOUT = httpx.Timeout(5.0, read=0.5)


@pytest.fixture(scope="module")
def jira():
    sim = Simulator(seed=3)
    with serve(lambda url: sim.add_site("retry", url, issues=6)) as base_url:
        site = sim.site("retry")
        site.apps[APP_KEY] = InstalledApp(
            key=APP_KEY, base_url="http://127.0.0.1:9", client_key="jira:retry", shared_secret=SECRET,
            oauth_client_id="oauth-retry", descriptor={"key": APP_KEY},
            scopes=frozenset({"READ", "WRITE", "DELETE"}), enabled=True, app_account_id="557058:app-retry")
        now = dt.datetime.now(dt.timezone.utc)
        tenant = Tenant(id=1, client_key="jira:retry", base_url=base_url, display_url=None, product_type="jira",
                        oauth_client_id=None, installed=True, enabled=True, installed_at=now, updated_at=now,
                        shared_secret=SECRET)
        with httpx.Client(base_url=base_url, timeout=10) as control:
            yield {"site": site, "tenant": tenant, "control": control}


@pytest.fixture(autouse=True)
def clean(jira):
    jira["control"].delete("/_jirasim/faults").raise_for_status()
    jira["control"].delete("/_jirasim/counters").raise_for_status()


@pytest.fixture
async def client(jira):
    http = new_http_client(timeout=READ_TIMEOUT, addresses=DEVELOPMENT)
    yield app_client(http, jira["tenant"], APP_KEY, policy=FAST)
    await http.aclose()


def fault(jira, **spec) -> None:
    jira["control"].post("/_jirasim/faults", json=spec).raise_for_status()


def calls(jira, route: str) -> int:
    return jira["control"].get("/_jirasim/counters").json()["routes"].get(route, 0)


def links_between(jira, first: str, second: str) -> int:
    site = jira["site"]
    ids = {site.issue(first).id, site.issue(second).id}
    return sum(1 for link in site.links.values() if {link.source_id, link.destination_id} == ids)


async def test_a_timed_out_create_link_is_not_retried(client, jira):
    first, second = [i.key for i in list(jira["site"].issues.values())[:2]]
    fault(jira, kind="timeout", endpoint="linkIssues", count=1)
    with pytest.raises(JiraUnavailable) as info:
        await client.create_link("Blocks", first, second)
    assert "ReadTimeout" in str(info.value) and "not retried" in str(info.value)
    assert calls(jira, "linkIssues") == 1
    assert links_between(jira, first, second) == 0  # the simulator never processed the held request


async def test_a_timed_out_get_is_retried(client, jira):
    key = next(iter(jira["site"].key_index))
    fault(jira, kind="timeout", endpoint="getIssue", count=1)
    assert (await client.get_issue(key, ["summary"]))["key"] == key
    assert calls(jira, "getIssue") == 2


async def test_a_timed_out_reading_post_is_retried(client, jira):
    fault(jira, kind="timeout", endpoint="searchAndReconsileIssuesUsingJqlPost", count=1)
    project = next(iter(jira["site"].projects.values())).key
    ids = [i async for i in client.iter_issue_ids(f"project = {project}")]
    assert ids
    assert calls(jira, "searchAndReconsileIssuesUsingJqlPost") == 2


# -- a server that reads the request and hangs up ------------------------------------------------------

class _HangUp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            body += chunk
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.requests.append(head.split(b"\r\n", 1)[0].decode())  # type: ignore[attr-defined]
        self.request.shutdown(socket.SHUT_RDWR)  # processed, maybe; answered, never


@contextlib.contextmanager
def hang_up_server() -> Iterator[tuple[str, list[str]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _HangUp)
    server.daemon_threads = True
    server.requests, server.lock = [], threading.Lock()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_a_dropped_connection_after_a_creating_post_is_not_retried():
    with hang_up_server() as (url, requests):
        http = new_http_client(addresses=DEVELOPMENT)
        try:
            jira = JiraClient(http, url, AppJwt(APP_KEY, SECRET), policy=FAST)
            with pytest.raises(JiraUnavailable) as info:
                await jira.create_link("Blocks", "ABC-1", "ABC-2")
            assert info.value.status is None and "not retried" in str(info.value)
            assert requests == ["POST /rest/api/3/issueLink HTTP/1.1"]
            requests.clear()
            with pytest.raises(JiraUnavailable):
                await jira.get_link(10001)  # idempotent: retried up to the policy's bound
            assert requests == ["GET /rest/api/3/issueLink/10001 HTTP/1.1"] * FAST.max_attempts
        finally:
            await http.aclose()


async def test_a_post_that_never_connected_is_retried():
    # Nothing listens on this port: the request cannot have reached Jira, so even a creating POST
    # is tried again, up to the bound.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    http = new_http_client(addresses=DEVELOPMENT)
    attempts = []
    http.event_hooks["request"] = [lambda request: _record(attempts, request)]
    try:
        jira = JiraClient(http, f"http://127.0.0.1:{port}", AppJwt(APP_KEY, SECRET), policy=FAST)
        with pytest.raises(JiraUnavailable) as info:
            await jira.create_link("Blocks", "ABC-1", "ABC-2")
        assert "ConnectError" in str(info.value) and "not retried" not in str(info.value)
        assert len(attempts) == FAST.max_attempts
    finally:
        await http.aclose()


async def _record(attempts: list, request: httpx.Request) -> None:
    attempts.append(request.method)
