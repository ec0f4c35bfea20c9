"""When to retry a Jira request and how long to wait first.

The policy is data and `next_wait` is a pure function of it, so the rules are tested without a
server or a clock. The rules:

* 429 is always retried, even for a POST that creates something: Jira rejected it unprocessed.
  `Retry-After` is honoured; when it asks for longer than `max_wait` we give up at once and raise
  `JiraRateLimited(retry_after=...)` so the caller can reschedule the work, because retrying early
  only earns the same or a longer wait (quota limits reset hourly).
* 503 with `Retry-After` is Jira throttling too, and is handled like 429.
* How long Jira asks us to wait: `Retry-After` (seconds or an HTTP date), else `X-RateLimit-Reset`
  (an ISO-8601 instant, `yyyy-MM-ddTHH:mmZ` in Atlassian's rate-limiting docs). Neither is
  promised on every 429 (bigpicture-and-jira.md §2.4).
* Other 5xx, timeouts and broken connections are retried only for idempotent operations: a
  non-idempotent POST that may have reached Jira (e.g. creating an issue link) is never repeated.
* A failure to connect at all (refused, DNS, connect/pool timeout) never reached Jira, so it is
  retried for every operation.
* Without `Retry-After`, waits grow exponentially with jitter so that many workers hit by the same
  outage do not come back in lockstep. Attempts are bounded by `max_attempts`.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import httpx


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # including the first
    max_wait: float = 30.0  # never sleep longer than this for one retry, Retry-After included
    backoff_base: float = 0.5  # first backoff without Retry-After; doubles per attempt
    backoff_max: float = 10.0
    jitter: float = 0.5  # seconds at most, added on top of a Retry-After wait


DEFAULT_POLICY = RetryPolicy()

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# httpx errors raised before the request could have been sent: safe to retry for any operation.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# All transport errors (timeouts, resets, protocol errors); beyond NOT_SENT_ERRORS, Jira may have acted.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError,)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def parse_rate_limit_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds until an `X-RateLimit-Reset` instant (ISO-8601 with a zone); None if unusable."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:  # a local time of an unknown zone says nothing reliable
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def throttle_delay(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a throttled response asks us to wait: `Retry-After`, else `X-RateLimit-Reset`."""
    delay = parse_retry_after(headers.get("Retry-After"), now)
    if delay is None:
        delay = parse_rate_limit_reset(headers.get("X-RateLimit-Reset"), now)
    return delay


def throttled(status: int, retry_after: float | None) -> bool:
    """Jira refused the call unprocessed to slow us down: 429, or 503 saying when to come back."""
    return status == 429 or (status == 503 and retry_after is not None)


def backoff(policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random."""
    step = min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1))
    return min(policy.max_wait, step / 2 + rand() * step / 2)


def next_wait(
    policy: RetryPolicy,
    attempt: int,
    *,
    idempotent: bool,
    status: int | None = None,
    retry_after: float | None = None,
    sent: bool = True,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up and raise.

    `attempt` is the number of the attempt that just failed (1 for the first). `status` is the
    response status, or None when the request failed without a response; then `sent` says whether
    it may have reached Jira. `retry_after` is the parsed `Retry-After` header, if any.
    """
    if attempt >= policy.max_attempts:
        return None
    if status is None:
        if sent and not idempotent:
            return None
        return backoff(policy, attempt, rand)
    if status not in RETRYABLE_STATUSES:
        return None
    if not throttled(status, retry_after) and not idempotent:
        return None
    if retry_after is not None:
        if retry_after > policy.max_wait:
            return None
        # Jitter on top, never below what Jira asked for.
        return min(policy.max_wait, retry_after + rand() * policy.jitter)
    return backoff(policy, attempt, rand)
