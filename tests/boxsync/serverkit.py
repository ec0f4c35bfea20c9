"""BoxSync servers whose database use a test can watch, and the requests those tests make.

`boxsync_app` starts BoxSync like `connectkit.boxsync_server` but also hands back the app, so a
test can count the pool checkouts its engine makes (SQLAlchemy pool events: observing the real
engine, not replacing it). `Site` drives one tenant through the real signed-install path.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import httpx
from sqlalchemy import event
from starlette.applications import Starlette

from boxsync.app import create_app
from tests.boxsync.connectkit import (
    KeyServer, install_body, install_token, qsh_of, request_token, settings_for,
)
from tests.support.servers import serve


@contextlib.contextmanager
def boxsync_app(database_url: str, keys_url: str, **extra) -> Iterator[tuple[str, Starlette]]:
    holder: dict[str, Starlette] = {}

    def factory(url: str) -> Starlette:
        holder["app"] = create_app(settings_for(url, database_url, keys_url, **extra))
        return holder["app"]

    with serve(factory) as url:
        yield url, holder["app"]


class Checkouts:
    """Counts connections checked out of the app's pool (from the server's thread)."""

    def __init__(self, app: Starlette):
        self._count = 0
        self._lock = threading.Lock()
        event.listen(app.state.engine.sync_engine, "checkout", self._checked_out)

    def _checked_out(self, *_args) -> None:
        with self._lock:
            self._count += 1

    def during(self, call: Callable[[], httpx.Response]) -> tuple[httpx.Response, int]:
        """Make one request (sequentially: nothing else is in flight) and count its checkouts."""
        before = self._count
        resp = call()
        return resp, self._count - before


PANEL_QUERY = "issueKey=ABC-1&issueId=10001&projectKey=ABC&projectId=10000"
ISSUE_UPDATED = {"timestamp": 1700000000000, "webhookEvent": "jira:issue_updated",
                 "issue_event_type_name": "issue_generic", "issue": {"id": "10001", "key": "ABC-1", "fields": {}},
                 "changelog": {"id": "5", "items": []}}


@dataclass
class Site:
    """One Jira site (tenant) talking to one or more BoxSync servers."""
    client_key: str
    secret: str
    site_url: str
    deliveries: list[str] = field(default_factory=list)
    ticks: int = 0

    def lifecycle_iat(self) -> int:
        """Jira orders lifecycle callbacks by iat, in whole seconds, and BoxSync ignores one that is
        not newer than the last applied: each event of this site is issued a second after the last."""
        self.ticks += 1
        return int(time.time()) + self.ticks

    def install(self, app: str, keys: KeyServer, *, secret: str | None = None) -> httpx.Response:
        self.secret = secret or self.secret
        kid, key = next(iter(keys.keys.items())) if keys.keys else keys.new_key()
        token = install_token(key, kid, iss=self.client_key, aud=app, qsh=qsh_of("POST", "/installed"),
                              iat=self.lifecycle_iat())
        return httpx.post(app + "/installed", json=install_body(self.client_key, self.secret, self.site_url),
                          headers={"Authorization": f"JWT {token}"})

    def uninstall(self, app: str, keys: KeyServer) -> httpx.Response:
        kid, key = next(iter(keys.keys.items()))
        token = install_token(key, kid, iss=self.client_key, aud=app, qsh=qsh_of("POST", "/uninstalled"),
                              iat=self.lifecycle_iat())
        body = {**install_body(self.client_key, self.secret, self.site_url), "eventType": "uninstalled"}
        return httpx.post(app + "/uninstalled", json=body, headers={"Authorization": f"JWT {token}"})

    def panel(self, app: str, *, secret: str | None = None, iss: str | None = None) -> httpx.Response:
        url = f"{app}/panel/wbs?{PANEL_QUERY}"
        token = request_token(secret or self.secret, iss=iss or self.client_key, qsh=qsh_of("GET", url))
        return httpx.get(f"{url}&jwt={token}")

    def page(self, app: str, path: str = "/boxes") -> httpx.Response:
        """A signed iframe page that only verifies the request (no database work of its own)."""
        url = f"{app}{path}?{PANEL_QUERY}"
        token = request_token(self.secret, iss=self.client_key, qsh=qsh_of("GET", url))
        return httpx.get(f"{url}&jwt={token}")

    def toggle(self, app: str, event_name: str) -> httpx.Response:
        url = f"{app}/{event_name}"
        token = request_token(self.secret, iss=self.client_key, qsh=qsh_of("POST", url), iat=self.lifecycle_iat())
        return httpx.post(url, json={"clientKey": self.client_key, "eventType": event_name},
                          headers={"Authorization": f"JWT {token}"})

    def webhook(self, app: str) -> httpx.Response:
        url = app + "/webhooks/jira"
        token = request_token(self.secret, iss=self.client_key, qsh=qsh_of("POST", url), sub=None)
        self.deliveries.append(f"wh-{len(self.deliveries) + 1}")
        return httpx.post(url, content=json.dumps(ISSUE_UPDATED).encode(), headers={
            "Authorization": f"JWT {token}", "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": self.deliveries[-1]})
