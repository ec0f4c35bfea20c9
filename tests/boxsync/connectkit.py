"""Test peers for the Connect protocol: an Atlassian-style install-key server on loopback, and
token builders that sign like Jira does. They stand in for Atlassian, not for any BoxSync code."""
from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from boxsync.app import create_app
from boxsync.config import Settings
from jirasim.qsh import qsh_for_url
from tests.support.servers import serve

SECRET_KEY = b"k" * 32
APP_KEY = "boxsync-test"


@dataclass
class KeyServer:
    url: str
    keys: dict[str, Any] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def new_key(self) -> tuple[str, Any]:
        kid = f"kid-{uuid.uuid4().hex[:10]}"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return kid, key


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@contextlib.contextmanager
def key_server() -> Iterator[KeyServer]:
    holder: dict[str, KeyServer] = {}

    async def get_key(request):
        kid = request.path_params["kid"]
        holder["ks"].hits.append(kid)
        key = holder["ks"].keys.get(kid)
        if key is None:
            return PlainTextResponse("Not Found", status_code=404)
        return Response(public_pem(key), media_type="application/x-pem-file")

    def factory(url: str):
        holder["ks"] = KeyServer(url=url + "/keys")
        return Starlette(routes=[Route("/keys/{kid:path}", get_key)])

    with serve(factory, lifespan="off"):
        yield holder["ks"]


def settings_for(base_url: str, database_url: str, keys_url: str, **extra) -> Settings:
    return Settings(base_url=base_url, database_url=database_url, app_key=APP_KEY, secret_key=SECRET_KEY,
                    install_keys_url=keys_url, oauth_url="http://127.0.0.1:9/unused", env="development",
                    **extra)


@contextlib.contextmanager
def boxsync_server(database_url: str, keys_url: str, **extra) -> Iterator[str]:
    with serve(lambda url: create_app(settings_for(url, database_url, keys_url, **extra))) as url:
        yield url


def qsh_of(method: str, url: str) -> str:
    """Jira's side of the hash, from the simulator's own implementation (jirasim.qsh), so a bug in
    boxsync.connect.qsh cannot hide itself (the published vectors pin both)."""
    return qsh_for_url(method, url)


def install_token(key, kid: str | None, *, iss: str, aud: str, qsh: str, lifetime: int = 180,
                  iat: int | None = None, alg: str = "RS256", extra_headers: dict | None = None) -> str:
    now = int(time.time()) if iat is None else iat
    claims = {"iss": iss, "aud": aud, "qsh": qsh, "iat": now, "exp": now + lifetime, "sub": "557058:installer",
              "context": {}}
    headers = {"kid": kid} if kid else {}
    headers.update(extra_headers or {})
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def unsigned_token(claims: dict, header: dict | None = None) -> str:
    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{b64(header or {'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def request_token(secret: str, *, iss: str, qsh: str, sub: str | None = "557058:alice",
                  lifetime: int = 180, iat: int | None = None, **extra) -> str:
    now = int(time.time()) if iat is None else iat
    claims = {"iss": iss, "qsh": qsh, "iat": now, "exp": now + lifetime, **extra}
    if sub:
        claims["sub"] = sub
    return jwt.encode(claims, secret, algorithm="HS256")


def install_body(client_key: str, secret: str, site_url: str, **extra) -> dict:
    return {
        "key": APP_KEY, "clientKey": client_key, "sharedSecret": secret, "baseUrl": site_url,
        "displayUrl": site_url, "productType": "jira", "description": "Test site",
        "eventType": "installed", "serverVersion": "100000", "pluginsVersion": "1001.0.0",
        "oauthClientId": f"oauth-{client_key}", **extra,
    }
