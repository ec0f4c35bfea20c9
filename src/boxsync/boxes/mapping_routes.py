"""The field and dependency mapping API (App Configuration; Jira administrators only):

    GET|PUT /api/mappings/fields          {"general": {start, end, baselineStart, baselineEnd, progress,
                                            taskMode}, "projects": {"KEY": {…}}}; each a Jira field id
                                           or null (not synchronized); progress may be "statusCategory"
    GET|PUT /api/mappings/dependencies    [{"type": "FS", "linkTypeId": "10000", "reversed": false}]
    GET     /api/mappings/link-types      the site's issue link types, and which Boxes build with them

A GET stores the site's defaults first when there is no mapping yet. GET /fields adds, for the
page, the site's candidate fields with the attributes each fits (`fields`) and its projects
(`siteProjects`); a PUT may send them back and they are ignored. A PUT answers the stored mapping. Everything a
PUT names is checked against the site as the app sees it (fields, projects, link types) before
anything is stored; a changed mapping flags the tenant's Boxes for a full re-read.
"""
from __future__ import annotations

import contextlib
from typing import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsync import request_db
from boxsync.admin.access import requires_site_admin
from boxsync.api import handles_errors, json_body
from boxsync.boxes import mapping, mapping_service
from boxsync.boxes.service import Conflict
from boxsync.connect.auth import jira_context, requires_jwt
from boxsync.jira.client import JiraClient, app_client
from boxsync.tenancy import Scope

MAX_SITE_PROJECTS = 1000  # listed for the page's suggestions; any existing key may be typed in
KEYS_PER_LOOKUP = 50  # GET /rest/api/3/project/search takes at most 50 keys


def _client(request: Request) -> JiraClient:
    state = request.app.state
    return app_client(state.http, jira_context(request).tenant, state.settings.app_key)


def _scope(request: Request) -> Scope:
    return Scope(jira_context(request).tenant.id)


async def _ensure(request: Request) -> mapping.Mappings:
    # The request's own connection goes back to the pool first: ensure uses short ones of its own,
    # and nothing holds a connection while Jira is asked.
    await request_db.release(request)
    return await mapping_service.ensure(request.app.state.engine, _scope(request), _client(request))


@contextlib.asynccontextmanager
async def _replacing(request: Request) -> AsyncIterator[AsyncConnection]:
    """The write transaction of a PUT. Two admins saving at the same instant both replace the
    rows; on PostgreSQL the later insert then collides with the earlier one's: say so."""
    try:
        async with request_db.transaction(request) as conn:
            yield conn
    except sa.exc.IntegrityError:
        raise Conflict("another administrator saved the mapping at the same moment; "
                       "reload the page to see it, then save again") from None


async def _site_projects(client: JiraClient) -> list[dict[str, str]]:
    out = []
    async for project in client.iter_projects(page_size=100):
        out.append({"key": str(project["key"]), "name": str(project.get("name") or project["key"])})
        if len(out) >= MAX_SITE_PROJECTS:
            break
    return out


async def _existing_keys(client: JiraClient, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), KEYS_PER_LOOKUP):
        async for project in client.iter_projects(keys=keys[i:i + KEYS_PER_LOOKUP], page_size=KEYS_PER_LOOKUP):
            found.add(str(project["key"]))
    return found


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def get_fields(request: Request) -> Response:
    mappings = await _ensure(request)
    client = _client(request)
    return JSONResponse({**mapping.fields_json(mappings), "fields": mapping.candidates(await client.fields()),
                         "siteProjects": await _site_projects(client)})


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def put_fields(request: Request) -> Response:
    body = await json_body(request)
    await _ensure(request)
    client = _client(request)
    site_fields = await client.fields()
    existing = await _existing_keys(client, mapping.project_keys(body))
    general, projects = mapping.parse_fields(body, site_fields, existing)
    async with _replacing(request) as conn:
        await mapping_service.replace_fields(conn, _scope(request), general, projects)
        stored = await mapping_service.load(conn, _scope(request))
    assert stored is not None
    return JSONResponse(mapping.fields_json(stored))


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def get_dependencies(request: Request) -> Response:
    return JSONResponse(mapping.dependencies_json(await _ensure(request)))


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def put_dependencies(request: Request) -> Response:
    body = await json_body(request)
    await _ensure(request)
    link_types = {str(lt["id"]): str(lt.get("name") or lt["id"]) for lt in await _client(request).link_types()}
    scope = _scope(request)
    async with _replacing(request) as conn:
        # Read in the same transaction as the write: a Box that started building with a link
        # type a moment ago is seen here.
        builders = await mapping_service.builder_link_types(conn, scope)
        dependencies = mapping.parse_dependencies(body, link_types, builders)
        await mapping_service.replace_dependencies(conn, scope, dependencies)
        stored = await mapping_service.load(conn, scope)
    assert stored is not None
    return JSONResponse(mapping.dependencies_json(stored))


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def get_link_types(request: Request) -> Response:
    conn = await request_db.connection(request)
    builders = await mapping_service.builder_link_types(conn, _scope(request))
    await request_db.release(request)
    return JSONResponse([
        {"id": str(lt["id"]), "name": lt.get("name"), "inward": lt.get("inward"), "outward": lt.get("outward"),
         "builderOf": builders.get(str(lt["id"]))}
        for lt in await _client(request).link_types()])


routes = [
    Route("/api/mappings/fields", get_fields, methods=["GET"]),
    Route("/api/mappings/fields", put_fields, methods=["PUT"]),
    Route("/api/mappings/dependencies", get_dependencies, methods=["GET"]),
    Route("/api/mappings/dependencies", put_dependencies, methods=["PUT"]),
    Route("/api/mappings/link-types", get_link_types, methods=["GET"]),
]
