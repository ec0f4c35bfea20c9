"""Fixtures for jirasim's own tests: simulated sites over real loopback HTTP."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.jirasim.simsite import RunningSite, run_site


@pytest.fixture(scope="module")
def jira() -> Iterator[RunningSite]:
    """A site shared by a test module: read-only tests only (or restore what you change)."""
    yield from run_site()


@pytest.fixture
def fresh_jira() -> Iterator[RunningSite]:
    """A site of its own for tests that change data, permissions, faults or counters."""
    yield from run_site(issues=60, seed=3)
