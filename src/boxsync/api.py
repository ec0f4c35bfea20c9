"""Shared pieces of the JSON API under /api/: reading bodies, and turning the services' errors
into answers a person understands (status, `error`, and the `field` at fault)."""
from __future__ import annotations

import functools
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from boxsync.boxes.model import Invalid
from boxsync.boxes.service import Conflict, NotFound
from boxsync.connect.auth import Endpoint
from boxsync.jira.errors import JiraError

log = logging.getLogger("boxsync.api")

MAX_BODY = 256 * 1024


async def json_body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return {}
        raise Invalid("body", "a JSON body is required", status=400)
    if len(raw) > MAX_BODY:
        raise Invalid("body", f"is larger than {MAX_BODY // 1024} KiB", status=413)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("body", "is not valid JSON", status=400) from None


def error(status: int, message: str, field: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status)


def handles_errors(endpoint: Endpoint) -> Endpoint:
    """Under @requires_jwt: Invalid → 400/422 naming the field, NotFound → 404, Conflict → 409, a
    Jira refusal → 502 with Jira's status; nothing the request started is committed."""
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Invalid as exc:
            return error(exc.status, f"{exc.field}: {exc.reason}", exc.field)
        except NotFound as exc:
            return error(404, str(exc))
        except Conflict as exc:
            return error(409, str(exc))
        except JiraError as exc:
            log.warning("%s %s: Jira answered %s", request.method, request.url.path, exc.status)
            return error(502, f"Jira answered {exc.status}; try again shortly.", jiraStatus=exc.status)

    return guarded


def path_id(request: Request, name: str = "id") -> int:
    from boxsync.boxes.model import parse_id

    try:
        return parse_id(request.path_params[name], name)
    except Invalid:
        raise NotFound(f"no such {name}: {str(request.path_params[name])[:40]!r}") from None
