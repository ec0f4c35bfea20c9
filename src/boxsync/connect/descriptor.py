"""The app descriptor, rendered from `atlassian-connect.json` at the repository root.

Rendered once at startup and served byte-for-byte the same afterwards: Jira treats any change in
the descriptor as a new app version (ACE once created versions by accident, §1.2 of the notes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _substitute(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        for name, value in values.items():
            node = node.replace("{{" + name + "}}", value)
        return node
    if isinstance(node, list):
        return [_substitute(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _substitute(item, values) for key, item in node.items()}
    return node


def render(template: Path, *, base_url: str, app_key: str) -> dict[str, Any]:
    # Substituting into parsed JSON (not the raw text) keeps any value from breaking the syntax.
    return _substitute(json.loads(template.read_text()), {"baseUrl": base_url.rstrip("/"), "appKey": app_key})


def render_bytes(template: Path, *, base_url: str, app_key: str) -> bytes:
    return json.dumps(render(template, base_url=base_url, app_key=app_key), indent=2).encode()


async def descriptor(request: Request) -> Response:
    return Response(request.app.state.descriptor, media_type="application/json",
                    headers={"Cache-Control": "no-cache"})


routes = [Route("/atlassian-connect.json", descriptor, methods=["GET"])]
