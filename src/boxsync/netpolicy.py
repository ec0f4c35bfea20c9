"""Which Jira base URLs BoxSync will talk to.

A tenant's base URL comes from an install payload and every later call goes there with secrets
attached, so production refuses anything that could point back into our own network.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class URLRefused(ValueError):
    """The URL is not one BoxSync may call; the message says why."""


def _is_loopback_name(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _private(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%")[0])
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified)


async def check_site_url(url: str, *, production: bool) -> str:
    """Return the normalised URL (no trailing slash) or raise URLRefused."""
    parts = urlsplit(url.strip())
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise URLRefused(f"{url!r} is not an absolute http(s) URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise URLRefused("a site URL must not carry credentials, a query or a fragment")
    if not production:
        if parts.scheme == "http" and not _is_loopback_name(host):
            raise URLRefused("plain http is only allowed on loopback addresses in development")
        return url.strip().rstrip("/")
    if parts.scheme != "https":
        raise URLRefused("production only talks to https Jira sites")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise URLRefused(f"host {host!r} does not resolve") from exc
    for info in infos:
        if _private(info[4][0]):
            raise URLRefused(f"host {host!r} resolves to a private, loopback or link-local address")
    return url.strip().rstrip("/")
