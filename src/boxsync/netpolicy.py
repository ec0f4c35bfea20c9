"""Which Jira base URLs BoxSync will talk to, and which addresses its connections may reach.

A tenant's base URL comes from an install payload and every later call goes there with secrets
attached, so production refuses anything that could point back into our own network. The URL is
checked at install (`check_site_url`), and every connection the process opens is checked again
where it is made (`AddressPolicy`, enforced by the HTTP pool in jira.transport), since a name
can resolve elsewhere later and not every client starts from an installed tenant (Basic auth).
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class URLRefused(ValueError):
    """The URL is not one BoxSync may call; the message says why."""


class AddressRefused(URLRefused):
    """A connection to a host that is, or resolves to, a forbidden address; raised before connecting."""


def _is_loopback_name(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through mapping, 6to4, NAT64 or the old compatible form."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Globally reachable unicast: not private, loopback, link-local, shared (100.64.0.0/10),
    reserved, documentation or multicast, also when wrapped in an IPv6 form such as ::ffff:10.0.0.1."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public(embedded)
    return ip.is_global and not ip.is_multicast


def _is_loopback(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and not ip.is_loopback:  # ::1 is not ::0.0.0.1 here
        ip = _embedded_ipv4(ip) or ip
    return ip.is_loopback


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses outgoing connections may reach: public ones, plus loopback in development
    (where jirasim and the sandbox run on 127.0.0.1)."""
    allow_loopback: bool = False

    def permits(self, ip: IPAddress) -> bool:
        return is_public(ip) or (self.allow_loopback and _is_loopback(ip))


PRODUCTION = AddressPolicy()
DEVELOPMENT = AddressPolicy(allow_loopback=True)


async def resolve_checked(host: str, port: int, policy: AddressPolicy) -> list[str]:
    """The addresses to connect to for `host`, each one permitted by `policy`, in resolver order.

    Refuses when any address is forbidden, not only the first: a name answering with a public and
    a private address must not get a second chance on another connection attempt. Raises OSError
    (socket.gaierror) when the name does not resolve.
    """
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        found = [(literal, host)]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [(ipaddress.ip_address(str(info[4][0]).split("%")[0]), str(info[4][0])) for info in infos]
    for ip, _ in found:
        if not policy.permits(ip):
            what = f"{host}" if literal is not None else f"host {host!r} resolves to {ip}, which"
            raise AddressRefused(f"{what} is not a public address: refusing to connect")
    return list(dict.fromkeys(address for _, address in found))


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
        await resolve_checked(host, parts.port or 443, PRODUCTION)
    except OSError as exc:
        raise URLRefused(f"host {host!r} does not resolve") from exc
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
