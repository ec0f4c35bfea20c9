"""The process-wide HTTP pool and the retrying send used for every call to Jira and its OAuth server.

One `httpx.AsyncClient` is created by the app at startup (`new_http_client`) and shared by all
tenants' clients: a pool per tenant would multiply sockets and TLS handshakes by the number of
installs. Authorization is added per request, never set on the shared client.

Every connection the pool opens is checked against an `AddressPolicy` where it is made: app JWT,
user OAuth and Basic clients, the install-key and OAuth token fetches all go through it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any, Awaitable, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import httpcore
import httpx

from boxsync.netpolicy import PRODUCTION, AddressPolicy, AddressRefused, resolve_checked

from .errors import JiraRateLimited, JiraUnavailable, safe_url
from .limits import SiteLimit, Throttled, call_scopes, pause_scope
from .retry import (
    NOT_SENT_ERRORS,
    RETRYABLE_STATUSES,
    TRANSPORT_ERRORS,
    RetryPolicy,
    backoff,
    next_wait,
    throttle_delay,
    throttled,
)

logger = logging.getLogger("boxsync.jira")

USER_AGENT = "BoxSync (Atlassian Connect app)"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


class CheckedNetwork(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy permits.

    The host is resolved here, every address checked, and the socket connected to a checked
    address, so the name is never resolved a second time (where a rebinding DNS server could
    answer differently). TLS still verifies the certificate for, and sends SNI of, the host name:
    httpcore passes that to `start_tls` on its own, and the Host header comes from the URL.
    """

    def __init__(self, addresses: AddressPolicy) -> None:
        self.addresses = addresses
        self._network = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            targets = await asyncio.wait_for(resolve_checked(host, port, self.addresses), timeout)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc.strerror or exc}") from exc
        *others, last = targets  # tried in resolver order, as the OS would; the last one's error is raised
        for address in others:
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return await self._connect(address, port, timeout, local_address, socket_options)
        return await self._connect(last, port, timeout, local_address, socket_options)

    async def _connect(self, address: str, port: int, timeout: float | None, local_address: str | None,
                       socket_options: Iterable[Any] | None) -> httpcore.AsyncNetworkStream:
        return await self._network.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("BoxSync does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


def checked_transport(addresses: AddressPolicy, limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncHTTPTransport:
    """httpx's transport over an httpcore pool that connects through `CheckedNetwork`.

    httpx takes no network backend, and its transport is a thin adapter over an httpcore pool kept
    in `_pool` (httpx 0.28, pinned in pyproject): the pool is rebuilt with the same settings plus
    the backend. The production-policy tests fail loudly should that ever change.
    """
    transport = httpx.AsyncHTTPTransport(limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=CheckedNetwork(addresses),
    )
    return transport


def new_http_client(
    *,
    addresses: AddressPolicy = PRODUCTION,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    limits: httpx.Limits = DEFAULT_LIMITS,
    user_agent: str = USER_AGENT,
) -> httpx.AsyncClient:
    """The one connection pool for all Jira traffic of this process; close it at shutdown.

    Connections reach only addresses `addresses` permits (public ones by default; the app passes
    `netpolicy.DEVELOPMENT`, which adds loopback, outside production). A refused address raises
    `netpolicy.AddressRefused` (a ValueError) before anything is sent; it is not retried.

    Redirects are not followed: Jira's REST API does not redirect, and following one could carry a
    request (and its body) somewhere we did not check. Proxy variables from the environment are
    ignored (trust_env=False): through a proxy, the address check would see only the proxy.
    """
    return httpx.AsyncClient(
        transport=checked_transport(addresses, limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
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
    limit: SiteLimit | None = None,
    endpoint: str | None = None,
) -> httpx.Response:
    """Send, retrying per `policy`; return the last response (any status) with its body read.

    `prepare` is called before every attempt so that each carries freshly minted credentials (a JWT
    signed before a 30 s Retry-After wait should not be reused). Raises `JiraUnavailable` when the
    request fails without a response and may not be retried.

    With a site `limit`, each attempt takes a turn at the site (limits.py): it waits out the
    site's pause and holds a slot while in flight. A throttled answer then pauses the site (or
    just the `endpoint` template or this resource, by `RateLimit-Reason`) for every caller, and
    the retry waits out that shared pause instead of a backoff of its own. Raises
    `JiraRateLimited` without sending when the pause is longer than `policy.max_wait`.
    """
    where = safe_url(url)
    path = urlsplit(url).path
    scopes = call_scopes(method, endpoint or path, path)
    attempt = 0
    while True:
        attempt += 1
        try:
            response = await _attempt(http, method, url, prepare, policy, sleep, limit, scopes)
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
        retry_after = throttle_delay(response.headers)
        wait = next_wait(policy, attempt, idempotent=idempotent, status=response.status_code,
                         retry_after=retry_after)
        shared = limit is not None and throttled(response.status_code, retry_after)
        pausing, news = "", True
        if shared:
            reason = response.headers.get("RateLimit-Reason")
            seconds = retry_after if retry_after is not None else backoff(policy, attempt)
            scope = pause_scope(reason, method, endpoint or path, path)
            # Logged once per throttle, not again by each call that was in flight with this one.
            news = limit.pause(scope, seconds, reason)
            pausing = f"; {scope or 'every call to the site'} paused for {seconds:.2f} s"
        if wait is None:
            if pausing and news:
                logger.warning("Jira %s %s answered %d%s%s", method, where, response.status_code,
                               _reason(response), pausing)
            return response
        if news:
            logger.warning("Jira %s %s answered %d%s%s; attempt %d of %d in %.2f s", method, where,
                           response.status_code, _reason(response), pausing, attempt + 1,
                           policy.max_attempts, wait)
        if not shared:
            await sleep(wait)
        # else: the next attempt's turn waits out the shared pause, with every other caller.


async def _attempt(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    prepare: Prepare,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]],
    limit: SiteLimit | None,
    scopes: tuple[str, ...],
) -> httpx.Response:
    """One attempt; with a `limit`, in a turn at the site (credentials are minted in the turn, so
    they are fresh however long it waited)."""
    if limit is None:
        return await http.send(http.build_request(method, url, **(await prepare())))
    try:
        async with limit.turn(scopes, max_wait=policy.max_wait, jitter=policy.jitter, sleep=sleep):
            return await http.send(http.build_request(method, url, **(await prepare())))
    except Throttled as paused:
        raise JiraRateLimited(
            429, [f"not sent: Jira throttled this site's calls for {paused.seconds:.0f} s more"],
            method=method, url=url, retry_after=paused.seconds, reason=paused.reason) from None


def _reason(response: httpx.Response) -> str:
    reason = response.headers.get("RateLimit-Reason")
    return f" ({reason})" if reason else ""
