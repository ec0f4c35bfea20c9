"""Which projects a viewer may browse in Jira: asked of Jira for that user, cached briefly.

The panel and the API show a task's fields only to users who may browse its project; every other
task appears as a restricted placeholder. The answer is cached per (tenant, user) for a minute, so a
page that makes several calls asks Jira once, and a permission taken away in Jira stops showing
within a minute.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

from boxsync.jira.client import app_client

CACHE_SECONDS = 60.0
MAX_PROJECTS_PER_CALL = 1000  # permissions/check's limit
_MAX_ENTRIES = 20_000


def _cache(state: Any) -> dict:
    if not hasattr(state, "browse_cache"):
        state.browse_cache = {}
    return state.browse_cache


async def browsable(state: Any, tenant: Any, account_id: str | None, project_ids: Iterable[int]) -> set[int]:
    """The subset of `project_ids` the user may browse (none for an anonymous viewer)."""
    wanted = {int(p) for p in project_ids if p}
    if not account_id or not wanted:
        return set()
    cache = _cache(state)
    clock = time.monotonic()
    known: dict[int, bool] = {}
    for project in wanted:
        hit = cache.get((tenant.id, account_id, project))
        if hit and hit[1] > clock:
            known[project] = hit[0]
    missing = sorted(wanted - known.keys())
    if missing:
        client = app_client(state.http, tenant, state.settings.app_key)
        for i in range(0, len(missing), MAX_PROJECTS_PER_CALL):
            chunk = missing[i:i + MAX_PROJECTS_PER_CALL]
            # A Connect app asking from its server may check any user (bigpicture-and-jira.md 2.1).
            answer = await client.check_permissions(
                [{"permissions": ["BROWSE_PROJECTS"], "projects": chunk}], account_id=account_id)
            allowed = {int(p) for grant in answer.get("projectPermissions") or []
                       if grant.get("permission") == "BROWSE_PROJECTS" for p in grant.get("projects") or []}
            if len(cache) > _MAX_ENTRIES:
                cache.clear()
            for project in chunk:
                known[project] = project in allowed
                cache[(tenant.id, account_id, project)] = (project in allowed, clock + CACHE_SECONDS)
    return {p for p, ok in known.items() if ok}
