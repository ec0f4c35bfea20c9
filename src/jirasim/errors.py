"""Jira's error responses: `{"errorMessages": [...], "errors": {...}}` with the right status.

Handlers raise `JiraError`; the site app's exception handler renders it. The host module may raise it
too, so every endpoint on a simulated site fails the same way.
"""
from __future__ import annotations

from typing import Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

NOT_FOUND_ISSUE = "Issue does not exist or you do not have permission to see it."
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."


class JiraError(Exception):
    def __init__(self, status: int, messages: Iterable[str] = (), errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.messages = list(messages)
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})
        super().__init__(f"{status}: {self.messages} {self.errors}")


def error_response(status: int, messages: Iterable[str] = (), errors: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"errorMessages": list(messages), "errors": dict(errors or {})}, status_code=status,
                        headers=headers)


async def handle_jira_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JiraError)
    return error_response(exc.status, exc.messages, exc.errors, exc.headers)
