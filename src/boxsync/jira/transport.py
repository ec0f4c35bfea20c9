"""The process-wide HTTP pool and the retrying send used for every call to Jira and its OAuth server.

One `httpx.AsyncClient` is created by the app at startup (`new_http_client`) and shared by all
tenants' clients: a pool per tenant would multiply sockets and TLS handshakes by the number of
installs. Authorization is added per request, never set on the shared client.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Mapping

import httpx

from .errors import JiraUnavailable, safe_url
from .retry import NOT_SENT_ERRORS, RETRYABLE_STATUSES, TRANSPORT_ERRORS, RetryPolicy, next_wait, parse_retry_after

logger = logging.getLogger("boxsync.jira")

USER_AGENT = "BoxSync (Atlassian Connect app)"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


def new_http_client(
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    limits: httpx.Limits = DEFAULT_LIMITS,
    user_agent: str = USER_AGENT,
) -> httpx.AsyncClient:
    """The one connection pool for all Jira traffic of this process; close it at shutdown.

    Redirects are not followed: Jira's REST API does not redirect, and following one could carry a
    request (and its body) somewhere we did not check.
    """
    return httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        follow_redirects=False,
        headers={"User-Agent": user_agent, "Accept": "application/json"},
    )


# Builds one attempt: keyword arguments for `httpx.AsyncClient.build_request` (headers, json, data).
Prepare = Callable[[], Awaitable[Mapping[str, Any]]]


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    prepare: Prepare,
    idempotent: bool,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> httpx.Response:
    """Send, retrying per `policy`; return the last response (any status) with its body read.

    `prepare` is called before every attempt so that each carries freshly minted credentials (a JWT
    signed before a 30 s Retry-After wait should not be reused). Raises `JiraUnavailable` when the
    request fails without a response and may not be retried.
    """
    where = safe_url(url)
    attempt = 0
    while True:
        attempt += 1
        request = http.build_request(method, url, **(await prepare()))
        try:
            response = await http.send(request)
        except TRANSPORT_ERRORS as exc:
            sent = not isinstance(exc, NOT_SENT_ERRORS)
            wait = next_wait(policy, attempt, idempotent=idempotent, sent=sent)
            if wait is None:
                detail = f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
                if sent and not idempotent:
                    detail += " (not retried: the request may have reached Jira)"
                raise JiraUnavailable(None, [detail], method=method, url=url) from exc
            logger.warning("Jira %s %s failed (%s); attempt %d of %d in %.2f s",
                           method, where, type(exc).__name__, attempt + 1, policy.max_attempts, wait)
            await sleep(wait)
            continue
        if response.status_code not in RETRYABLE_STATUSES:
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        wait = next_wait(policy, attempt, idempotent=idempotent, status=response.status_code,
                         retry_after=retry_after)
        if wait is None:
            return response
        logger.warning("Jira %s %s answered %d%s; attempt %d of %d in %.2f s", method, where,
                       response.status_code, _reason(response), attempt + 1, policy.max_attempts, wait)
        await sleep(wait)


def _reason(response: httpx.Response) -> str:
    reason = response.headers.get("RateLimit-Reason")
    return f" ({reason})" if reason else ""
