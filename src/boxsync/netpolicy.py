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


# Jira Cloud sites live under these domains; a `*` is one DNS label. This is the production default
# of atlassian-connect-express's install host whitelist (connect-protocol.md §2.5, [ACE]
# lib/internal/config.js `whitelist()`: "*.atlassian.net" for Jira and Confluence). Staging sites
# (*.jira-dev.com) are not production tenants, and no other production domain is documented there.
ATLASSIAN_SITE_DOMAINS = ("*.atlassian.net",)


def check_atlassian_site(url: str) -> None:
    """Raise URLRefused unless `url` is an https Jira Cloud site (`https://<name>.atlassian.net`).

    An install names the base URL that every later call carries the tenant's secret to; a captured
    or forged-looking install must not be able to point it at a host of the sender's choosing."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or parts.port not in (None, 443):
        raise URLRefused("a Jira Cloud site URL is https on the default port")
    for pattern in ATLASSIAN_SITE_DOMAINS:
        label, _, domain = pattern.partition(".")
        name, _, rest = host.partition(".")
        if label == "*" and rest == domain and name and all(c.isalnum() or c == "-" for c in name):
            return
    raise URLRefused(f"{host!r} is not an Atlassian site domain ({', '.join(ATLASSIAN_SITE_DOMAINS)})")
