"""Jira Cloud's rate limits, enforced in front of a simulated site; off until configured. The model
is here; the middleware that enforces it is in jirasim.gateway.

What Jira Cloud does, per bigpicture-and-jira.md §2.4 (from developer.atlassian.com/cloud/jira/
platform/rate-limiting [RL], …/build-an-app-that-respects-rate-limits [RL-BUILD], the 2026
point-based rate limits thread [RL-THREAD-9] and JRACLOUD-69262):

* Three independent limits, each answering 429:
  1. `quota`: a points-based hourly quota per app per tenant ("tenant-app-quota"). A call costs 1
     point plus 1 per object returned; writes cost only the base [RL]. Reason
     `jira-quota-tenant-based`. It covers the app's own (JWT) calls and its calls as a user; API
     token (Basic) traffic is not subject to it, "governed by existing burst rate limits" [RL].
  2. `burst`: per-second limits per tenant + endpoint + method [RL-BUILD], counted per budget:
     the app (JWT), the app + user (acting as a user), the user (Basic) [RL-OLD]. Reason
     `jira-burst-based`.
  3. `issueWrites`: writes to one issue, per second [RL]. Reason `jira-per-issue-on-write`.
* A 429 carries `Retry-After` (seconds), `X-RateLimit-Reset` (ISO-8601 `yyyy-MM-ddTHH:mmZ`),
  `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `RateLimit-Reason`; calls charged to a quota
  carry the observed beta headers `Beta-RateLimit-Policy: "tenant-app-quota";q=<points>;w=<window>`
  and `Beta-RateLimit: "tenant-app-quota";r=<remaining>;t=<seconds to reset>` [RL-THREAD-9].

Modelled here: a token bucket per (budget, method, endpoint) for bursts and per issue for writes,
and a fixed window of points per app for the quota (its length configurable, an hour by default).
"Objects returned" are the objects in the response's top-level arrays (a list body, or `issues`,
`values`, … in an object), so a write or a single-object GET costs the base point. Not modelled:
the global pool shared by all tenants of an app (each site here is its own server), and limits on
issue-link writes (their path does not name the issue). Like `faults`, the caller is identified
without verifying credentials, as a gateway in front of Jira would; 429s are not charged.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable


QUOTA_REASON = "jira-quota-tenant-based"
BURST_REASON = "jira-burst-based"
ISSUE_WRITE_REASON = "jira-per-issue-on-write"
QUOTA_POLICY = "tenant-app-quota"
WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})


@dataclass(frozen=True, slots=True)
class Bucket:
    rate: float  # tokens added per second
    capacity: float  # the burst: calls allowed at once from a full bucket

    def to_json(self) -> dict[str, float]:
        return {"rate": self.rate, "capacity": self.capacity}


@dataclass(frozen=True, slots=True)
class Quota:
    points: int
    window: float = 3600.0  # seconds

    def to_json(self) -> dict[str, float]:
        return {"points": self.points, "window": self.window}


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    retry_after: int  # whole seconds, at least 1
    limit: int
    reset_at: float  # epoch seconds

    def headers(self) -> dict[str, str]:
        return {
            "Retry-After": str(self.retry_after),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": iso_minute(self.reset_at),
            "RateLimit-Reason": self.reason,
        }


def iso_minute(epoch: float) -> str:
    """`yyyy-MM-ddTHH:mmZ`, rounded up so that a client never comes back before the reset."""
    minute = math.ceil(epoch / 60) * 60
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(minute))


def _bucket(spec: Any, name: str) -> Bucket | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or set(spec) - {"rate", "capacity"}:
        raise ValueError(f"{name} must be null or {{rate, capacity?}}")
    rate, capacity = spec.get("rate"), spec.get("capacity", spec.get("rate"))
    for label, value in (("rate", rate), ("capacity", capacity)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e9:
            raise ValueError(f"{name}.{label} must be a positive number")
    if capacity < 1:
        raise ValueError(f"{name}.capacity must be at least 1 (one call)")
    return Bucket(float(rate), float(capacity))


def _quota(spec: Any) -> Quota | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or set(spec) - {"points", "window"}:
        raise ValueError("quota must be null or {points, window?}")
    points, window = spec.get("points"), spec.get("window", 3600)
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ValueError("quota.points must be a positive integer")
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 86400:
        raise ValueError("quota.window must be a number of seconds, more than 0 and at most 86400")
    return Quota(points, float(window))


class RateLimits:
    """A site's limits and what each caller has used of them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.wall = wall
        self.configure({})

    @property
    def enabled(self) -> bool:
        return bool(self.burst or self.quota or self.issue_writes)

    def configure(self, spec: dict[str, Any]) -> None:
        """Replace the limits (JSON: `{burst?, quota?, issueWrites?}`, each null for none) and
        forget usage. ValueError on bad input, leaving the old limits in place."""
        unknown = set(spec) - {"burst", "quota", "issueWrites"}
        if unknown:
            raise ValueError(f"unknown rate limit fields: {', '.join(sorted(unknown))}")
        burst, quota = _bucket(spec.get("burst"), "burst"), _quota(spec.get("quota"))
        issue_writes = _bucket(spec.get("issueWrites"), "issueWrites")
        self.burst, self.quota, self.issue_writes = burst, quota, issue_writes
        self._tokens: dict[tuple[str, ...], tuple[float, float]] = {}  # key → (tokens, at)
        self._used: dict[str, tuple[int, float]] = {}  # app key → (points, window start)
        self.rejected: Counter[str] = Counter()  # by reason

    def to_json(self) -> dict[str, Any]:
        now = self.clock()
        usage = {}
        for app, (used, start) in self._used.items():
            if self.quota and now - start < self.quota.window:
                usage[app] = {"used": used, "remaining": max(0, self.quota.points - used),
                              "resetsIn": math.ceil(round(self.quota.window - (now - start), 6))}
        return {
            "burst": self.burst.to_json() if self.burst else None,
            "quota": self.quota.to_json() if self.quota else None,
            "issueWrites": self.issue_writes.to_json() if self.issue_writes else None,
            "quotaUsage": usage,
            "rejected": dict(self.rejected),
        }

    # -- deciding ---------------------------------------------------------------------------------

    def check(self, *, budget: str, app: str | None, method: str, endpoint: str,
              issue: str | None) -> Rejection | None:
        """None if the call may go ahead (its burst and issue tokens then taken), else why not.

        The quota is checked first: a client told of a burst limit would come back only to meet
        the quota, while the quota's reset is the longer, final answer.
        """
        now = self.clock()
        rejection = self._check_quota(app, now)
        keys: list[tuple[tuple[str, ...], Bucket, str]] = []
        if self.burst:
            keys.append((("burst", budget, method, endpoint), self.burst, BURST_REASON))
        if self.issue_writes and issue is not None and method in WRITES:
            keys.append((("issue", issue), self.issue_writes, ISSUE_WRITE_REASON))
        levels = []
        for key, bucket, reason in keys:
            tokens = self._level(key, bucket, now)
            levels.append(tokens)
            if rejection is None and tokens < 1:
                wait = max(1, math.ceil((1 - tokens) / bucket.rate))
                rejection = Rejection(reason, wait, int(bucket.capacity), self.wall() + wait)
        if rejection is not None:
            self.rejected[rejection.reason] += 1
            return rejection
        for (key, _, _), tokens in zip(keys, levels):
            self._tokens[key] = (tokens - 1, now)
        return None

    def _level(self, key: tuple[str, ...], bucket: Bucket, now: float) -> float:
        tokens, at = self._tokens.get(key, (bucket.capacity, now))
        return min(bucket.capacity, tokens + (now - at) * bucket.rate)

    def _window(self, app: str, now: float) -> tuple[int, float]:
        assert self.quota is not None
        used, start = self._used.get(app, (0, now))
        if now - start >= self.quota.window:
            used, start = 0, now
        return used, start

    def _check_quota(self, app: str | None, now: float) -> Rejection | None:
        if self.quota is None or app is None:
            return None
        used, start = self._window(app, now)
        if used < self.quota.points:
            return None
        left = round(self.quota.window - (now - start), 6)  # no float noise from adding a clock reading
        return Rejection(QUOTA_REASON, max(1, math.ceil(left)), self.quota.points, self.wall() + left)

    def charge(self, app: str, points: int) -> None:
        """Add a finished call's cost to the app's quota window."""
        if self.quota is None:
            return
        now = self.clock()
        used, start = self._window(app, now)
        self._used[app] = (used + points, start)

    def quota_headers(self, app: str, pending: int = 1) -> dict[str, str]:
        """The observed beta headers, counting `pending` points of the call being answered."""
        assert self.quota is not None
        now = self.clock()
        used, start = self._window(app, now)
        remaining = max(0, self.quota.points - used - pending)
        return {
            "Beta-RateLimit-Policy": f'"{QUOTA_POLICY}";q={self.quota.points};w={self.quota.window:g}',
            "Beta-RateLimit": f'"{QUOTA_POLICY}";r={remaining};t={math.ceil(round(self.quota.window - (now - start), 6))}',
        }
