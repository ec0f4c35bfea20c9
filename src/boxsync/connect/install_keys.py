"""Public keys that Atlassian signs install/uninstall callbacks with, fetched by `kid`.

Keys are immutable per kid ("a rotated key always gets a new kid"), so a fetched key is cached
for the life of the process. The kid comes from an unverified token header, so it is treated as
hostile: one URL path segment under BOXSYNC_INSTALL_KEYS_URL, no redirects, short timeout.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

log = logging.getLogger(__name__)

_KID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}$")


class KeyUnavailable(Exception):
    """No usable key for this kid (unknown, malformed, or the key server did not answer)."""


class InstallKeys:
    def __init__(self, base_url: str, http: httpx.AsyncClient, *, timeout: float = 5.0, max_keys: int = 64):
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._timeout = timeout
        self._max = max_keys
        self._cache: OrderedDict[str, RSAPublicKey] = OrderedDict()
        self._lock = asyncio.Lock()

    def url_for(self, kid: str) -> str:
        if not _KID.match(kid) or ".." in kid:
            raise KeyUnavailable("malformed kid")
        return f"{self.base_url}/{kid}"

    async def get(self, kid: str) -> RSAPublicKey:
        url = self.url_for(kid)
        if kid in self._cache:
            self._cache.move_to_end(kid)
            return self._cache[kid]
        async with self._lock:  # one fetch per kid even when installs arrive together
            if kid in self._cache:
                return self._cache[kid]
            key = await self._fetch(url)
            self._cache[kid] = key
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
            return key

    async def _fetch(self, url: str) -> RSAPublicKey:
        try:
            resp = await self._http.get(url, timeout=self._timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            log.warning("install key server did not answer: %s (%s)", url, type(exc).__name__)
            raise KeyUnavailable("install key server did not answer") from exc
        if resp.status_code != 200:
            log.warning("install key server answered %s for %s", resp.status_code, url)
            raise KeyUnavailable(f"no install key for this kid (key server answered {resp.status_code})")
        try:
            key = load_pem_public_key(resp.content)
        except ValueError as exc:
            raise KeyUnavailable("install key is not a PEM public key") from exc
        if not isinstance(key, RSAPublicKey) or key.key_size < 2048:
            raise KeyUnavailable("install key is not an RSA key of at least 2048 bits")
        return key
