"""Pure parts of the Jira client: retry rules, URL and query building, signing, error parsing.

No server here; everything that talks HTTP is in test_jira_client.py against the simulator.
"""
from __future__ import annotations

import email.utils
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest

from boxsync.connect.qsh import query_hash
from boxsync.jira import (
    AppJwt,
    BasicAuth,
    JiraClient,
    JiraRateLimited,
    OAuthTokens,
    UndeclaredOperation,
    UnsafeUrlError,
    UserToken,
    new_http_client,
)
from boxsync.jira import operations as ops
from boxsync.jira.client import encode_query, query_pairs
from boxsync.jira.errors import (
    JiraBadRequest,
    JiraError,
    JiraNotFound,
    JiraUnavailable,
    error_class,
    parse_error_body,
    safe_url,
)
from boxsync.jira.oauth import assertion, cache_lifetime, normalize_scopes
from boxsync.jira.retry import RetryPolicy, backoff, next_wait, parse_retry_after

SECRET = "s" * 40  # ≥ 32 bytes: shorter HMAC keys are an error under our warning filters
POLICY = RetryPolicy(max_attempts=4, max_wait=30, backoff_base=0.5, backoff_max=10, jitter=0.5)


def always(x: float):
    return lambda: x


# -- retry policy ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("7", 7.0), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0),
                                             (None, None), ("soon", None), ("nan", None)])
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 12, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(12)
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0


def test_429_waits_retry_after_plus_jitter_never_less():
    assert next_wait(POLICY, 1, idempotent=True, status=429, retry_after=5, rand=always(0)) == 5
    assert next_wait(POLICY, 1, idempotent=True, status=429, retry_after=5, rand=always(1)) == 5.5
    # Jira rejected a rate-limited request unprocessed: even a creating POST is retried.
    assert next_wait(POLICY, 1, idempotent=False, status=429, retry_after=2, rand=always(0)) == 2


def test_retry_after_beyond_the_cap_gives_up_at_once():
    assert next_wait(POLICY, 1, idempotent=True, status=429, retry_after=3600) is None
    assert next_wait(POLICY, 1, idempotent=True, status=429, retry_after=30, rand=always(1)) == 30


def test_no_retry_after_backs_off_exponentially_with_jitter():
    waits = [next_wait(POLICY, n, idempotent=True, status=503, rand=always(1)) for n in (1, 2, 3)]
    assert waits == [0.5, 1.0, 2.0]
    low = [next_wait(POLICY, n, idempotent=True, status=503, rand=always(0)) for n in (1, 2, 3)]
    assert low == [0.25, 0.5, 1.0]  # equal jitter: never less than half the step
    assert backoff(RetryPolicy(backoff_base=1, backoff_max=4), 10, always(1)) == 4


def test_attempts_are_bounded():
    assert next_wait(POLICY, 3, idempotent=True, status=503) is not None
    assert next_wait(POLICY, 4, idempotent=True, status=503) is None
    assert next_wait(POLICY, 4, idempotent=True, status=429, retry_after=1) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_retried_only_when_idempotent(status):
    assert next_wait(POLICY, 1, idempotent=True, status=status) is not None
    assert next_wait(POLICY, 1, idempotent=False, status=status) is None


def test_503_with_retry_after_is_throttling_and_retried_even_for_post():
    assert next_wait(POLICY, 1, idempotent=False, status=503, retry_after=1, rand=always(0)) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 413, 422])
def test_client_errors_are_never_retried(status):
    assert next_wait(POLICY, 1, idempotent=True, status=status) is None


def test_transport_errors():
    # Never connected: safe for anything. Timed out or reset mid-request: idempotent only.
    assert next_wait(POLICY, 1, idempotent=False, sent=False) is not None
    assert next_wait(POLICY, 1, idempotent=True, sent=True) is not None
    assert next_wait(POLICY, 1, idempotent=False, sent=True) is None


# -- operations --------------------------------------------------------------------------------------

def test_operations_declared_once_with_spec_style_templates():
    keys = [(op.method, op.path) for op in ops.OPERATIONS]
    assert len(keys) == len(set(keys))
    assert all(op.path.startswith("/rest/api/3/") for op in ops.OPERATIONS if not op.outside_spec)
    assert not ops.CREATE_LINK.idempotent and not ops.REGISTER_WEBHOOKS.idempotent
    assert ops.SEARCH_JQL.idempotent and ops.BULK_FETCH.idempotent and ops.CHECK_PERMISSIONS.idempotent


