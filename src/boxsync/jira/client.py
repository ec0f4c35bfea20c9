"""`JiraClient`: calls to one Jira site, as one principal, over the process-wide HTTP pool.

Only declared operations (operations.OPERATIONS) are called, and only on the site's own origin:
a URL pointing anywhere else is refused before a request (and its credentials) is built.

Every client of one site shares that site's limits (limits.py) on the pool: a cap on calls in
flight and the pause a throttled answer sets, whichever principal the client calls as.

The query string is built here, percent-encoded with %20 for spaces, from the same decoded pairs
that go into the qsh, so what Jira receives and what was signed always agree (the `+`-for-space
mismatch broke JQL in other clients).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import httpx
import orjson

from boxsync.connect.qsh import relative_path

from . import operations as ops
from .auth import AppJwt, Auth, BasicAuth, UserToken
from .errors import JiraError, UnsafeUrlError, error_from_response
from .limits import Limits, for_pool
from .oauth import OAuthTokens
from .operations import Operation
from .retry import DEFAULT_POLICY, RetryPolicy, throttle_delay
from .transport import send

logger = logging.getLogger("boxsync.jira")

QueryValue = str | int | float | bool | None | Sequence[str | int]
QueryParams = Mapping[str, QueryValue] | Sequence[tuple[str, str | int]]

BULK_FETCH_MAX = 100  # Jira's limit of issueIdsOrKeys per bulkfetch
ID_PAGE_SIZE = 5000  # search/jql's most per page when only ids are asked for
FIELDS_PAGE_SIZE = 100
_DEFAULT_PORTS = {"http": 80, "https": 443}


class JiraClient:
    """Calls to the site at `base_url` as `auth`; cheap to create per tenant and per request."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        auth: Auth,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        bulk_concurrency: int = 4,
        limits: Limits | None = None,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.query or parts.username:
            raise ValueError(f"not a usable Jira base URL: {base_url!r}")
        self.http = http
        self.auth = auth
        self.policy = policy
        self.bulk_concurrency = bulk_concurrency
        self._origin = _origin(parts.scheme, parts.hostname, parts.port)
        self._origin_url = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")  # Jira's context path: '' on Cloud
        self.base_url = self._origin_url + self._base_path
        # Keyed by scheme, host, port and context path, so that spellings of one site (an upper-case
        # host, an explicit :443) share one limit.
        scheme, host, port = self._origin
        self.limit = (limits or for_pool(http)).site(f"{scheme}://{host}:{port}{self._base_path}")

    def __repr__(self) -> str:
        return f"JiraClient({self.base_url!r}, {self.auth!r})"

    # -- sending -----------------------------------------------------------------------------------

    async def call(self, op: Operation, path_params: Mapping[str, str | int] | None = None, *,
                   params: QueryParams | None = None, json: Any = None) -> Any:
        """Call a declared operation; returns the decoded JSON body (None when there is none)."""
        if op not in ops.OPERATIONS:
            raise ops.UndeclaredOperation(f"{op.method} {op.path} is not in OPERATIONS")
        return await self._send(op, op.expand(path_params), query_pairs(params), json)

    async def request(self, method: str, url: str, *, params: QueryParams | None = None,
                      json: Any = None) -> Any:
        """Call by URL: relative to the site (`/rest/api/3/myself`) or absolute on the site's own
        origin (e.g. a `self` link). Raises `UnsafeUrlError` for any other origin or for a path whose
        segments would change once normalised or decoded ("..", "%2F"), and `UndeclaredOperation`
        for a method + path not in OPERATIONS, before sending anything."""
        path, query = self.resolve(url)
        for segment in path.split("/")[1:]:
            ops.check_segment(segment, f"{method.upper()} {path[:200]}")
        op = ops.find_operation(method, unquote(path))
        return await self._send(op, path, query + query_pairs(params), json)

    def resolve(self, url: str) -> tuple[str, list[tuple[str, str]]]:
        """(encoded path relative to the base path, decoded query pairs) of a URL on this site."""
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            try:
                origin = _origin(parts.scheme, parts.hostname or "", parts.port)
            except ValueError:  # unparsable port
                origin = None
            if origin != self._origin or parts.username or parts.password:
                raise UnsafeUrlError(f"refusing to call {parts.scheme}://{parts.hostname}: "
                                     f"not the tenant's site {self._origin_url}")
            path = parts.path or "/"
            if self._base_path:
                stripped = relative_path(path, self._base_path)
                if stripped == path:
                    raise UnsafeUrlError(f"refusing to call {path}: outside the site's path {self._base_path}")
                path = stripped
        else:
            path = parts.path if parts.path.startswith("/") else "/" + parts.path
        return path, parse_qsl(parts.query, keep_blank_values=True)

    async def _send(self, op: Operation, path: str, query: list[tuple[str, str]], json: Any) -> Any:
        decoded = unquote(path)
        url = self.base_url + path + ("?" + encode_query(query) if query else "")
        method = op.method

        async def prepare() -> dict[str, Any]:
            headers = {"Authorization": await self.auth.authorization(method, decoded, query)}
            return {"headers": headers, "json": json}

        response = await send(self.http, method, url, prepare=prepare, idempotent=op.idempotent,
                              policy=self.policy, limit=self.limit, endpoint=op.path)
        if response.status_code == 401 and self.auth.invalidate():
            logger.info("Jira %s %s answered 401; retrying once with new credentials", method, self.base_url + path)
            response = await send(self.http, method, url, prepare=prepare, idempotent=op.idempotent,
                                  policy=self.policy, limit=self.limit, endpoint=op.path)
        if response.is_success:
            # orjson: Jira's answers are large (a bulkfetch of 100 issues is ~100 kB) and parsing
            # them is most of a full sync's CPU time; it is several times faster than json.
            return orjson.loads(response.content) if response.content.strip() else None
        extra: dict[str, Any] = {}
        if response.status_code == 429:
            extra["retry_after"] = throttle_delay(response.headers)
        raise error_from_response(response, **extra)

    # -- site --------------------------------------------------------------------------------------

    async def server_info(self) -> dict[str, Any]:
        return await self.call(ops.SERVER_INFO)

    async def myself(self) -> dict[str, Any]:
        return await self.call(ops.MYSELF)

    async def fields(self) -> list[dict[str, Any]]:
        return await self.call(ops.FIELDS)

    async def link_types(self) -> list[dict[str, Any]]:
        return (await self.call(ops.LINK_TYPES))["issueLinkTypes"]

    async def iter_projects(self, *, query: str | None = None, keys: Sequence[str] = (),
                            page_size: int = 50) -> AsyncIterator[dict[str, Any]]:
        """Every project visible to the caller, paging with startAt."""
        start = 0
        while True:
            page = await self.call(ops.PROJECT_SEARCH, params={
                "startAt": start, "maxResults": page_size, "query": query, "keys": list(keys),
            })
            values = page.get("values") or []
            for project in values:
                yield project
            start += len(values)
            if page.get("isLast", True) or not values:
                return

    # -- search ------------------------------------------------------------------------------------

    async def iter_issue_ids(self, jql: str, *, page_size: int = ID_PAGE_SIZE) -> AsyncIterator[str]:
        """Ids of all issues matching `jql` (which must be bounded), page by page in order.

        Pages are fetched sequentially, as the token paging requires; fetch details with bulkfetch.
        """
        async for page in self._search_pages(jql, ["id"], page_size, None):
            for issue in page:
                yield str(issue["id"])

    async def search_issues(self, jql: str, fields: Sequence[str], *, page_size: int = FIELDS_PAGE_SIZE,
                            expand: Sequence[str] = ()) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages (of at most `page_size`, ≤ 100 when asking for fields) of issues with `fields`."""
        async for page in self._search_pages(jql, list(fields), page_size, ",".join(expand) or None):
            yield page

    async def _search_pages(self, jql: str, fields: list[str], page_size: int,
                            expand: str | None) -> AsyncIterator[list[dict[str, Any]]]:
        token: str | None = None
        seen: set[str] = set()
        while True:
            body: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": fields}
            if expand:
                body["expand"] = expand
            if token:
                body["nextPageToken"] = token
            page = await self.call(ops.SEARCH_JQL, json=body)
            yield page.get("issues") or []
            token = page.get("nextPageToken")
            if not token or page.get("isLast"):
                return
            if token in seen:  # a server bug must not turn into an endless loop
                raise JiraError(200, ["search/jql returned a page token twice"], method="POST",
                                url=self.base_url + ops.SEARCH_JQL.path)
            seen.add(token)

    async def approximate_count(self, jql: str) -> int:
        return int((await self.call(ops.APPROXIMATE_COUNT, json={"jql": jql}))["count"])

    async def match_jql(self, jqls: Sequence[str], issue_ids: Iterable[int | str]) -> list[dict[str, Any]]:
        """For each JQL (in order), which of `issue_ids` match it: `[{matchedIssues, errors}]`."""
        body = {"jqls": list(jqls), "issueIds": [int(i) for i in issue_ids]}
        return (await self.call(ops.MATCH_JQL, json=body))["matches"]

    # -- issues ------------------------------------------------------------------------------------

    async def bulkfetch(self, ids: Sequence[str | int], fields: Sequence[str] = (), *,
                        expand: Sequence[str] = ()) -> dict[str, list[dict[str, Any]]]:
        """Issues by id or key in chunks of 100, a few chunks at a time.

        Returns Jira's shape merged over all chunks: `{"issues": [...], "issueErrors": [...]}`.
        """
        chunks = [list(ids[i:i + BULK_FETCH_MAX]) for i in range(0, len(ids), BULK_FETCH_MAX)]
        results: list[dict[str, Any]] = [{}] * len(chunks)
        limit = asyncio.Semaphore(max(1, self.bulk_concurrency))

        async def fetch(index: int, chunk: list[str | int]) -> None:
            body: dict[str, Any] = {"issueIdsOrKeys": [str(i) for i in chunk]}
            if fields:
                body["fields"] = list(fields)
            if expand:
                body["expand"] = list(expand)
            async with limit:
                results[index] = await self.call(ops.BULK_FETCH, json=body)

        try:
            async with asyncio.TaskGroup() as group:  # the first failure cancels the other chunks
                for index, chunk in enumerate(chunks):
                    group.create_task(fetch(index, chunk))
        except BaseExceptionGroup as failed:
            raise _first_error(failed) from None
        return {
            "issues": [issue for r in results for issue in r.get("issues") or []],
            "issueErrors": [error for r in results for error in r.get("issueErrors") or []],
        }

    async def get_issue(self, id_or_key: str | int, fields: Sequence[str] | None = None, *,
                        expand: Sequence[str] = ()) -> dict[str, Any]:
        params = {"fields": ",".join(fields) if fields is not None else None,
                  "expand": ",".join(expand) or None}
        return await self.call(ops.GET_ISSUE, {"issueIdOrKey": id_or_key}, params=params)

    async def edit_issue(self, id_or_key: str | int, fields: Mapping[str, Any] | None = None, *,
                         update: Mapping[str, Any] | None = None, notify_users: bool = False) -> None:
        """Set fields. notify_users=False is honoured only for admins; Jira silently ignores it otherwise."""
        body: dict[str, Any] = {}
        if fields:
            body["fields"] = dict(fields)
        if update:
            body["update"] = dict(update)
        await self.call(ops.EDIT_ISSUE, {"issueIdOrKey": id_or_key},
                        params={"notifyUsers": notify_users}, json=body)

    # -- links -------------------------------------------------------------------------------------

    async def create_link(self, type_name: str, inward: str | int, outward: str | int) -> None:
        """Link two issues (ids or keys). Jira answers 201 without the link's id: read it from the
        issue's `issuelinks`. Never retried after it may have reached Jira."""
        body = {"type": {"name": type_name}, "inwardIssue": _issue_ref(inward),
                "outwardIssue": _issue_ref(outward)}
        await self.call(ops.CREATE_LINK, json=body)

    async def get_link(self, link_id: str | int) -> dict[str, Any]:
        return await self.call(ops.GET_LINK, {"linkId": link_id})

    async def delete_link(self, link_id: str | int) -> None:
        await self.call(ops.DELETE_LINK, {"linkId": link_id})

    # -- permissions -------------------------------------------------------------------------------

    async def my_permissions(self, permissions: Sequence[str], *, project_key: str | None = None,
                             issue_key: str | None = None) -> dict[str, Any]:
        """`{PERMISSION: {havePermission, ...}}` for the caller, optionally in a project or issue."""
        params = {"permissions": ",".join(permissions), "projectKey": project_key, "issueKey": issue_key}
        return (await self.call(ops.MY_PERMISSIONS, params=params))["permissions"]

    async def check_permissions(self, project_permissions: Sequence[Mapping[str, Any]] = (), *,
                                global_permissions: Sequence[str] = (),
                                account_id: str | None = None) -> dict[str, Any]:
        """Bulk permission check; each project permission is `{permissions, projects, issues}`."""
        body: dict[str, Any] = {"projectPermissions": [dict(p) for p in project_permissions],
                                "globalPermissions": list(global_permissions)}
        if account_id:
            body["accountId"] = account_id
        return await self.call(ops.CHECK_PERMISSIONS, json=body)

    # -- dynamic webhooks --------------------------------------------------------------------------

    async def register_webhooks(self, url: str, webhooks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Register `[{events, jqlFilter, ...}]` for `url`; per webhook `{createdWebhookId}` or `{errors}`."""
        body = {"url": url, "webhooks": [dict(w) for w in webhooks]}
        return (await self.call(ops.REGISTER_WEBHOOKS, json=body))["webhookRegistrationResult"]

    async def list_webhooks(self, *, page_size: int = 100) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = await self.call(ops.LIST_WEBHOOKS, params={"startAt": len(found), "maxResults": page_size})
            values = page.get("values") or []
            found.extend(values)
            if page.get("isLast", True) or not values:
                return found

    async def refresh_webhooks(self, ids: Iterable[int]) -> dict[str, Any]:
        """Extend the 30-day life of webhooks; returns `{expirationDate}`."""
        return await self.call(ops.REFRESH_WEBHOOKS, json={"webhookIds": [int(i) for i in ids]})

    async def delete_webhooks(self, ids: Iterable[int]) -> None:
        await self.call(ops.DELETE_WEBHOOKS, json={"webhookIds": [int(i) for i in ids]})


# -- construction ------------------------------------------------------------------------------------

def app_client(http: httpx.AsyncClient, tenant: Any, app_key: str, **options: Any) -> JiraClient:
    """As the app, for an installed tenant (anything with `base_url` and `shared_secret`)."""
    return JiraClient(http, tenant.base_url, AppJwt(app_key, tenant.shared_secret), **options)


def user_client(http: httpx.AsyncClient, tokens: OAuthTokens, tenant: Any, account_id: str,
                scopes: Sequence[str] = (), **options: Any) -> JiraClient:
    """As a user of an installed tenant (also needs `client_key` and `oauth_client_id`)."""
    if not tenant.oauth_client_id:
        raise ValueError(f"tenant {tenant.client_key} has no oauthClientId: cannot act as a user")
    auth = UserToken(tokens, tenant.client_key, tenant.base_url, tenant.oauth_client_id, account_id,
                     tenant.shared_secret, tuple(scopes))
    return JiraClient(http, tenant.base_url, auth, **options)


def basic_client(http: httpx.AsyncClient, base_url: str, email: str, api_token: str,
                 **options: Any) -> JiraClient:
    """As a technical user of a site where BoxSync is not installed."""
    return JiraClient(http, base_url, BasicAuth(email, api_token), **options)


# -- helpers -----------------------------------------------------------------------------------------

def query_pairs(params: QueryParams | None) -> list[tuple[str, str]]:
    """Decoded (name, value) pairs: None values dropped, sequences repeated, booleans as true/false."""
    if not params:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None:
                continue
            pairs.append((name, ("true" if v else "false") if isinstance(v, bool) else str(v)))
    return pairs


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """RFC 3986 encoding, space as %20: the same encoding the qsh uses, so both sides agree."""
    return "&".join(f"{quote(k, safe='-._~')}={quote(v, safe='-._~')}" for k, v in pairs)


def _origin(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    scheme = scheme.lower()
    return scheme, host.lower().rstrip("."), port or _DEFAULT_PORTS.get(scheme, 0)


def _issue_ref(id_or_key: str | int) -> dict[str, str]:
    text = str(id_or_key)
    return {"id": text} if text.isdigit() else {"key": text}


def _first_error(group: BaseExceptionGroup) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error

