"""Typed exceptions for Jira REST calls, carrying Jira's own error messages.

Jira answers errors as `{"errorMessages": [...], "errors": {field: message}}`; the OAuth
authorization server as `{"error": ..., "error_description": ...}`. Both are parsed into the same
shape so callers can show Jira's words to an admin. Nothing here ever holds a request's headers, and
URLs are kept without their query string, so `str()` of an error cannot leak a token or secret.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

# Enough of a non-JSON body (an HTML error page from a proxy) to recognise it, not enough to flood logs.
_TEXT_LIMIT = 200


class JiraError(Exception):
    """Jira refused or failed a request. `status` is None when no response was received."""

    def __init__(
        self,
        status: int | None,
        messages: list[str] | None = None,
        errors: dict[str, str] | None = None,
        *,
        method: str = "",
        url: str = "",
    ) -> None:
        self.status = status
        self.messages = list(messages or [])
        self.errors = dict(errors or {})
        self.method = method
        self.url = safe_url(url)
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"{self.method} {self.url}".strip()
        what = "; ".join([*self.messages, *(f"{k}: {v}" for k, v in self.errors.items())])
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        return f"{where}: {status}" + (f": {what}" if what else "")


class JiraBadRequest(JiraError):
    """400: the request is invalid (bad JQL, unknown field, value refused)."""


class JiraUnauthorized(JiraError):
    """401: the credentials were refused (wrong secret, expired token, revoked API token)."""


class JiraForbidden(JiraError):
    """403: authenticated, but the app or user lacks a permission or scope."""


class JiraNotFound(JiraError):
    """404: missing, or not visible to the caller (Jira does not tell the two apart)."""


class JiraConflict(JiraError):
    """409: a conflicting concurrent update."""


class JiraRateLimited(JiraError):
    """429 that was not (or no longer) worth waiting for: `retry_after` says when to try again."""

    def __init__(self, *args: Any, retry_after: float | None = None, reason: str | None = None,
                 **kwargs: Any) -> None:
        self.retry_after = retry_after
        self.reason = reason
        super().__init__(*args, **kwargs)

    def _describe(self) -> str:
        extra = []
        if self.reason:
            extra.append(f"reason {self.reason}")
        if self.retry_after is not None:
            extra.append(f"retry after {self.retry_after:g} s")
        return super()._describe() + (f" ({', '.join(extra)})" if extra else "")


class JiraUnavailable(JiraError):
    """5xx, connection failure or timeout that retrying did not (or was not allowed to) overcome."""


class JiraAuthError(JiraError):
    """The OAuth token exchange for acting as a user was refused."""


class UnsafeUrlError(ValueError):
    """A URL outside the tenant's own site: refused before anything (and any token) is sent."""


class UndeclaredOperation(LookupError):
    """A method + path that is not in `operations.OPERATIONS`: every call must be declared there."""


_BY_STATUS: dict[int, type[JiraError]] = {
    400: JiraBadRequest,
    401: JiraUnauthorized,
    403: JiraForbidden,
    404: JiraNotFound,
    409: JiraConflict,
    429: JiraRateLimited,
}


def error_class(status: int) -> type[JiraError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return JiraUnavailable if status >= 500 else JiraError


def parse_error_body(body: bytes | str) -> tuple[list[str], dict[str, str]]:
    """Jira's (or the OAuth server's) error payload as (messages, field errors); never raises."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        text = " ".join(text.split())
        return ([text[:_TEXT_LIMIT] + ("…" if len(text) > _TEXT_LIMIT else "")] if text else []), {}
    if not isinstance(data, dict):
        return [], {}
    messages = [str(m) for m in data.get("errorMessages") or [] if m]
    errors = {str(k): str(v) for k, v in (data.get("errors") or {}).items()} \
        if isinstance(data.get("errors"), dict) else {}
    # Other shapes seen from Atlassian services: {"message": ...}, {"errorMessage": ...}, and OAuth's.
    for key in ("message", "errorMessage"):
        if isinstance(data.get(key), str) and data[key]:
            messages.append(data[key])
    if isinstance(data.get("error"), str):
        description = data.get("error_description")
        messages.append(f"{data['error']}: {description}" if description else data["error"])
    return messages, errors


def error_from_response(response: httpx.Response, *, cls: type[JiraError] | None = None,
                        **extra: Any) -> JiraError:
    """The typed exception for an error response (the body must already be read)."""
    messages, errors = parse_error_body(response.content)
    cls = cls or error_class(response.status_code)
    if cls is JiraRateLimited:
        extra.setdefault("reason", response.headers.get("RateLimit-Reason"))
    return cls(response.status_code, messages, errors, method=response.request.method,
               url=str(response.request.url), **extra)


def safe_url(url: str) -> str:
    """The URL without query, fragment or userinfo: what may appear in messages and logs."""
    if not url:
        return ""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