def test_operation_expand_and_match():
    assert ops.GET_ISSUE.expand({"issueIdOrKey": "ABC-1"}) == "/rest/api/3/issue/ABC-1"
    # An id can never add a query to the path (nor a segment: see test_security_paths).
    assert ops.GET_ISSUE.expand({"issueIdOrKey": "x?y#z"}) == "/rest/api/3/issue/x%3Fy%23z"
    with pytest.raises(ValueError):
        ops.GET_ISSUE.expand({})
    assert ops.find_operation("get", "/rest/api/3/issue/10001") is ops.GET_ISSUE
    assert ops.find_operation("PUT", "/rest/api/3/issue/ABC-1") is ops.EDIT_ISSUE
    assert ops.find_operation("POST", "/rest/api/3/issue/bulkfetch") is ops.BULK_FETCH
    with pytest.raises(UndeclaredOperation):
        ops.find_operation("DELETE", "/rest/api/3/issue/ABC-1")
    with pytest.raises(UndeclaredOperation):
        ops.find_operation("GET", "/rest/api/3/issue/ABC-1/comment")


# -- query encoding and signing ----------------------------------------------------------------------

def test_query_pairs_normalises_values():
    assert query_pairs({"a": True, "b": False, "c": None, "d": 5, "e": ["x", "y"], "f": []}) == [
        ("a", "true"), ("b", "false"), ("d", "5"), ("e", "x"), ("e", "y")]
    assert query_pairs([("x", 1), ("x", 2)]) == [("x", "1"), ("x", "2")]


def test_encoded_query_decodes_to_the_hashed_pairs():
    pairs = [("jql", 'project = ABC AND status = "In Progress"'), ("maxResults", "50")]
    encoded = encode_query(pairs)
    assert encoded == "jql=project%20%3D%20ABC%20AND%20status%20%3D%20%22In%20Progress%22&maxResults=50"
    assert "+" not in encoded
    assert parse_qsl(encoded, keep_blank_values=True) == pairs
    # §3.5 vector: what we sign for this request is what Jira computes from what it receives.
    assert query_hash("GET", "/rest/api/3/search", parse_qsl(encoded)) == \
        "2dce18e57551434aa195525b0596ef9deffc446560b00932c0c323ffc4183e25"
    assert parse_qsl(encode_query([("q", "a+b,c~*")])) == [("q", "a+b,c~*")]


def test_app_jwt_claims():
    auth = AppJwt("boxsync", SECRET, clock=always(1_700_000_000))
    token = auth.token("GET", "/rest/api/3/issue/ABC-1", [("expand", "changelog,renderedFields")])
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {
        "iss": "boxsync", "iat": 1_700_000_000, "exp": 1_700_000_180,
        "qsh": "21d48f87ede77f9456f63201c559d9966444828a6e8fa6d0d3aa01f5c6256429",
    }
    assert SECRET not in repr(auth)


def test_basic_auth_header_and_repr():
    auth = BasicAuth("admin@example.com", "api-token-123")
    assert "api-token-123" not in repr(auth)


async def test_basic_auth_value():
    header = await BasicAuth("a@b.c", "t0k").authorization("GET", "/", [])
    assert header == "Basic YUBiLmM6dDBr"


def test_user_token_repr_hides_secret():
    http = httpx.AsyncClient()
    auth = UserToken(OAuthTokens(http, "http://oauth.test"), "ck", "https://x.atlassian.net", "oc", "acc", SECRET)
    assert SECRET not in repr(auth)


# -- URL resolution ----------------------------------------------------------------------------------

@pytest.fixture
async def sent():
    """A real pool whose event hook records every request actually sent."""
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    http = new_http_client()
    http.event_hooks["request"] = [record]
    yield http, requests
    await http.aclose()


@pytest.mark.parametrize("url", [
    "https://evil.example/rest/api/3/myself",
    "http://site.atlassian.net/rest/api/3/myself",  # same host, other scheme
    "https://site.atlassian.net:8443/rest/api/3/myself",  # other port
    "//evil.example/rest/api/3/myself",  # scheme-relative
    "https://site.atlassian.net@evil.example/rest/api/3/myself",
    "https://user:pw@site.atlassian.net/rest/api/3/myself",
    "javascript:alert(1)",
])
async def test_foreign_urls_refused_before_sending(sent, url):
    http, requests = sent
    client = JiraClient(http, "https://site.atlassian.net", AppJwt("boxsync", SECRET))
    with pytest.raises(UnsafeUrlError) as info:
        await client.request("GET", url)
    assert requests == []
    assert SECRET not in str(info.value)


