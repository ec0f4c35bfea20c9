"""Injected failures and request counting: the model (the ASGI middleware that applies them is in
jirasim.gateway).

A `Fault` matches requests by endpoint (a route name such as `getIssue`, a path template such as
`/rest/api/3/issue/{issueIdOrKey}`, a glob on the actual path such as `/rest/api/3/search*`, or
`*`), optionally by method and caller, and applies to the next `count` matching requests and/or with
a seeded `probability`. Kinds:

* `latency`    — sleep `seconds`, then serve normally;
* `rate_limit` — 429 with `Retry-After` and `RateLimit-Reason` (Jira's burst/quota/per-issue limits);
* `error`      — `status` 500/502/503/504 in Jira's error shape, optional `Retry-After`;
* `timeout`    — hold the request without answering until the client disconnects (or `seconds`,
                 default 300, pass; then 504).

Every request outside `/_jirasim/` is counted per endpoint and per caller (unverified label — faults
fire before authentication, as a gateway's would).
"""
from __future__ import annotations

import fnmatch
import itertools
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


KINDS = ("latency", "rate_limit", "error", "timeout")
CONTROL_PREFIX = "/_jirasim"


@dataclass(slots=True)
class Fault:
    id: int
    kind: str
    endpoint: str = "*"
    method: str | None = None
    caller: str | None = None
    count: int | None = None  # remaining matching requests to affect; None = unlimited
    probability: float | None = None
    seconds: float = 0.0
    status: int | None = None
    retry_after: int | None = None
    reason: str = "jira-burst-based"
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Traffic:
    """A site's faults and counters."""

    faults: list[Fault] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    total: int = 0
    by_endpoint: Counter = field(default_factory=Counter)  # "GET /rest/api/3/issue/{issueIdOrKey}"
    by_route: Counter = field(default_factory=Counter)  # "getIssue"
    by_caller: Counter = field(default_factory=Counter)  # "user:<accountId>" | "app:<key>" | "anonymous"
    by_endpoint_caller: Counter = field(default_factory=Counter)  # (endpoint, caller)
    by_status: Counter = field(default_factory=Counter)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def add_fault(self, spec: dict[str, Any]) -> Fault:
        """Validate a JSON fault spec (see module doc); ValueError on bad input."""
        allowed = {"kind", "endpoint", "method", "caller", "count", "probability", "seconds", "status",
                   "retry_after", "retryAfter", "reason", "seed"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        status = spec.get("status")
        if kind == "rate_limit":
            status = 429
        elif kind == "error":
            status = status or 503
            if status not in (500, 502, 503, 504):
                raise ValueError("status must be 500, 502, 503 or 504 for an error fault")
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise ValueError("count must be a positive integer")
        prob = spec.get("probability")
        if prob is not None and (not isinstance(prob, (int, float)) or not 0 <= prob <= 1):
            raise ValueError("probability must be a number between 0 and 1")
        seconds = spec.get("seconds", 300.0 if kind == "timeout" else 0.0)
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        if kind == "latency" and seconds <= 0:
            raise ValueError("a latency fault needs seconds > 0")
        retry_after = spec.get("retry_after", spec.get("retryAfter"))
        if kind == "rate_limit" and retry_after is None:
            retry_after = 5
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise ValueError("retry_after must be a non-negative integer (seconds)")
        if "seed" in spec:
            self.rng.seed(spec["seed"])
        method = spec.get("method")
        fault = Fault(next(self._ids), kind, str(spec.get("endpoint") or "*"), method.upper() if method else None,
                      spec.get("caller"), count, prob, float(seconds), status, retry_after,
                      str(spec.get("reason") or "jira-burst-based"))
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset_counters(self) -> None:
        self.total = 0
        for c in (self.by_endpoint, self.by_route, self.by_caller, self.by_endpoint_caller, self.by_status):
            c.clear()

    def counters_json(self) -> dict[str, Any]:
        per: dict[str, dict[str, int]] = {}
        for (endpoint, caller), n in self.by_endpoint_caller.items():
            per.setdefault(endpoint, {})[caller] = n
        return {
            "total": self.total,
            "endpoints": dict(self.by_endpoint),
            "routes": dict(self.by_route),
            "callers": dict(self.by_caller),
            "byEndpointAndCaller": per,
            "statuses": {str(k): v for k, v in self.by_status.items()},
        }

    def pick(self, route_name: str | None, template: str | None, path: str, method: str, caller: str) -> Fault | None:
        for fault in self.faults:
            if fault.count is not None and fault.count <= 0:
                continue
            if fault.method and fault.method != method:
                continue
            if fault.caller and fault.caller != caller:
                continue
            ep = fault.endpoint
            if not (ep == "*" or ep == route_name or ep == template or fnmatch.fnmatchcase(path, ep)):
                continue
            if fault.probability is not None and self.rng.random() >= fault.probability:
                continue
            if fault.count is not None:
                fault.count -= 1
            fault.hits += 1
            return fault
        return None
