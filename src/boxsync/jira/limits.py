"""Fair sharing of the process's one HTTP pool between Jira sites.

The pool (`transport.new_http_client`) serves every tenant. Left alone, one slow site fills it with
calls that hold their connections while everyone else's calls queue behind them (seen: 4 s instead
of 0.03 s), and a throttled site gets a 429 per caller, since each call learns of the throttle on
its own and backs off on its own. So each site (keyed by its base URL) gets:

* a cap on its calls in flight: callers beyond it wait for a turn, and other sites never do;
* one shared pause, set when Jira throttles a call (429, or 503 with a delay) for as long as
  `Retry-After` / `X-RateLimit-Reset` say: every call to the site waits it out before sending, or,
  when it is longer than the caller's policy will wait, fails at once with `JiraRateLimited` so
  the work can be rescheduled instead of earning the same 429 again.

What a pause covers follows `RateLimit-Reason` (bigpicture-and-jira.md §2.4, from Atlassian's
"Rate limiting" and "Build an app that respects rate limits" pages): `jira-burst-based` limits one
endpoint + method of the site, so only calls to it pause; `jira-per-issue-on-write` limits writes
to one issue, so only that same write pauses; quota reasons (`jira-quota-tenant-based`,
`jira-cost-based`, …), unknown ones and none pause every call to the site until the reset.

A registry belongs to a connection pool (`attach`, `for_pool`): every client built on the app's
pool shares it, and its semaphores live on the pool's event loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import time
import weakref
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Iterable

import httpx

DEFAULT_MAX_CONCURRENCY = 8  # per site; the shared pool allows 100 connections in all
SITE = ""  # the pause scope that covers every call to a site

SAME_THROTTLE = 1.0  # seconds: a pause moved by less is the same throttle reported again
BURST_REASON = "jira-burst-based"
PER_ISSUE_REASON = "jira-per-issue-on-write"


class Throttled(Exception):
    """The site is paused for longer than the caller will wait; nothing was sent."""

    def __init__(self, seconds: float, reason: str | None) -> None:
        self.seconds = seconds
        self.reason = reason
        super().__init__(f"paused for {seconds:.1f} s more" + (f" ({reason})" if reason else ""))


def call_scopes(method: str, endpoint: str, path: str) -> tuple[str, ...]:
    """The pause scopes a call falls under: the whole site, its endpoint, its exact resource."""
    return SITE, f"{method} {endpoint}", f"{method} {path}"


def pause_scope(reason: str | None, method: str, endpoint: str, path: str) -> str:
    """Which calls a throttled response pauses, from its `RateLimit-Reason`."""
    if reason == BURST_REASON:
        return f"{method} {endpoint}"
    if reason == PER_ISSUE_REASON:
        return f"{method} {path}"
    return SITE


@dataclass(slots=True)
class Pause:
    until: float  # on the registry's clock
    reason: str | None


class SiteLimit:
    """One site's turns and pauses."""

    def __init__(self, key: str, max_concurrency: int, clock: Callable[[], float]) -> None:
        self.key = key
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._pauses: dict[str, Pause] = {}
        self._clock = clock

    def __repr__(self) -> str:
        return f"SiteLimit({self.key!r}, max_concurrency={self.max_concurrency})"

    def pause(self, scope: str, seconds: float, reason: str | None) -> bool:
        """Hold calls in `scope` for `seconds` from now (a pause is lengthened, never shortened).

        True when this is news: no pause was running, or it moves the end by more than a second.
        The calls that were in flight with the first throttled one get the same answer a few
        milliseconds later (Retry-After counts whole seconds): that is the same throttle.
        """
        now = self._clock()
        until = now + max(0.0, seconds)
        current = self._pauses.get(scope)
        if current is not None and current.until > now:
            if until > current.until:
                self._pauses[scope] = Pause(until, reason)
            return until > current.until + SAME_THROTTLE
        self._pauses[scope] = Pause(until, reason)
        return True

    def paused(self, scopes: Iterable[str]) -> tuple[float, str | None]:
        """The longest pause left over `scopes`, as (seconds, reason); (0, None) when clear."""
        now = self._clock()
        longest, reason = 0.0, None
        for scope in scopes:
            pause = self._pauses.get(scope)
            if pause is None:
                continue
            if pause.until <= now:
                del self._pauses[scope]
            elif pause.until - now > longest:
                longest, reason = pause.until - now, pause.reason
        return longest, reason

    @contextlib.asynccontextmanager
    async def turn(
        self,
        scopes: Iterable[str],
        *,
        max_wait: float,
        jitter: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> AsyncIterator[None]:
        """Wait out any pause over `scopes`, then hold one of the site's slots.

        Paused callers wait without a slot, so a pause on one endpoint does not block the others;
        each adds up to `jitter` seconds so that they do not all come back at the same instant.
        Raises `Throttled` when the pause is longer than `max_wait`.
        """
        scopes = tuple(scopes)
        while True:
            seconds, reason = self.paused(scopes)
            if seconds > max_wait:
                raise Throttled(seconds, reason)
            if seconds > 0:
                await sleep(seconds + rand() * jitter)
                continue
            await self._slots.acquire()
            if self.paused(scopes)[0] <= 0:
                break
            self._slots.release()  # throttled while we queued: wait that out without a slot
        try:
            yield
        finally:
            self._slots.release()


class Limits:
    """The per-site limits of one connection pool."""

    def __init__(self, max_concurrency_per_site: int = DEFAULT_MAX_CONCURRENCY, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_concurrency_per_site < 1:
            raise ValueError("max_concurrency_per_site must be at least 1")
        self.max_concurrency_per_site = max_concurrency_per_site
        self._clock = clock
        # One small entry per site ever called: bounded by the tenants and sites we serve.
        self._sites: dict[str, SiteLimit] = {}

    def site(self, key: str) -> SiteLimit:
        limit = self._sites.get(key)
        if limit is None:
            limit = self._sites[key] = SiteLimit(key, self.max_concurrency_per_site, self._clock)
        return limit


_BY_POOL: weakref.WeakKeyDictionary[httpx.AsyncClient, Limits] = weakref.WeakKeyDictionary()


def attach(http: httpx.AsyncClient, limits: Limits) -> Limits:
    """Make `limits` the ones every client on the pool `http` shares (the app does this at start)."""
    _BY_POOL[http] = limits
    return limits


def for_pool(http: httpx.AsyncClient) -> Limits:
    """The limits shared on the pool `http`; defaults are attached on first use."""
    limits = _BY_POOL.get(http)
    if limits is None:
        limits = attach(http, Limits())
    return limits
