"""Simulated Jira sites served over real loopback HTTP (tests/support/servers.py), with the
generated users' credentials."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import httpx
from jirasim.model import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_TOKEN, Site
from jirasim.simulator import Simulator
from tests.support.servers import serve

ADMIN = (DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_TOKEN)
ALICE = ("alice@example.com", "alice-token")  # full project permissions, not a Jira admin
BOB = ("bob@example.com", "bob-token")  # browse only
CAROL = ("carol@example.com", "carol-token")  # no permissions at all in ALPHA (the first project)
DAVE = ("dave@example.com", "dave-token")  # browse + edit, no link


@dataclass
class RunningSite:
    base_url: str
    sim: Simulator
    site: Site

    def client(self, auth: tuple[str, str] | None = ADMIN, **kwargs) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, auth=auth, timeout=10, **kwargs)


def run_site(issues: int = 300, seed: int = 7, projects: int | list[str] | None = None) -> Iterator[RunningSite]:
    sim = Simulator(seed=seed)
    with serve(lambda url: sim.add_site("main", url, issues=issues, projects=projects)) as base_url:
        yield RunningSite(base_url, sim, sim.sites["main"])


