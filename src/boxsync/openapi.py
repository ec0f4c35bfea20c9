"""GET /api/openapi.json: the OpenAPI 3 document of BoxSync's JSON API, for our pages and for
admins' scripts. Written by hand beside the routes; a test checks that every /api route is in it
and that every documented path is served."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ID = {"type": "string", "pattern": "^[0-9]+$", "description": "An id, written as a string of digits."}
DATE = {"type": ["string", "null"], "format": "date"}
ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string", "description": "What is wrong, for a person."},
    "field": {"type": "string", "description": "The field at fault, in the request's JSON terms."}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed request (not JSON, or not an object).", 401: "No valid Jira JWT.",
            403: "Not allowed: Jira administrators only, or the issue is not visible to you.",
            404: "No such Box or issue.",
            409: "Conflicts with the current state (or with a change saved at the same moment).",
            422: "Invalid input: `field` names the field, nothing was changed.",
            502: "Jira could not be asked (its status is in `jiraStatus`)."}
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


SCOPE = {"type": "object", "properties": {
    "projects": {"type": "array", "items": {"type": "string"}, "description": "Jira project keys"},
    "jql": {"type": ["string", "null"]}, "filterId": {"type": ["string", "null"]}}}
BOX_INPUT = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 255},
    "type": {"type": "string", "description": "Portfolio, Program, Project, Iteration, or a type an admin added"},
    "scopeType": {"enum": ["own", "sub-scope", "none"], "description": "Fixed at creation"},
    "parentId": {**ID, "type": ["string", "null"]},
    "status": {"enum": ["not-started", "in-progress", "closed"]},
    "start": DATE, "end": DATE,
    "scopeOwner": {"type": "string", "description": "Jira accountId the scope is read as (default: the creator)"},
    "scope": SCOPE,
    "builders": {"type": "array", "items": {"type": "string"},
                 "description": "In order: project, version, sprint, component, jira-parent, link:<link type id>"},
    "taskMode": {"enum": ["auto-basic", "auto-bottom-up", "auto-top-down", "manual", "locked"]}},
    "additionalProperties": False}
BOX = {**BOX_INPUT, "required": ["id", "name", "type", "scopeType", "parentId", "status", "start", "end",
                                 "scopeOwner", "scope", "builders", "taskMode"],
       "properties": {"id": ID, **BOX_INPUT["properties"]}}
NODE = {"type": "object", "required": ["id", "parentId", "position", "kind"], "properties": {
    "id": {"type": "string"}, "parentId": {"type": ["string", "null"]}, "position": {"type": "integer"},
    "kind": {"enum": ["issue", "project", "version", "sprint", "component"]},
    "issueId": {"type": ["string", "null"]}, "issueKey": {"type": ["string", "null"]},
    "summary": {"type": ["string", "null"]}, "start": DATE, "end": DATE,
    "status": {"type": ["string", "null"]}, "statusCategory": {"type": ["string", "null"]},
    "progress": {"type": ["number", "null"]}, "taskMode": {"type": ["string", "null"]},
    "restricted": {"type": "boolean", "description": "A task you may not browse in Jira: no fields shown"}}}
DEPENDENCY = {"type": "object", "properties": {
    "fromIssueId": {**ID, "description": "The predecessor"}, "toIssueId": ID,
    "type": {"enum": ["FS", "SS", "FF", "SF", "soft"]}, "linkId": ID}}
SYNC = {"type": "object", "required": ["state"], "properties": {
    "state": {"enum": ["idle", "running", "done", "failed", "refused"]},
    "stage": {"type": ["string", "null"]}, "done": {"type": "integer"}, "total": {"type": ["integer", "null"]},
    "reason": {"type": ["string", "null"]}, "startedAt": {"type": ["string", "null"], "format": "date-time"},
    "finishedAt": {"type": ["string", "null"], "format": "date-time"},
    "triggeredBy": {"type": ["string", "null"]}, "readAs": {"type": ["string", "null"]},
    "counts": {"type": ["object", "null"], "properties": {
        k: {"type": "integer"} for k in ("added", "changed", "removed", "moved", "read")}}}}
FIELD_MAPPING = {"type": "object", "additionalProperties": False, "properties": {
    k: {"type": ["string", "null"], "description": "A Jira field id, or null: not synchronized"
                                                   + ('; or "statusCategory"' if k == "progress" else "")}
    for k in ("start", "end", "baselineStart", "baselineEnd", "progress", "taskMode")},
    "required": ["start", "end", "baselineStart", "baselineEnd", "progress", "taskMode"]}
FIELDS = {"type": "object", "required": ["general"], "properties": {
    "general": FIELD_MAPPING, "projects": {"type": "object", "additionalProperties": FIELD_MAPPING},
    "fields": {"type": "array", "readOnly": True, "description": "The site's fields an attribute can be mapped to",
               "items": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                                          "type": {"type": "string"}, "custom": {"type": "boolean"},
                                                          "attributes": {"type": "array", "items": {"type": "string"},
                                                                         "description": "The attributes it can hold"}}}},
    "siteProjects": {"type": "array", "readOnly": True, "description": "The site's projects (the first 1,000)",
                     "items": {"type": "object", "properties": {"key": {"type": "string"}, "name": {"type": "string"}}}}}}
DEP_MAPPING = {"type": "array", "maxItems": 5, "items": {
    "type": "object", "required": ["type", "linkTypeId"], "additionalProperties": False, "properties": {
        "type": {"enum": ["FS", "SS", "FF", "SF", "soft"], "description": "Each type at most once"},
        "linkTypeId": {"type": "string", "description": "A Jira issue link type, used once, and not a structure builder"},
        "reversed": {"type": "boolean", "default": False,
                     "description": "false: the issue on the link's outward side (A in \"A blocks B\") is the predecessor"}}}}
LINK_TYPES = {"type": "array", "items": {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "inward": {"type": "string"}, "outward": {"type": "string"},
    "builderOf": {"type": ["string", "null"], "description": "A Box that builds its structure with this link type"}}}}

BOX_ID = [{"name": "id", "in": "path", "required": True, "schema": ID}]


def document(base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "BoxSync API", "version": "1",
                 "description": "Boxes, their Work Breakdown Structure and sync. Authenticate with a Jira "
                                "context JWT (`AP.context.getToken()`) as `Authorization: JWT <token>`; "
                                "the token's `sub` is the acting user. JSON is camel-case, as Jira's own."},
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {"jiraContextJwt": {"type": "apiKey", "in": "header", "name": "Authorization",
                                                   "description": "`JWT <context token>`"}},
            "schemas": {"Error": ERROR, "Box": BOX, "BoxInput": BOX_INPUT, "Node": NODE, "Dependency": DEPENDENCY,
                        "SyncStatus": SYNC, "FieldMappings": FIELDS, "DependencyMappings": DEP_MAPPING},
        },
        "security": [{"jiraContextJwt": []}],
        "paths": {
            "/api/boxes": {
                "get": {"summary": "Every Box of the site", "responses": {
                    "200": _json({"type": "array", "items": _ref("Box")}, "The Boxes"), **_errors(401)}},
                "post": {"summary": "Create a Box (Jira administrators)",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("BoxInput")}}},
                         "responses": {"201": _json(_ref("Box"), "The new Box"), **_errors(400, 401, 403, 422)}}},
            "/api/boxes/{id}": {
                "parameters": BOX_ID,
                "get": {"summary": "One Box", "responses": {"200": _json(_ref("Box"), "The Box"), **_errors(401, 404)}},
                "patch": {"summary": "Edit a Box (Jira administrators); type and scopeType are fixed",
                          "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("BoxInput")}}},
                          "responses": {"200": _json(_ref("Box"), "The Box"), **_errors(400, 401, 403, 404, 422)}},
                "delete": {"summary": "Delete a Box without sub-Boxes (Jira administrators)",
                           "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404, 409)}}},
            "/api/boxes/{id}/wbs": {
                "parameters": BOX_ID,
                "get": {"summary": "The stored WBS and dependencies (never starts a sync)", "responses": {
                    "200": _json({"type": "object", "properties": {
                        "box": _ref("Box"), "nodes": {"type": "array", "items": _ref("Node")},
                        "dependencies": {"type": "array", "items": _ref("Dependency")}}}, "The WBS"),
                    **_errors(401, 404)}}},
            "/api/boxes/{id}/sync": {
                "parameters": BOX_ID,
                "post": {"summary": "Start (or join) a full sync",
                         "requestBody": {"required": False, "content": {"application/json": {"schema": {
                             "type": "object", "properties": {
                                 "continueOnCorruptedIndex": {"type": "boolean"},
                                 "trigger": {"enum": ["resync", "open", "api"]}}}}}},
                         "responses": {"202": _json(_ref("SyncStatus"), "The running (or joined) sync"),
                                       **_errors(400, 401, 404, 422)}},
                "get": {"summary": "The Box's sync status",
                        "responses": {"200": _json(_ref("SyncStatus"), "The status"), **_errors(401, 404)}}},
            "/api/issues/{issueId}/boxes": {
                "parameters": [{"name": "issueId", "in": "path", "required": True, "schema": ID}],
                "get": {"summary": "The Boxes holding an issue, the most used first", "responses": {
                    "200": _json({"type": "array", "items": _ref("Box")}, "The Boxes"), **_errors(401, 404)}}},
            "/api/panel/{issueId}": {
                "parameters": [{"name": "issueId", "in": "path", "required": True, "schema": ID},
                               {"name": "boxId", "in": "query", "required": False, "schema": ID}],
                "get": {"summary": "The issue's place in one Box's WBS (the WBS issue panel)", "responses": {
                    "200": _json({"type": "object"}, "Boxes holding it, its node, ancestors, siblings, children"),
                    **_errors(401, 404)}}},
            "/api/box-types": {
                "get": {"summary": "Box types", "responses": {
                    "200": _json({"type": "array", "items": {"type": "string"}}, "Type names"), **_errors(401)}},
                "post": {"summary": "Add a Box type (Jira administrators)",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "properties": {"name": {"type": "string"}}}}}},
                         "responses": {"201": _json({"type": "object"}, "Added"), **_errors(400, 401, 403, 409, 422)}}},
            "/api/mappings/fields": {
                "get": {"summary": "Field mapping (Jira administrators)",
                        "responses": {"200": _json(_ref("FieldMappings"), "The mapping (the site's defaults on first use)"),
                                      **_errors(401, 403, 502)}},
                "put": {"summary": "Replace the field mapping (Jira administrators)",
                        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FieldMappings")}}},
                        "responses": {"200": _json(_ref("FieldMappings"), "Stored; a change flags every Box for a full re-read"),
                                      **_errors(400, 401, 403, 409, 422, 502)}}},
            "/api/mappings/dependencies": {
                "get": {"summary": "Dependency mapping (Jira administrators)",
                        "responses": {"200": _json(_ref("DependencyMappings"), "The mapping (Blocks as FS on first use)"),
                                      **_errors(401, 403, 502)}},
                "put": {"summary": "Replace the dependency mapping (Jira administrators)",
                        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("DependencyMappings")}}},
                        "responses": {"200": _json(_ref("DependencyMappings"), "Stored; a change flags every Box for a re-sync"),
                                      **_errors(400, 401, 403, 409, 422, 502)}}},
            "/api/mappings/link-types": {
                "get": {"summary": "The site's issue link types, and the Boxes building with them (Jira administrators)",
                        "responses": {"200": _json(LINK_TYPES, "The link types"), **_errors(401, 403, 502)}}},
            "/api/admin/overview": {
                "get": {"summary": "Site, lifecycle history and webhook counts (Jira administrators)",
                        "responses": {"200": _json({"type": "object"}, "Overview"), **_errors(401, 403)}}},
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document(request.app.state.settings.base_url))


routes = [Route("/api/openapi.json", openapi, methods=["GET"])]
