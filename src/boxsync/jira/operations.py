"""Every Jira REST operation BoxSync calls, declared once as data.

The client refuses any method + path not declared here, so this list is the complete inventory of
what BoxSync does in a customer's Jira. A test looks each entry up in Jira's OpenAPI spec (the path
templates are copied verbatim from it) to collect the Connect scopes the descriptor must request.

`idempotent` says whether repeating the request after it may have reached Jira is harmless; only
those are retried on 5xx, timeouts and dropped connections. POSTs that only read (search, bulk fetch,
permission checks) are idempotent; creating a link or registering webhooks is not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import quote, unquote

from .errors import UndeclaredOperation, UnsafeUrlError


@dataclass(frozen=True)
class Operation:
    name: str  # Jira's operationId
    method: str
    path: str  # template exactly as in Jira's OpenAPI spec
    idempotent: bool
    # Not in Jira Cloud's OpenAPI spec (a Data Center endpoint some sites serve): callers must treat
    # a 404 as "the site has no such endpoint". The spec test checks every other operation.
    outside_spec: bool = False
    scope: str | None = None  # the Connect scope, for an operation outside the spec (which names the others')
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A template parameter matches one decoded path segment.
        regex = "".join(
            "[^/]+" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", self.path)
        )
        object.__setattr__(self, "_pattern", re.compile(regex))

    def matches(self, method: str, path: str) -> bool:
        """Does this operation serve `method` on `path` (decoded, relative to the site's base path)?"""
        return method.upper() == self.method and self._pattern.fullmatch(path) is not None

    def expand(self, params: Mapping[str, str | int] | None = None) -> str:
        """The percent-encoded path with each `{name}` replaced by its (encoded) value."""
        params = params or {}

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in params:
                raise ValueError(f"{self.name}: missing path parameter {name!r}")
            text = str(params[name])
            check_segment(text, f"{self.name}: path parameter {name!r}")
            # safe="" so an id can never add a query ("?") or a fragment ("#") either.
            return quote(text, safe="")

        return re.sub(r"\{([^}]+)\}", value, self.path)


def check_segment(segment: str, what: str) -> None:
    """Refuse a path segment that would not stay the one segment it was declared as.

    Every percent-decoding of it is checked, not only the raw text: httpx removes "." and ".."
    segments before sending, and proxies or Jira's servlet container may decode "%2e%2e" or "%2F",
    so such a value would send the request (signed for one path) to another path.
    """
    form, previous = segment, None
    while form != previous:
        if form in ("", ".", "..") or "/" in form or "\\" in form:
            raise UnsafeUrlError(f"{what}: {segment[:80]!r} would change the request path "
                                 "(an id or key must not be empty, '.', '..' or contain '/' or '\\', "
                                 "percent-encoded or not)")
        form, previous = unquote(form), form


def _op(name: str, method: str, path: str, *, idempotent: bool | None = None,
        outside_spec: bool = False, scope: str | None = None) -> Operation:
    return Operation(name, method, path, method != "POST" if idempotent is None else idempotent,
                     outside_spec, scope)


# Names are Jira's operationIds (see the spec); keep this list in step with the descriptor's scopes.
SERVER_INFO = _op("getServerInfo", "GET", "/rest/api/3/serverInfo")
MYSELF = _op("getCurrentUser", "GET", "/rest/api/3/myself")
FIELDS = _op("getFields", "GET", "/rest/api/3/field")
LINK_TYPES = _op("getIssueLinkTypes", "GET", "/rest/api/3/issueLinkType")
PROJECT_SEARCH = _op("searchProjects", "GET", "/rest/api/3/project/search")
SEARCH_JQL = _op("searchAndReconsileIssuesUsingJqlPost", "POST", "/rest/api/3/search/jql", idempotent=True)
APPROXIMATE_COUNT = _op("countIssues", "POST", "/rest/api/3/search/approximate-count", idempotent=True)
BULK_FETCH = _op("bulkFetchIssues", "POST", "/rest/api/3/issue/bulkfetch", idempotent=True)
GET_ISSUE = _op("getIssue", "GET", "/rest/api/3/issue/{issueIdOrKey}")
EDIT_ISSUE = _op("editIssue", "PUT", "/rest/api/3/issue/{issueIdOrKey}")
CREATE_LINK = _op("linkIssues", "POST", "/rest/api/3/issueLink")
GET_LINK = _op("getIssueLink", "GET", "/rest/api/3/issueLink/{linkId}")
DELETE_LINK = _op("deleteIssueLink", "DELETE", "/rest/api/3/issueLink/{linkId}")
MY_PERMISSIONS = _op("getMyPermissions", "GET", "/rest/api/3/mypermissions")
CHECK_PERMISSIONS = _op("getBulkPermissions", "POST", "/rest/api/3/permissions/check", idempotent=True)
MATCH_JQL = _op("matchIssues", "POST", "/rest/api/3/jql/match", idempotent=True)
REGISTER_WEBHOOKS = _op("registerDynamicWebhooks", "POST", "/rest/api/3/webhook")
LIST_WEBHOOKS = _op("getDynamicWebhooksForApp", "GET", "/rest/api/3/webhook")
REFRESH_WEBHOOKS = _op("refreshWebhooks", "PUT", "/rest/api/3/webhook/refresh")
DELETE_WEBHOOKS = _op("deleteWebhookById", "DELETE", "/rest/api/3/webhook")
# Index health before a full sync (bigpicture-and-jira.md 1.7): Jira Data Center's index summary.
# Cloud sites that serve it answer like Data Center; the others answer 404 (no signal). Jira
# shows it to administrators only, hence the app's ADMIN scope.
INDEX_SUMMARY = _op("getIndexSummary", "GET", "/rest/api/2/index/summary", outside_spec=True, scope="ADMIN")

OPERATIONS: tuple[Operation, ...] = (
    SERVER_INFO, MYSELF, FIELDS, LINK_TYPES, PROJECT_SEARCH, SEARCH_JQL, APPROXIMATE_COUNT,
    BULK_FETCH, GET_ISSUE, EDIT_ISSUE, CREATE_LINK, GET_LINK, DELETE_LINK, MY_PERMISSIONS,
    CHECK_PERMISSIONS, MATCH_JQL, REGISTER_WEBHOOKS, LIST_WEBHOOKS, REFRESH_WEBHOOKS, DELETE_WEBHOOKS,
    INDEX_SUMMARY,
)


def find_operation(method: str, path: str) -> Operation:
    """The declared operation for `method` on a decoded path relative to the site; raises if none."""
    for op in OPERATIONS:
        if op.matches(method, path):
            return op
    raise UndeclaredOperation(f"{method.upper()} {path} is not a declared Jira operation "
                              "(add it to boxsync.jira.operations.OPERATIONS)")
