"""A world for the Boxes tests: one or two jirasim sites with BoxSync installed, over real HTTP,
and small helpers to act as Jira users on BoxSync's JSON API."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import httpx

from boxsync.app import create_app
from boxsync.config import Settings
from jirasim.model import DEFAULT_ADMIN_ACCOUNT_ID
from jirasim.simulator import Simulator
from tests.boxsync.connectkit import SECRET_KEY
from tests.support.servers import serve

ADMIN = DEFAULT_ADMIN_ACCOUNT_ID
ALICE = "557058:00000000-0000-4000-8000-000000000100"  # edits everywhere, not a Jira admin
BOB = "557058:00000000-0000-4000-8000-000000000101"  # browses everywhere
CAROL = "557058:00000000-0000-4000-8000-000000000102"  # cannot browse the first project


@dataclass
class World:
    sim: Simulator
    site: str
    app: str
    database_url: str
    site_name: str = "a"
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def jira(self):  # noqa: ANN201 - the jirasim Site model, to read what Jira holds
        return self.sim.site(self.site_name)

    def token(self, account_id: str) -> str:
        resp = httpx.post(f"{self.site}/_jirasim/context-token", json={"appKey": "boxsync", "accountId": account_id})
        assert resp.status_code == 200, resp.text
        return resp.json()["token"]

    def api(self, method: str, path: str, *, as_: str = ADMIN, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": "JWT " + self.token(as_), **kwargs.pop("headers", {})}
        return httpx.request(method, self.app + path, headers=headers, timeout=60, **kwargs)

    def create_box(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Alpha delivery", "type": "Project", "scope": {"projects": ["ALPHA"]}, **fields}
        resp = self.api("POST", "/api/boxes", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def sync(self, box_id: str, *, as_: str = ADMIN, timeout: float = 60, **body: Any) -> dict[str, Any]:
        """Trigger a sync and wait for it to end; the final status."""
        resp = self.api("POST", f"/api/boxes/{box_id}/sync", as_=as_, json=body or None)
        assert resp.status_code == 202, resp.text
        return self.wait(box_id, timeout=timeout)

    def wait(self, box_id: str, *, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.api("GET", f"/api/boxes/{box_id}/sync").json()
            if status["state"] != "running":
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.05)

    def wbs(self, box_id: str, *, as_: str = ADMIN) -> dict[str, Any]:
        resp = self.api("GET", f"/api/boxes/{box_id}/wbs", as_=as_)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def counters(self) -> dict[str, Any]:
        return httpx.get(f"{self.site}/_jirasim/counters").json()

    def reset_counters(self) -> None:
        assert httpx.delete(f"{self.site}/_jirasim/counters").status_code == 204

    def calls(self, operation: str) -> int:
        """How many calls Jira answered on one of its REST routes (by route name) since the reset."""
        return int(self.counters().get("routes", {}).get(operation, 0))


def settings_for(url: str, site: str, database_url: str, **extra: Any) -> Settings:
    extra.setdefault("sync_fresh_seconds", 0)  # tests open Boxes right after syncing them
    return Settings(base_url=url, database_url=database_url, app_key="boxsync", secret_key=SECRET_KEY,
                    install_keys_url=f"{site}/_jirasim/install-keys", oauth_url=site,
                    all_js_url=f"{site}/_jirasim/all.js", **extra)


def install(site: str, app: str) -> None:
    resp = httpx.post(f"{site}/_jirasim/apps/install", json={"descriptorUrl": f"{app}/atlassian-connect.json"},
                      timeout=30)
    assert resp.status_code == 200, resp.text


@contextlib.contextmanager
def world(database_url: str, *, issues: int = 60, seed: int = 7, site_options: dict | None = None,
          **settings: Any) -> Iterator[World]:
    sim = Simulator(seed=seed)
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(serve(lambda url: sim.add_site("a", url, issues=issues, projects=["ALPHA", "BETA"],
                                                                  **(site_options or {}))))
        app = stack.enter_context(serve(lambda url: create_app(settings_for(url, site, database_url, **settings))))
        install(site, app)
        yield World(sim=sim, site=site, app=app, database_url=database_url)
