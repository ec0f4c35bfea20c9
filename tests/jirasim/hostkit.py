"""Test kit for the Connect host side of jirasim: a simulated site and a small Connect app peer,
both served over real HTTP on loopback.

The peer is a test app, not BoxSync: it serves a descriptor, verifies every request the site sends
the way a careful Connect app does (RS256 install tokens against the site's key URL, HS256 tokens
with the shared secret and a computed qsh, HMAC signatures), records what it saw and answers with
statuses a test scripts. Its verifier is written here from connect-protocol.md, independently of
`jirasim.host.signing`, so the two check each other.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.jirasim.openapi import validate_response  # noqa: F401 - re-exported for the host tests
from tests.support.servers import serve

ADMIN_EMAIL = "admin@example.com"
ADMIN_TOKEN = "jirasim-admin-token"
ADMIN_ACCOUNT_ID = "557058:00000000-0000-4000-8000-000000000001"


# --- an independent qsh (connect-protocol.md §3.4) ------------------------------------------------


def _enc(value: str) -> str:
    return quote(value, safe="~")


def canonical(method: str, path: str, query: str, base_path: str = "") -> str:
    base_path = base_path.rstrip("/")
    if base_path and path.startswith(base_path):
        path = path[len(base_path):]
    path = (path or "/").replace("&", "%26")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    grouped: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "jwt":
            grouped.setdefault(name, []).append(value)
    q = "&".join(f"{_enc(n)}={','.join(_enc(v) for v in sorted(grouped[n]))}" for n in sorted(grouped, key=_enc))
    return f"{method.upper()}&{path}&{q}"


def qsh(method: str, url: str, base_url: str = "") -> str:
    parts = urlsplit(url)
    base_path = urlsplit(base_url).path if base_url else ""
    return hashlib.sha256(canonical(method, unquote(parts.path), parts.query, base_path).encode()).hexdigest()


# --- the Connect app peer -----------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    verdict: str  # "ok" or why verification failed
    claims: dict | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def url(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


@dataclass
class Peer:
    """A Connect app for tests. `statuses[path]` scripts answers (popped per request, default 200)."""
    key: str = "com.example.hostpeer"
    keys_url: str = ""  # the site's install-keys base URL, set by the test before installing
    modules: dict = field(default_factory=dict)
    scopes: list = field(default_factory=lambda: ["READ", "WRITE", "ACT_AS_USER"])
    hmac_secret: str | None = None
    base_url: str = ""
    shared_secret: str | None = None
    install_payload: dict | None = None
    seen: list[Seen] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def descriptor(self) -> dict:
        return {
            "key": self.key, "name": "Host peer", "description": "jirasim test peer",
            "baseUrl": self.base_url, "authentication": {"type": "jwt"},
            "apiMigrations": {"gdpr": True, "context-qsh": True, "signed-install": True},
            "scopes": self.scopes,
            "lifecycle": {"installed": "/installed", "uninstalled": "/uninstalled",
                          "enabled": "/enabled", "disabled": "/disabled"},
            "modules": self.modules,
        }

    @property
    def descriptor_url(self) -> str:
        return self.base_url + "/atlassian-connect.json"

    def seen_at(self, path_prefix: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path.startswith(path_prefix)]

    def _status(self, path: str, default: int) -> int:
        with self.lock:
            queue = self.statuses.get(path)
            return queue.pop(0) if queue else default

    def _record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    # verification -------------------------------------------------------------------------------

    async def verify_install(self, request: Request, body: bytes) -> tuple[str, dict | None]:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("JWT "):
            return "missing JWT", None
        token = auth[4:]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            return f"bad header: {exc}", None
        if header.get("alg") != "RS256":
            return f"alg {header.get('alg')} is not RS256", None
        kid = header.get("kid")
        if not kid:
            return "no kid", None
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{self.keys_url}/{quote(kid, safe='')}")
        if response.status_code != 200:
            return f"key {kid}: HTTP {response.status_code}", None
        try:
            claims = jwt.decode(token, response.text, algorithms=["RS256"], audience=self.base_url,
                                options={"require": ["iss", "iat", "exp", "qsh", "aud"]})
        except jwt.PyJWTError as exc:
            return f"{type(exc).__name__}: {exc}", None
        payload = json.loads(body)
        if claims["iss"] != payload.get("clientKey"):
            return "iss != clientKey", claims
        if claims["qsh"] != qsh(request.method, str(request.url), self.base_url):
            return "qsh mismatch", claims
        return "ok", claims

    def verify_hs256(self, token: str | None, method: str, url: str, *, context: bool = False) -> tuple[str, dict | None]:
        if not token:
            return "missing JWT", None
        if self.shared_secret is None:
            return "not installed", None
        try:
            claims = jwt.decode(token, self.shared_secret, algorithms=["HS256"],
                                options={"require": ["iss", "iat", "exp", "qsh"], "verify_aud": False})
        except jwt.PyJWTError as exc:
            return f"{type(exc).__name__}: {exc}", None
        if claims["iss"] != (self.install_payload or {}).get("clientKey"):
            return "iss != clientKey", claims
        expected = "context-qsh" if context else qsh(method, url, self.base_url)
        if claims["qsh"] != expected:
            return "qsh mismatch", claims
        return "ok", claims

    # the ASGI app -------------------------------------------------------------------------------

    def app(self, base_url: str) -> Starlette:
        self.base_url = base_url

        async def descriptor(request: Request) -> Response:
            return JSONResponse(self.descriptor())

        async def lifecycle(request: Request) -> Response:
            body = await request.body()
            event = request.path_params["event"]
            if event in ("installed", "uninstalled"):
                verdict, claims = await self.verify_install(request, body)
                if verdict == "ok" and event == "installed":
                    payload = json.loads(body)
                    self.install_payload, self.shared_secret = payload, payload["sharedSecret"]
            else:
                auth = request.headers.get("authorization", "")
                verdict, claims = self.verify_hs256(auth[4:] if auth.startswith("JWT ") else None,
                                                    request.method, str(request.url))
            self._record(Seen(request.method, request.url.path, request.url.query, dict(request.headers),
                              body, verdict, claims))
            if verdict != "ok":
                return JSONResponse({"error": verdict}, status_code=401)
            return Response(status_code=self._status(request.url.path, 204))

        async def hook(request: Request) -> Response:
            body = await request.body()
            auth = request.headers.get("authorization", "")
            if auth.startswith("JWT "):
                verdict, claims = self.verify_hs256(auth[4:], request.method, str(request.url))
            elif self.hmac_secret is not None:
                expected = "sha256=" + hmac.new(self.hmac_secret.encode(), body, hashlib.sha256).hexdigest()
                verdict = "ok" if hmac.compare_digest(expected, request.headers.get("x-hub-signature", "")) else "bad hmac"
                claims = None
            else:
                verdict, claims = "unsigned", None
            self._record(Seen(request.method, request.url.path, request.url.query, dict(request.headers),
                              body, verdict, claims))
            return Response(status_code=self._status(request.url.path, 200))

        async def page(request: Request) -> Response:
            verdict, claims = self.verify_hs256(request.query_params.get("jwt"), request.method, str(request.url))
            self._record(Seen(request.method, request.url.path, request.url.query, dict(request.headers),
                              b"", verdict, claims))
            xdm_e = request.query_params.get("xdm_e", "")
            return HTMLResponse(f'<html><head><script src="{xdm_e}/_jirasim/all.js"></script></head>'
                                f"<body>{verdict}</body></html>", status_code=200 if verdict == "ok" else 401)

        return Starlette(routes=[
            Route("/atlassian-connect.json", descriptor),
            Route("/{event:str}", lifecycle, methods=["POST"]),
            Route("/hooks/{rest:path}", hook, methods=["POST"]),
            Route("/ui/{rest:path}", page, methods=["GET"]),
        ])


# --- running things ------------------------------------------------------------------------------


@dataclass
class Env:
    sim: Any
    site: Any
    site_url: str
    peer: Peer
    peer_url: str
    client: httpx.Client

    @property
    def keys_url(self) -> str:
        return self.site_url + "/_jirasim/install-keys"

    def install(self, **extra: Any) -> httpx.Response:
        return self.client.post(f"{self.site_url}/_jirasim/apps/install",
                                json={"descriptorUrl": self.peer.descriptor_url, **extra})

    def flush(self, timeout_ms: int = 10000) -> dict:
        response = self.client.post(f"{self.site_url}/_jirasim/webhooks/flush", json={"timeout_ms": timeout_ms})
        return response.json()

    def deliveries(self, **filters: str) -> list[dict]:
        return self.client.get(f"{self.site_url}/_jirasim/webhooks/deliveries", params=filters).json()["deliveries"]

    def settings(self, **values: Any) -> dict:
        return self.client.put(f"{self.site_url}/_jirasim/webhooks/settings", json=values).json()

    def faults(self, **values: Any) -> httpx.Response:
        return self.client.post(f"{self.site_url}/_jirasim/webhooks/faults", json=values)

    # Lifecycle callbacks other than `installed` are asynchronous (jirasim.host.connect).

    def lifecycle_flush(self, timeout_ms: int = 10000) -> dict:
        response = self.client.post(f"{self.site_url}/_jirasim/lifecycle/flush", json={"timeout_ms": timeout_ms})
        return response.json()

    def lifecycle_faults(self, **values: Any) -> httpx.Response:
        return self.client.post(f"{self.site_url}/_jirasim/lifecycle/faults", json=values)

    def lifecycle_release(self, order: str = "fifo") -> httpx.Response:
        return self.client.post(f"{self.site_url}/_jirasim/lifecycle/release", json={"order": order})

    def lifecycle_deliveries(self, **filters: str) -> list[dict]:
        return self.client.get(f"{self.site_url}/_jirasim/lifecycle/deliveries", params=filters).json()["deliveries"]

    def lifecycle_clock(self, offset_ms: int) -> dict:
        return self.client.post(f"{self.site_url}/_jirasim/lifecycle/clock", json={"offset_ms": offset_ms}).json()

    def app_action(self, action: str) -> httpx.Response:
        return self.client.post(f"{self.site_url}/_jirasim/apps/{self.peer.key}/{action}")

    def admin_auth(self) -> tuple[str, str]:
        return (ADMIN_EMAIL, ADMIN_TOKEN)

    def app_jwt(self, method: str, path_and_query: str) -> str:
        """A JWT as the peer app would sign a call to the site (iss = app key, qsh over the request)."""
        now = int(time.time())
        claims = {"iss": self.peer.key, "iat": now, "exp": now + 180,
                  "qsh": qsh(method, path_and_query)}
        return "JWT " + jwt.encode(claims, self.peer.shared_secret, algorithm="HS256")

    def as_app(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A JWT-authenticated call from the peer app to the site."""
        params = kwargs.pop("params", None)
        request = self.client.build_request(method, self.site_url + path, params=params, **kwargs)
        target = request.url.raw_path.decode()
        request.headers["Authorization"] = self.app_jwt(method, target)
        return self.client.send(request)

    # People working in Jira, through the core's control API: mutations run on the site's own event
    # loop (a Site is not thread-safe) and emit the same change events a UI edit would.

    def _control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, f"{self.site_url}/_jirasim{path}", **kwargs)
        assert response.status_code < 300, response.text
        return response

    def create_issue(self, project: str, summary: str, **extra: Any) -> "Ref":
        body = self._control("POST", "/issues", json={"project": project, "summary": summary, **extra}).json()
        return Ref(int(body["id"]), body["key"])

    def edit_issue(self, issue: "Ref", fields: dict, user: str | None = None) -> dict:
        return self._control("PUT", f"/issues/{issue.key}", json={"fields": fields, "user": user}).json()

    def delete_issue(self, issue: "Ref") -> None:
        self._control("DELETE", f"/issues/{issue.key}")

    def add_link(self, link_type: str, source: "Ref", destination: "Ref") -> "Ref":
        body = self._control("POST", "/links", json={"type": link_type, "source": source.key,
                                                     "destination": destination.key}).json()
        return Ref(int(body["id"]), "")

    def remove_link(self, link_id: int) -> None:
        self._control("DELETE", f"/links/{link_id}")


@dataclass(frozen=True)
class Ref:
    """An issue (or link) as the control API answered: numeric id and key."""
    id: int
    key: str


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


@contextlib.contextmanager
def running(peer: Peer | None = None, *, site_name: str = "acme", projects: list[str] | None = None,
            issues: int = 0) -> Iterator[Env]:
    """A Simulator with one site, and the peer, each on its own loopback server."""
    from jirasim.simulator import Simulator

    sim = Simulator()
    peer = peer or Peer()
    holder: dict[str, Any] = {}

    def site_factory(base_url: str) -> Any:
        app = sim.add_site(site_name, base_url, projects=projects or ["DEMO"], issues=issues)
        holder["site"] = sim.site(site_name)
        return app

    with serve(site_factory) as site_url, serve(peer.app, lifespan="off") as peer_url:
        peer.keys_url = site_url + "/_jirasim/install-keys"
        with httpx.Client(timeout=30) as client:
            yield Env(sim, holder["site"], site_url, peer, peer_url, client)
