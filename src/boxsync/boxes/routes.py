"""The Boxes page (GET /boxes, an iframe) and the Boxes JSON API:

    GET  /api/boxes                      every Box of the site
    POST /api/boxes                      create (Jira administrators)        → 201 with the Box
    GET|PATCH|DELETE /api/boxes/{id}     read; edit, delete (Jira administrators)
    GET  /api/boxes/{id}/wbs             the stored WBS and dependencies (never starts a sync)
    GET  /api/issues/{issueId}/boxes     the Boxes holding an issue, the most used first
    GET|POST /api/box-types              Box types (adding one: Jira administrators)

Reads are for any user of the site; a task's fields only for users who may browse its project.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsync import request_db
from boxsync.admin.access import requires_site_admin
from boxsync.api import handles_errors, json_body, path_id
from boxsync.boxes import service, visibility
from boxsync.boxes.service import NotFound
from boxsync.connect.auth import jira_context, requires_jwt
from boxsync.pages import render_page
from boxsync.tenancy import Scope


@requires_jwt("computed")
async def boxes_page(request: Request) -> Response:
    return render_page(request, jira_context(request), "boxes.html")


def _scope(request: Request) -> Scope:
    return Scope(jira_context(request).tenant.id)


@requires_jwt("context")
@handles_errors
async def list_boxes(request: Request) -> Response:
    conn = await request_db.connection(request)
    return JSONResponse(await service.list_boxes(conn, _scope(request)))


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def create_box(request: Request) -> Response:
    body = await json_body(request)
    async with request_db.transaction(request) as conn:
        box = await service.create(conn, _scope(request), body, creator=jira_context(request).account_id)
    return JSONResponse(box, status_code=201, headers={"Location": f"/api/boxes/{box['id']}"})


@requires_jwt("context")
@handles_errors
async def get_box(request: Request) -> Response:
    conn = await request_db.connection(request)
    return JSONResponse(await service.get(conn, _scope(request), path_id(request)))


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def edit_box(request: Request) -> Response:
    box_id = path_id(request)
    body = await json_body(request)
    async with request_db.transaction(request) as conn:
        box = await service.update(conn, _scope(request), box_id, body)
    return JSONResponse(box)


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def delete_box(request: Request) -> Response:
    box_id = path_id(request)
    async with request_db.transaction(request) as conn:
        await service.delete(conn, _scope(request), box_id)
    return Response(status_code=204)


async def wbs_of(request: Request, box_id: int) -> dict:
    """The Box's stored WBS as the viewer may see it."""
    ctx = jira_context(request)
    scope = Scope(ctx.tenant.id)
    conn = await request_db.connection(request)
    box = await service.get(conn, scope, box_id)
    rows = await service.wbs_rows(conn, scope, box_id)
    deps = await service.dependencies(conn, scope, box_id)
    await conn.rollback()  # end the read before asking Jira: no transaction held across the call
    projects = {r.project_id for r in rows if r.project_id is not None}
    allowed = await visibility.browsable(request.app.state, ctx.tenant, ctx.account_id, projects)
    nodes = service.hide_empty_groups([service.node_json(r, r.project_id in allowed) for r in rows])
    visible_issues = {n["issueId"] for n in nodes if n["kind"] == "issue" and not n.get("restricted")}
    # A dependency shows only between tasks the viewer may see: ids alone would reveal hidden work.
    deps = [d for d in deps if d["fromIssueId"] in visible_issues and d["toIssueId"] in visible_issues]
    return {"box": box, "nodes": nodes, "dependencies": deps}


@requires_jwt("context")
@handles_errors
async def box_wbs(request: Request) -> Response:
    return JSONResponse(await wbs_of(request, path_id(request)))


@requires_jwt("context")
@handles_errors
async def issue_boxes(request: Request) -> Response:
    ctx = jira_context(request)
    issue_id = path_id(request, "issueId")
    scope = Scope(ctx.tenant.id)
    conn = await request_db.connection(request)
    holding = await service.boxes_holding(conn, scope, issue_id)
    project = await service.issue_project(conn, scope, issue_id)
    await conn.rollback()
    # Whether the issue is in any Box is itself something only its viewers may learn.
    if project is None or project not in await visibility.browsable(request.app.state, ctx.tenant,
                                                                     ctx.account_id, [project]):
        raise NotFound(f"no issue {issue_id} in any Box you can see")
    return JSONResponse(holding)


@requires_jwt("context")
@handles_errors
async def box_types(request: Request) -> Response:
    conn = await request_db.connection(request)
    return JSONResponse(list(await service.types(conn, _scope(request))))


@requires_jwt("context")
@requires_site_admin
@handles_errors
async def add_box_type(request: Request) -> Response:
    body = await json_body(request)
    async with request_db.transaction(request) as conn:
        name = await service.add_type(conn, _scope(request), body.get("name") if isinstance(body, dict) else None)
    return JSONResponse({"name": name}, status_code=201)


routes = [
    Route("/boxes", boxes_page, methods=["GET"]),
    Route("/api/boxes", list_boxes, methods=["GET"]),
    Route("/api/boxes", create_box, methods=["POST"]),
    Route("/api/boxes/{id}", get_box, methods=["GET"]),
    Route("/api/boxes/{id}", edit_box, methods=["PATCH"]),
    Route("/api/boxes/{id}", delete_box, methods=["DELETE"]),
    Route("/api/boxes/{id}/wbs", box_wbs, methods=["GET"]),
    Route("/api/issues/{issueId}/boxes", issue_boxes, methods=["GET"]),
    Route("/api/box-types", box_types, methods=["GET"]),
    Route("/api/box-types", add_box_type, methods=["POST"]),
]
