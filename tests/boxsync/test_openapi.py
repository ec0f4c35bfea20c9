"""The API's OpenAPI document is served, is OpenAPI 3, and documents exactly the /api routes the
app serves (a new route without documentation, or documentation of a route that is gone, fails)."""
from __future__ import annotations

import re

import httpx
from starlette.routing import Route

from boxsync.app import create_app
from boxsync.config import Settings
from tests.boxsync.connectkit import SECRET_KEY
from tests.support.servers import serve


def _served(app) -> set[tuple[str, str]]:  # noqa: ANN001
    out = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/") and route.path != "/api/openapi.json":
            for method in route.methods or ():
                if method != "HEAD":
                    out.add((method.lower(), route.path))
    return out


def test_the_document_covers_every_api_route(tmp_path):
    settings = lambda url: Settings(base_url=url, database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db",  # noqa: E731
                                    secret_key=SECRET_KEY)
    holder = {}

    def factory(url: str):
        holder["app"] = create_app(settings(url))
        return holder["app"]

    with serve(factory) as url:
        resp = httpx.get(url + "/api/openapi.json")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    doc = resp.json()
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": url}]
    documented = {(method, path) for path, item in doc["paths"].items() for method in item
                  if method in ("get", "post", "put", "patch", "delete")}
    assert documented == _served(holder["app"])
    # Every $ref resolves, and every path parameter is declared.
    text = resp.text
    for ref in set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', text)):
        assert ref in doc["components"]["schemas"], ref
    for path, item in doc["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == declared, path
