"""Reading Jira's error answers: every shape Atlassian services use, bodies that are not JSON or not
UTF-8, and Retry-After in both of its forms. Pure functions: no server."""
from __future__ import annotations

import email.utils
import time

import pytest

from boxsync.jira.errors import JiraRateLimited, parse_error_body
from boxsync.jira.retry import parse_retry_after


@pytest.mark.parametrize("body, expected", [
    (b'{"message": "Rate limit exceeded"}', (["Rate limit exceeded"], {})),
    (b'{"errorMessage": "Site temporarily unavailable"}', (["Site temporarily unavailable"], {})),
    (b'{"error": "invalid_grant"}', (["invalid_grant"], {})),
    (b'{"error": "invalid_grant", "error_description": ""}', (["invalid_grant"], {})),
    (b'{"errorMessages": ["a", ""], "errors": {"summary": "required"}, "message": "m"}',
     (["a", "m"], {"summary": "required"})),
    (b'{"errorMessages": [], "errors": ["not", "a", "dict"]}', ([], {})),
    (b'{"message": 42}', ([], {})),
])
def test_error_shapes(body, expected):
    assert parse_error_body(body) == expected


def test_a_body_that_is_not_utf8_is_read_with_replacement_characters():
    messages, errors = parse_error_body(b"Bad gateway \xff\xfe from proxy")
    assert messages == ["Bad gateway \ufffd\ufffd from proxy"] and errors == {}


def test_non_json_text_is_cut_at_200_characters():
    assert parse_error_body("x" * 200) == (["x" * 200], {})
    assert parse_error_body("x" * 201) == (["x" * 200 + "…"], {})


def test_rate_limited_message_names_reason_and_wait_and_keeps_where():
    error = JiraRateLimited(429, ["Too many requests"], retry_after=12.5, reason="jira-burst-based",
                            method="GET", url="https://x.atlassian.net/rest/api/3/myself?jwt=secret")
    assert str(error) == ("GET https://x.atlassian.net/rest/api/3/myself: HTTP 429: Too many requests "
                          "(reason jira-burst-based, retry after 12.5 s)")
    assert str(JiraRateLimited(429, [], method="GET", url="https://x/y")) == "GET https://x/y: HTTP 429"


def test_retry_after_as_an_http_date_uses_the_clock_when_no_time_is_given():
    header = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= parse_retry_after(header) <= 61


def test_retry_after_dates_without_a_time_zone_are_unusable():
    assert parse_retry_after("Wed, 21 Oct 2037 07:28:00") is None
    assert parse_retry_after("inf") is None and parse_retry_after(" 3 ") == 3.0
