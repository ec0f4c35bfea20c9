"""The Connect query-string hash (qsh): a SHA-256 over a canonical form of the request.

It binds a JWT to one method, path and query so that a token captured for one URL cannot be
replayed against another. Algorithm: connect-protocol.md §3.4; vectors in tests/boxsync/test_qsh.py.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable
from urllib.parse import quote

CONTEXT_QSH = "context-qsh"


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")


def _encode(value: str) -> str:
    # RFC 3986 unreserved characters stay; everything else is %XX of its UTF-8 bytes (space -> %20).
    # Most names and values are unreserved already: a regex says so faster than quote() copies them.
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="-._~")


def canonical_uri(path: str) -> str:
    path = path or "/"
    path = path.replace("&", "%26")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    grouped: dict[str, list[str]] = {}
    for name, value in query:
        if name == "jwt":
            continue
        grouped.setdefault(name, []).append(value)
    parts = []
    for name in sorted(grouped, key=_encode):
        values = ",".join(_encode(v) for v in sorted(grouped[name]))
        parts.append(f"{_encode(name)}={values}")
    return "&".join(parts)


def canonical_request(method: str, path: str, query: Iterable[tuple[str, str]]) -> str:
    """`path` is decoded and already relative to the base URL's path; `query` is decoded pairs."""
    return f"{method.upper()}&{canonical_uri(path)}&{canonical_query(query)}"


def query_hash(method: str, path: str, query: Iterable[tuple[str, str]]) -> str:
    return hashlib.sha256(canonical_request(method, path, query).encode()).hexdigest()


def relative_path(path: str, base_path: str) -> str:
    """Strip the base URL's path (e.g. '/jira-app') so the hash survives proxies and prefixes."""
    base_path = base_path.rstrip("/")
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        return path[len(base_path):] or "/"
    return path
