"""Install keys: the RS256 key pairs a site signs `installed`/`uninstalled` lifecycle JWTs with.

Real Jira publishes public keys at `https://connect-install-keys.atlassian.com/<kid>`; every simulated
site serves the whole Simulator's registry at `GET /_jirasim/install-keys/{kid}` so an app configured
with `<any site base>/_jirasim/install-keys` resolves keys of all sites, as it would with the CDN.
RSA generation costs tens of milliseconds, and test suites build many simulators, so private keys
come from a process-wide pool: the n-th site of every Simulator reuses pool key n under a fresh kid.
"""
from __future__ import annotations


import threading
import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from jirasim.host.state import attached
from jirasim.model import Site, Sites

KEYS_PATH = "/_jirasim/install-keys"


@dataclass(frozen=True)
class InstallKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    public_pem: str


@dataclass
class _Registry:
    by_kid: dict[str, InstallKey] = field(default_factory=dict)
    assigned: int = 0


_pool: list[tuple[rsa.RSAPrivateKey, str]] = []
_lock = threading.Lock()


def _pool_key(index: int) -> tuple[rsa.RSAPrivateKey, str]:
    with _lock:
        while len(_pool) <= index:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode("ascii")
            _pool.append((private, pem))
        return _pool[index]


def _registry(sim: Sites) -> _Registry:
    return attached(sim, "install_keys", _Registry)


def site_key(sim: Sites, site: Site) -> InstallKey:
    """The site's install key, created (and registered with the Simulator) on first use."""
    def create() -> InstallKey:
        registry = _registry(sim)
        with _lock:
            index = registry.assigned
            registry.assigned += 1
        private, pem = _pool_key(index)
        key = InstallKey(kid=f"jirasim-{uuid.uuid4()}", private_key=private, public_pem=pem)
        registry.by_kid[key.kid] = key
        return key

    return attached(site, "install_key", create)


def public_pem(sim: Sites, kid: str) -> str | None:
    registry = _registry(sim)
    if kid not in registry.by_kid:
        # A site that never started has no key yet; make sure every site of the Sites has one.
        for site in sim.sites.values():
            site_key(sim, site)
    key = registry.by_kid.get(kid)
    return key.public_pem if key else None


def keys_url(site: Site) -> str:
    """What an app should use as its install-keys base URL (BoxSync: BOXSYNC_INSTALL_KEYS_URL)."""
    return site.base_url + KEYS_PATH


def routes(sim: Sites, site: Site) -> list[Route]:
    async def get_key(request: Request) -> Response:
        pem = public_pem(sim, request.path_params["kid"])
        if pem is None:
            return PlainTextResponse("Not Found", status_code=404)
        return PlainTextResponse(pem, media_type="application/x-pem-file")

    return [Route(KEYS_PATH + "/{kid:path}", get_key, methods=["GET"])]
