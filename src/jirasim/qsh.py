"""The Connect query-string hash (qsh): SHA-256 over a canonical form of method, path and query.

Written from the algorithm (connect-protocol.md §3.4), independently of BoxSync's copy, so the two
check each other. `canonical_request` is exposed for tests and for error messages.
"""
from __future__ import annotations

import hashlib
from typing import Iterable
from urllib.parse import parse_qsl, quote, urlsplit


def _encode(s: str) -> str:
    # RFC 3986 unreserved characters only; space → %20, never "+".
    return quote(s, safe="~")


def canonical_uri(path: str, base_path: str = "") -> str:
    """`path` is the *decoded* request path. `base_path` (an app's baseUrl path, or Jira's context
    path — empty on Cloud) is stripped first."""
    base_path = base_path.rstrip("/")
    if base_path and path.startswith(base_path):
        path = path[len(base_path):]
    path = path.replace("&", "%26")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """`params`: decoded (name, value) pairs, repeated names allowed. `jwt` is ignored."""
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        if name == "jwt":
            continue
        grouped.setdefault(name, []).append(value)
    out = []
    for name in sorted(grouped, key=_encode):
        values = ",".join(_encode(v) for v in sorted(grouped[name]))
        out.append(f"{_encode(name)}={values}")
    return "&".join(out)


def parse_query(query: str) -> list[tuple[str, str]]:
    """A raw query string → decoded pairs; `+` is a space and valueless params become ""."""
    return parse_qsl(query, keep_blank_values=True)


def canonical_request(method: str, path: str, query: str | Iterable[tuple[str, str]] = "", base_path: str = "") -> str:
    pairs = parse_query(query) if isinstance(query, str) else list(query)
    return f"{method.upper()}&{canonical_uri(path, base_path)}&{canonical_query(pairs)}"


def qsh(method: str, path: str, query: str | Iterable[tuple[str, str]] = "", base_path: str = "") -> str:
    return hashlib.sha256(canonical_request(method, path, query, base_path).encode("utf-8")).hexdigest()


def qsh_for_url(method: str, url: str, base_url: str = "") -> str:
    """Convenience for clients: hash a full URL (its path is decoded here)."""
    from urllib.parse import unquote

    parts = urlsplit(url)
    base_path = urlsplit(base_url).path if base_url else ""
    return qsh(method, unquote(parts.path), parts.query, base_path)
