"""BoxSync and a simulated Jira whose lifecycle callbacks arrive late or out of order, and whose
cascaded webhooks come later on the Secondary flow — end to end over real HTTP, both databases."""
from __future__ import annotations

import contextlib

import httpx
import pytest
import sqlalchemy as sa

from boxsync.app import create_app
from boxsync.config import Settings
from boxsync.connect.tables import tenants
from boxsync.sync.tables import webhook_inbox
from jirasim.simulator import Simulator
from tests.boxsync.connectkit import SECRET_KEY
from tests.support.servers import serve


class Jira:
    """The control side of one simulated site."""

    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, **body) -> httpx.Response:
        response = httpx.post(f"{self.url}/_jirasim{path}", json=body, timeout=30)
        assert response.status_code < 300, response.text
        return response

    def act(self, action: str) -> None:
        self.post(f"/apps/boxsync/{action}")

    def at(self, seconds_ago: int) -> None:
        """Issue the next lifecycle events `seconds_ago` seconds in the past."""
        self.post("/lifecycle/clock", offset_ms=-1000 * seconds_ago)

    def hold(self, events: list[str] | bool) -> None:
        self.post("/lifecycle/faults", hold=events)

    def flush(self) -> dict:
        return self.post("/lifecycle/flush").json()

    def release(self, order: str = "fifo") -> None:
        self.post("/lifecycle/release", order=order)
        assert self.flush()["idle"]

    def install(self, app_url: str) -> httpx.Response:
        return httpx.post(f"{self.url}/_jirasim/apps/install",
                          json={"descriptorUrl": f"{app_url}/atlassian-connect.json"}, timeout=30)


@pytest.fixture
def world(database_url):
    sim = Simulator(seed=5)
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(serve(lambda url: sim.add_site("a", url, issues=5)))
        settings = lambda url: Settings(  # noqa: E731
            base_url=url, database_url=database_url, app_key="boxsync", secret_key=SECRET_KEY,
            install_keys_url=f"{site}/_jirasim/install-keys", oauth_url=site, all_js_url=f"{site}/_jirasim/all.js")
        app = stack.enter_context(serve(lambda url: create_app(settings(url))))
        jira = Jira(site)
        jira.at(60)  # installed a minute ago, so every later event is clearly newer
        assert jira.install(app).status_code == 200
        assert jira.flush()["idle"]
        jira.at(0)
        yield jira, app


async def state(engine) -> tuple[bool, bool]:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(tenants.c.installed, tenants.c.enabled))).one()
    return row.installed, row.enabled


async def test_a_late_uninstalled_issued_before_a_reinstall_leaves_the_site_installed(world, engine):
    jira, app = world
    jira.hold(["uninstalled"])
    jira.act("uninstall")  # `disabled` arrives, `uninstalled` is held up somewhere
    assert jira.flush()["held"] == 1
    assert await state(engine) == (True, False)
    assert jira.install(app).status_code == 200  # the admin installs again (same second or not)
    assert jira.flush()["idle"]
    assert await state(engine) == (True, True)  # Jira's `enabled` after the install
    jira.release()  # ...and now the old uninstall turns up
    assert await state(engine) == (True, True)
    statuses = [d["status"] for d in httpx.get(f"{jira.url}/_jirasim/lifecycle/deliveries").json()["deliveries"]
                if d["event"] == "uninstalled" and d["outcome"] == "delivered"]
    assert statuses == [204]  # answered, not refused: Jira must not see an error for it


async def test_a_disable_then_a_delayed_older_enable_leaves_the_site_disabled(world, engine):
    jira, _ = world
    jira.hold(["enabled"])
    jira.act("enable")  # held up...
    jira.act("disable")  # ...while the later disable arrives (same second or not)
    assert jira.flush()["held"] == 1
    assert await state(engine) == (True, False)
    jira.release()
    assert await state(engine) == (True, False)


@pytest.mark.parametrize("first,second,newest", [("disable", "enable", True), ("enable", "disable", False)])
async def test_reordered_enable_and_disable_converge_to_the_newest(world, engine, first, second, newest):
    jira, _ = world
    jira.hold(True)
    jira.at(10)
    jira.act(first)
    jira.at(0)
    jira.act(second)
    assert jira.flush()["held"] == 2
    jira.release("reverse")  # the newest arrives first, the older one last
    assert await state(engine) == (True, newest)


async def test_webhooks_reach_a_site_boxsync_wrongly_believes_disabled(world, engine):
    jira, _ = world
    jira.act("disable")
    assert jira.flush()["idle"] and await state(engine) == (True, False)
    jira.post("/lifecycle/faults", drop=1)
    jira.act("enable")  # lost on the way: Jira has the app enabled, BoxSync does not know
    assert jira.flush()["idle"] and await state(engine) == (True, False)
    created = jira.post("/issues", project="ALPHA", summary="made while BoxSync thought it was disabled").json()
    assert httpx.post(f"{jira.url}/_jirasim/webhooks/flush", json={}, timeout=30).json()["idle"]
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(webhook_inbox.c.event, webhook_inbox.c.issue_id))).all()
    assert ("jira:issue_created", created["id"]) in rows
    attempts = httpx.get(f"{jira.url}/_jirasim/webhooks/deliveries").json()["deliveries"]
    assert {a["status"] for a in attempts} == {204}


async def test_an_issue_delete_and_its_later_cascade_are_all_stored(world, engine):
    jira, _ = world
    doomed = jira.post("/issues", project="ALPHA", summary="doomed").json()
    other = jira.post("/issues", project="ALPHA", summary="other").json()
    link = jira.post("/links", type="Blocks", source=doomed["key"], destination=other["key"]).json()
    httpx.delete(f"{jira.url}/_jirasim/issues/{doomed['key']}")
    assert httpx.post(f"{jira.url}/_jirasim/webhooks/flush", json={}, timeout=30).json()["idle"]
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(webhook_inbox.c.event, webhook_inbox.c.issue_id, webhook_inbox.c.payload)
                                   .order_by(webhook_inbox.c.id))).all()
    events = [r.event for r in rows]
    # Received in Jira's lanes' order: the delete (Primary) before the link it cascaded to (Secondary).
    assert events[-2:] == ["jira:issue_deleted", "issuelink_deleted"]
    assert rows[-2].issue_id == doomed["id"] and str(link["id"]) in rows[-1].payload
