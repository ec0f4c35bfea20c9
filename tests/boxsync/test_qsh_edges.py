"""qsh canonicalisation edges beyond the published vectors (test_qsh.py): encoding, ordering, paths."""
from __future__ import annotations

import hashlib

from boxsync.connect.qsh import CONTEXT_QSH, canonical_query, canonical_request, canonical_uri, query_hash, relative_path


def test_context_qsh_is_the_literal_jira_uses():
    assert CONTEXT_QSH == "context-qsh"


def test_unreserved_characters_stay_and_everything_else_is_percent_encoded():
    assert canonical_query([("k", "a-b_c.d~e")]) == "k=a-b_c.d~e"
    assert canonical_query([("k", "a b+c/d*e@f")]) == "k=a%20b%2Bc%2Fd%2Ae%40f"
    assert canonical_query([("é", "ü")]) == "%C3%A9=%C3%BC"


def test_names_are_sorted_by_their_encoded_form():
    # Raw order would put "z" before "é"; the encoded "%C3%A9" sorts first.
    assert canonical_query([("z", "1"), ("é", "2"), ("a", "3")]) == "%C3%A9=2&a=3&z=1"


def test_repeated_values_are_sorted_and_joined_with_commas_and_jwt_is_left_out():
    assert canonical_query([("f", "b"), ("jwt", "x.y.z"), ("f", "A"), ("f", "a")]) == "f=A,a,b"
    assert canonical_query([("jwt", "only")]) == ""


def test_canonical_uri():
    assert canonical_uri("") == "/"
    assert canonical_uri("/") == "/"
    assert canonical_uri("path") == "/path"
    assert canonical_uri("/a/b/") == "/a/b"
    assert canonical_uri("/a&b") == "/a%26b"


def test_query_hash_is_the_sha256_of_the_canonical_request():
    query = [("b", "2"), ("a", "1 1")]
    assert canonical_request("post", "/x/", query) == "POST&/x&a=1%201&b=2"
    assert query_hash("post", "/x/", query) == hashlib.sha256(b"POST&/x&a=1%201&b=2").hexdigest()


def test_relative_path():
    assert relative_path("/jira-app/panel", "/jira-app/") == "/panel"
    assert relative_path("/jira-app/", "/jira-app") == "/"
    assert relative_path("/panel", "") == "/panel"
    assert relative_path("/panel", "/") == "/panel"
    assert relative_path("/other/panel", "/jira-app") == "/other/panel"
