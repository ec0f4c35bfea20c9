"""Ids and URLs that would change the path the Jira client sends are refused before sending.

httpx removes "." and ".." segments from a URL, so `get_issue("..")` used to send
`GET /rest/api/3` signed for `/rest/api/3/issue/..`; encoded forms (`%2e%2e`, `%2F`) are decoded by
proxies and servlet containers further on.
"""
from __future__ import annotations

import httpx
import pytest

from boxsync.jira import AppJwt, JiraClient, UnsafeUrlError, new_http_client
from boxsync.jira import operations as ops

SECRET = "path-test-shared-secret-0123456789abcdef"
SITE = "https://site.atlassian.net"


@pytest.fixture
async def sent():
    """A real pool whose event hook records every request that would leave the process."""
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    http = new_http_client()
    http.event_hooks["request"] = [record]
    yield http, requests
    await http.aclose()


BAD_IDS = ["..", ".", "", "%2e%2e", "%2E", "%252e%252e", "ABC-1/../x", "a%2Fb", "a\\b", "..%5c"]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_ids_that_change_the_path_are_refused(sent, bad):
    http, requests = sent
    client = JiraClient(http, SITE, AppJwt("boxsync", SECRET))
    with pytest.raises(UnsafeUrlError, match="would change the request path"):
        await client.get_issue(bad)
    with pytest.raises(UnsafeUrlError):
        await client.delete_link(bad)
    with pytest.raises(UnsafeUrlError):
        ops.EDIT_ISSUE.expand({"issueIdOrKey": bad})
    assert requests == []


@pytest.mark.parametrize("url", [
    "/rest/api/3/issue/..",
    "/rest/api/3/issue/.",
    "/rest/api/3/issue/%2e%2e",
    "/rest/api/3/issue/%2E%2E",
    "/rest/api/3/issue/ABC%2F1",
    "/rest/api/3/issueLink/%252e%252e",
    f"{SITE}/rest/api/3/issue/..",
    f"{SITE}/rest/api/3/issue/%2e",
])
async def test_urls_with_dot_segments_or_encoded_slashes_are_refused(sent, url):
    http, requests = sent
    client = JiraClient(http, SITE, AppJwt("boxsync", SECRET))
    method = "DELETE" if "issueLink" in url else "GET"
    with pytest.raises(UnsafeUrlError, match="would change the request path"):
        await client.request(method, url)
    assert requests == []


def test_ordinary_ids_and_keys_still_expand():
    assert ops.GET_ISSUE.expand({"issueIdOrKey": "ABC-1"}) == "/rest/api/3/issue/ABC-1"
    assert ops.GET_ISSUE.expand({"issueIdOrKey": 10001}) == "/rest/api/3/issue/10001"
    # Dots inside a value are not a dot segment.
    assert ops.GET_LINK.expand({"linkId": "a..b"}) == "/rest/api/3/issueLink/a..b"