async def test_undeclared_operation_refused_before_sending(sent):
    http, requests = sent
    client = JiraClient(http, "https://site.atlassian.net", AppJwt("boxsync", SECRET))
    with pytest.raises(UndeclaredOperation):
        await client.request("DELETE", "/rest/api/3/issue/ABC-1")
    with pytest.raises(UndeclaredOperation):
        await client.call(ops.Operation("x", "GET", "/rest/api/3/anything", True))
    assert requests == []


def test_resolve_same_origin_and_context_path():
    client = JiraClient(httpx.AsyncClient(), "https://Site.example.com:443/jira/", AppJwt("k", SECRET))
    assert client.base_url == "https://Site.example.com:443/jira"
    assert client.resolve("https://site.example.com/jira/rest/api/3/issue/A-1?fields=a%20b") == (
        "/rest/api/3/issue/A-1", [("fields", "a b")])
    assert client.resolve("rest/api/3/myself") == ("/rest/api/3/myself", [])
    with pytest.raises(UnsafeUrlError):
        client.resolve("https://site.example.com/other/rest/api/3/myself")
    with pytest.raises(ValueError):
        JiraClient(httpx.AsyncClient(), "ftp://site.example.com", AppJwt("k", SECRET))


# -- errors ------------------------------------------------------------------------------------------

def test_parse_jira_error_shapes():
    assert parse_error_body(b'{"errorMessages":["Issue does not exist"],"errors":{}}') == (
        ["Issue does not exist"], {})
    assert parse_error_body('{"errorMessages":[],"errors":{"summary":"required"}}') == (
        [], {"summary": "required"})
    assert parse_error_body(b'{"error":"invalid_grant","error_description":"expired"}') == (
        ["invalid_grant: expired"], {})
    assert parse_error_body(b"<html><body>Bad   gateway</body></html>") == (
        ["<html><body>Bad gateway</body></html>"], {})
    assert parse_error_body(b"") == ([], {})
    assert parse_error_body(b"[1,2]") == ([], {})


def test_error_classes_and_messages():
    assert error_class(400) is JiraBadRequest and error_class(404) is JiraNotFound
    assert error_class(502) is JiraUnavailable and error_class(413) is JiraError
    err = JiraBadRequest(400, ["The value 'X' does not exist for the field 'project'."], {"jql": "bad"},
                         method="POST", url="https://a:b@x.atlassian.net/rest/api/3/search/jql?jwt=SECRET")
    text = str(err)
    assert "SECRET" not in text and "a:b" not in text
    assert text == ("POST https://x.atlassian.net/rest/api/3/search/jql: HTTP 400: The value 'X' does not "
                    "exist for the field 'project'.; jql: bad")
    limited = JiraRateLimited(429, [], retry_after=60, reason="jira-quota-tenant-based", method="GET", url="u")
    assert "jira-quota-tenant-based" in str(limited) and "60" in str(limited)
    assert safe_url("https://h/p?q=1#f") == "https://h/p"


# -- OAuth pieces ------------------------------------------------------------------------------------

def test_assertion_claims():
    token = assertion(shared_secret=SECRET, oauth_client_id="oc-1", account_id="557058:abc",
                      base_url="https://x.atlassian.net/", oauth_url="https://oauth.example/", now=1_000)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="https://oauth.example",
                        options={"verify_exp": False, "verify_iat": False})
    assert claims == {
        "iss": "urn:atlassian:connect:clientid:oc-1",
        "sub": "urn:atlassian:connect:useraccountid:557058:abc",
        "tnt": "https://x.atlassian.net", "aud": "https://oauth.example", "iat": 1_000, "exp": 1_060,
    }


def test_token_cache_key_and_lifetime():
    assert normalize_scopes(["write", "READ", "read", " "]) == ("READ", "WRITE")
    assert cache_lifetime(900, 60) == 840
    assert cache_lifetime(60, 60) == 30  # short-lived tokens are still reused for half their life

