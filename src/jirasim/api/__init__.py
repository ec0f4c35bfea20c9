"""Jira Cloud's REST API as far as jirasim serves it, one module per area."""
from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    from jirasim.api import issues, meta, permissions, search

    return [*meta.routes(), *search.routes(), *issues.routes(), *permissions.routes()]
