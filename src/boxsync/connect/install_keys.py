"""Public keys that Atlassian signs install/uninstall callbacks with, fetched by `kid`.

Keys are immutable per kid ("a rotated key always gets a new kid"), so a fetched key is cached
for the life of the process. The kid comes from an unverified token header, so it is treated as
hostile: one URL path segment under BOXSYNC_INSTALL_KEYS_URL, no redirects, short timeout. So is
whoever sends it, since anyone can post a token naming made-up kids and each costs a key fetch:

* Fetches are single-flight per kid: concurrent installs naming one kid share one fetch, and
  fetches of different kids never wait for each other, so a slow answer about a made-up kid
  delays no genuine install. A known kid is served from the cache without waiting at all.
* A kid the key server does not know is remembered as unknown for `miss_seconds` (bounded).
* New kids are fetched at most `per_source` times per `window` for one source, and `total` times
  overall; beyond that the install is refused at once, without asking the key server. The source
  is the client address as uvicorn reports it: the peer, or the X-Forwarded-For client when the
  peer is a trusted proxy (FORWARDED_ALLOW_IPS). Behind a proxy that is not trusted, everyone
  shares the proxy's budget; `total` bounds the key server's load either way. IPv6 sources count
  per /64, the block a single host is usually given.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections import OrderedDict
from typing import Callable

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from boxsync.netpolicy import URLRefused

log = logging.getLogger(__name__)

_KID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}$")


class KeyUnavailable(Exception):
    """No usable key for this kid (unknown, malformed, or the key server did not answer)."""


class TooManyKeyLookups(KeyUnavailable):
    """The source (or everyone together) asked for too many new kids lately; nothing was fetched."""


class _UnknownKid(KeyUnavailable):
    """The key server answered, and has no usable key for this kid: worth remembering."""


class InstallKeys:
    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        *,
        timeout: float = 5.0,
        max_keys: int = 64,
        miss_seconds: float = 60.0,
        max_misses: int = 1024,
        window: float = 60.0,
        per_source: int = 20,
        total: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._timeout = timeout
        self._max = max_keys
        self._miss_seconds = miss_seconds
        self._max_misses = max_misses
        self._window = window
        self._per_source = per_source
        self._total = total
        self._clock = clock  # injectable so that tests can pass the time without sleeping
        self._cache: OrderedDict[str, RSAPublicKey] = OrderedDict()
        self._misses: OrderedDict[str, float] = OrderedDict()  # kid -> remembered until
        self._pending: dict[str, asyncio.Task[RSAPublicKey]] = {}
        self._window_start = clock()
        self._spent: dict[str, int] = {}  # fetches started in this window, per source
        self._spent_total = 0
        self.fetches = 0  # key server requests made (observability, tests)

    def url_for(self, kid: str) -> str:
        if not _KID.match(kid) or ".." in kid:
            raise KeyUnavailable("malformed kid")
        return f"{self.base_url}/{kid}"

    async def get(self, kid: str, source: str | None = None) -> RSAPublicKey:
        """The key for `kid`; `source` is the requesting client's address (for the fetch budget)."""
        url = self.url_for(kid)
        key = self._cache.get(kid)
        if key is not None:
            self._cache.move_to_end(kid)
            return key
        until = self._misses.get(kid)
        if until is not None:
            if until > self._clock():
                raise KeyUnavailable("unknown kid (the key server did not know it moments ago)")
            del self._misses[kid]
        task = self._pending.get(kid)
        if task is None:
            self._spend(source)
            task = asyncio.ensure_future(self._fetch(kid, url))
            self._pending[kid] = task
            task.add_done_callback(lambda done: self._settled(kid, done))
        # shield: one waiter giving up must not cancel the fetch the others are waiting for.
        return await asyncio.shield(task)

    def _spend(self, source: str | None) -> None:
        now = self._clock()
        if now - self._window_start >= self._window:
            self._window_start, self._spent, self._spent_total = now, {}, 0
        who = _source_key(source)
        if self._spent_total >= self._total:
            log.warning("install key lookups: the budget of %d new kids per %g s is spent", self._total, self._window)
            raise TooManyKeyLookups("too many install key lookups right now")
        if self._spent.get(who, 0) >= self._per_source:
            log.warning("install key lookups: %s spent its budget of %d new kids per %g s",
                        who, self._per_source, self._window)
            raise TooManyKeyLookups("too many install key lookups from this address")
        self._spent[who] = self._spent.get(who, 0) + 1
        self._spent_total += 1

    def _settled(self, kid: str, task: asyncio.Task[RSAPublicKey]) -> None:
        if self._pending.get(kid) is task:
            del self._pending[kid]
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure nobody awaits any more is not reported

    async def _fetch(self, kid: str, url: str) -> RSAPublicKey:
        """Fetch and remember the outcome: the key, or that the key server does not know the kid."""
        try:
            key = await self._download(url)
        except _UnknownKid:
            self._misses[kid] = self._clock() + self._miss_seconds
            while len(self._misses) > self._max_misses:
                self._misses.popitem(last=False)
            raise
        self._cache[kid] = key
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return key

    async def _download(self, url: str) -> RSAPublicKey:
        self.fetches += 1
        try:
            resp = await self._http.get(url, timeout=self._timeout, follow_redirects=False)
        except URLRefused as exc:  # the address policy refused the key server's address
            log.warning("install key server refused by the address policy: %s", exc)
            raise KeyUnavailable("install key server address refused") from exc
        except httpx.HTTPError as exc:
            log.warning("install key server did not answer: %s (%s)", url, type(exc).__name__)
            raise KeyUnavailable("install key server did not answer") from exc
        if resp.status_code >= 500:
            log.warning("install key server answered %s for %s", resp.status_code, url)
            raise KeyUnavailable(f"install key server failed (it answered {resp.status_code})")
        if resp.status_code != 200:
            log.warning("install key server answered %s for %s", resp.status_code, url)
            raise _UnknownKid(f"no install key for this kid (key server answered {resp.status_code})")
        try:
            key = load_pem_public_key(resp.content)
        except ValueError as exc:
            raise _UnknownKid("install key is not a PEM public key") from exc
        if not isinstance(key, RSAPublicKey) or key.key_size < 2048:
            raise _UnknownKid("install key is not an RSA key of at least 2048 bits")
        return key


def _source_key(source: str | None) -> str:
    if not source:
        return "unknown"
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return source
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
