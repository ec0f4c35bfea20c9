"""Verifying the JWTs Jira sends us, and minting the short-lived ones our own pages use.

Three kinds of incoming token, each accepted only where it belongs:
* install tokens (RS256, Atlassian's key by kid) on `installed`/`uninstalled`;
* request tokens (HS256, tenant secret, qsh computed from the request) on descriptor URLs:
  iframes, webhooks, `enabled`/`disabled`;
* context tokens (HS256, qsh = "context-qsh") on JSON routes called by our pages: either Jira's
  own from `AP.context.getToken()` (iss = clientKey) or the session token we render into the page
  (iss = our app key, aud = clientKey).

A request token is split and decoded once (`parse`): its unverified claims name the tenant, and
`verify_hs256` then checks the signature over the same bytes and the claims PyJWT would check.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import re
import time
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from jwt.utils import base64url_encode
from jwt.warnings import InsecureKeyLengthWarning
from starlette.requests import Request

from boxsync.connect.install_keys import InstallKeys, KeyUnavailable, TooManyKeyLookups
from boxsync.connect.qsh import CONTEXT_QSH, query_hash, relative_path

log = logging.getLogger(__name__)

QshKind = Literal["computed", "context"]
SESSION_TOKEN_SECONDS = 600


class AuthError(Exception):
    """The request is not verified. `reason` goes to the log; `public` to the caller."""

    def __init__(self, status: int, reason: str, public: str | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.public = public or reason


def extract_token(request: Request, *, header_only: bool = False) -> str:
    """The request's JWT: from the Authorization header, or (unless `header_only`) the `jwt` query
    parameter, where Jira puts it on iframe URLs.

    Tokens that are not bound to a URL (install tokens, context and session tokens) are
    `header_only`: in a URL they would be written to access logs, proxies and browser history,
    and could be replayed from there on any route that takes them.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    from_header = value.strip() if scheme.upper() == "JWT" else ""
    in_query = "jwt" in request.query_params
    if header_only:
        if not from_header and in_query:
            raise AuthError(401, "token sent in the jwt query parameter on a header-only route",
                            "This request must send its token in the Authorization header "
                            "(Authorization: JWT <token>), not in the URL.")
        from_query = ""
    else:
        from_query = request.query_params.get("jwt", "")
    if from_header and from_query and from_header != from_query:
        raise AuthError(401, "two different tokens in header and query")
    token = from_header or from_query
    if not token:
        where = "the Authorization header" + ("" if header_only else " or the jwt query parameter")
        raise AuthError(401, f"no JWT in {where}", "Authentication required: this request carries no Jira token.")
    return token


def request_qsh(request: Request, base_path: str) -> str:
    # scope["path"] is what request.url.path decodes to for every path a route of ours matches,
    # without building the whole URL on each request.
    path = relative_path(request.scope["path"], base_path)
    return query_hash(request.method, path, request.query_params.multi_items())


@dataclass(frozen=True)
class Token:
    """A JWT split and decoded once. Header and claims are UNVERIFIED: fit only to choose the key,
    until `verify_hs256` has checked the signature over `signing_input` and the claims."""
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


_HS256 = jwt.get_algorithm_by_name("HS256")
# What jwt.encode(claims, secret, algorithm="HS256") puts first, sorted keys and all.
_HS256_HEADER = base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))  # json.dumps(separators=…) builds one per call


@functools.lru_cache(maxsize=1024)
def _hs256_mac(secret: str) -> hmac.HMAC:
    """PyJWT's checks on an HMAC key (not a PEM/SSH public key, not empty; warn if short) and the
    keyed HMAC state, once per secret rather than on every request: they cost more than the MAC."""
    key = _HS256.prepare_key(secret)
    if message := _HS256.check_key_length(key):
        warnings.warn(message, InsecureKeyLengthWarning, stacklevel=3)
    return hmac.new(key, digestmod=hashlib.sha256)


def _hs256(message: bytes, secret: str) -> bytes:
    mac = _hs256_mac(secret).copy()
    mac.update(message)
    return mac.digest()


_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


def _segment(text: str) -> bytes:
    """One base64url segment as RFC 7515 writes it: its alphabet, no padding, no stray bits (so one
    token has one spelling). PyJWT checks the same one character at a time, which cost more than
    all the rest of verifying a request."""
    if not _SEGMENT.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != text.encode():
        raise ValueError("not canonical base64url")
    return raw


def _json_object(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def parse(token: str) -> Token:
    """Split and decode the token once; the verifier checks the signature over the same bytes."""
    try:
        head, body, signature = token.split(".")
        header, claims = _json_object(_segment(head)), _json_object(_segment(body))
        raw_signature = _segment(signature)
    except (ValueError, RecursionError) as exc:  # too few/many segments, bad base64, bad JSON
        raise AuthError(401, f"malformed token ({exc})", "Malformed token.") from exc
    # Header extensions change how a token is read (RFC 7515 §4.1.11, RFC 7797); Connect uses none.
    if "crit" in header or "b64" in header or not isinstance(header.get("kid", ""), str):
        raise AuthError(401, "malformed token (unsupported header)", "Malformed token.")
    return Token(header, claims, f"{head}.{body}".encode(), raw_signature)


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, unverified: only to choose the key. Never trust anything read here."""
    parsed = parse(token)
    return parsed.header, parsed.claims


def _check_qsh(claims: dict[str, Any], expected: str) -> None:
    if claims.get("qsh") != expected:
        kind = "context" if claims.get("qsh") == CONTEXT_QSH else "request"
        raise AuthError(401, f"qsh mismatch ({kind} token on a route expecting "
                             f"{'a context token' if expected == CONTEXT_QSH else 'this exact request'})",
                        "Token does not match this request.")


def _seconds(claims: dict[str, Any], name: str) -> int:
    try:
        return int(claims[name])
    except (ValueError, TypeError, OverflowError):
        raise jwt.DecodeError(f"{name} claim must be an integer") from None


def _check_claims(claims: dict[str, Any], leeway: int) -> None:
    """PyJWT's checks for `jwt.decode(..., options={"require": [iss, iat, exp, qsh],
    "verify_aud": False}, leeway=...)`, applied to claims we already decoded."""
    for name in ("iss", "iat", "exp", "qsh"):
        if claims.get(name) is None:
            raise jwt.MissingRequiredClaimError(name)
    now = time.time()
    if _seconds(claims, "iat") > now + leeway:
        raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")
    if "nbf" in claims and _seconds(claims, "nbf") > now + leeway:
        raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
    if _seconds(claims, "exp") <= now - leeway:
        raise jwt.ExpiredSignatureError("Signature has expired")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise jwt.exceptions.InvalidSubjectError("Subject must be a string")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise jwt.exceptions.InvalidJTIError("JWT ID must be a string")


def verify_hs256(token: Token, secret: str, leeway: int) -> dict[str, Any]:
    """Check the HS256 signature over the bytes `parse` split, then the time and required claims."""
    try:
        if token.header.get("alg") != "HS256":
            raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
        if not hmac.compare_digest(token.signature, _hs256(token.signing_input, secret)):
            raise jwt.InvalidSignatureError("Signature verification failed")
        _check_claims(token.claims, leeway)
    except jwt.ExpiredSignatureError as exc:
        raise AuthError(401, "token expired", "Token expired: reload the page.") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(401, f"token rejected ({type(exc).__name__}: {exc})", "Invalid token.") from exc
    return token.claims


@dataclass(frozen=True)
class TokenChoice:
    """Which tenant a symmetric token claims to come from, and whether it is our own session token."""
    client_key: str
    session: bool


def choose_tenant(header: dict[str, Any], claims: dict[str, Any], app_key: str, kind: QshKind) -> TokenChoice:
    if header.get("alg") != "HS256":
        raise AuthError(401, f"algorithm {header.get('alg')!r} refused (HS256 only)", "Invalid token.")
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise AuthError(401, "token has no iss", "Invalid token.")
    if iss == app_key:
        # Our own session token: only valid where context tokens are, and names the tenant in aud.
        aud = claims.get("aud")
        aud = aud[0] if isinstance(aud, list) and aud else aud
        if kind != "context" or not isinstance(aud, str):
            raise AuthError(401, "app session token used outside a context route", "Invalid token.")
        return TokenChoice(aud, True)
    return TokenChoice(iss, False)


def verify_claims(token: Token, secret: str, request: Request, *, kind: QshKind, session: bool,
                  client_key: str, base_path: str, leeway: int) -> dict[str, Any]:
    claims = verify_hs256(token, secret, leeway)
    if session:
        aud = claims.get("aud")
        if (aud[0] if isinstance(aud, list) and aud else aud) != client_key:
            raise AuthError(401, "session token for another tenant", "Invalid token.")
    _check_qsh(claims, CONTEXT_QSH if kind == "context" else request_qsh(request, base_path))
    return claims


def session_token(app_key: str, client_key: str, secret: str, account_id: str | None,
                  seconds: int = SESSION_TOKEN_SECONDS) -> str:
    """A short-lived token our own pages send back to our JSON routes (context-qsh routes only)."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": app_key, "aud": client_key, "iat": now, "exp": now + seconds,
                              "qsh": CONTEXT_QSH}
    if account_id:
        claims["sub"] = account_id
    # The bytes jwt.encode would produce, without re-checking the tenant's key on every page.
    signing_input = _HS256_HEADER + b"." + base64url_encode(_COMPACT_JSON.encode(claims).encode())
    return (signing_input + b"." + base64url_encode(_hs256(signing_input, secret))).decode()


async def verify_install(request: Request, keys: InstallKeys, *, audience: str, base_path: str,
                         leeway: int) -> dict[str, Any]:
    """Verify a signed-install lifecycle token (RS256 by Atlassian). Returns the claims; the
    caller must still check `iss` against the body's clientKey."""
    token = extract_token(request, header_only=True)
    header, _ = peek(token)
    if header.get("alg") != "RS256":
        raise AuthError(401, f"install token algorithm {header.get('alg')!r} refused (RS256 only)",
                        "Install requests must be signed by Atlassian (signed-install).")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError(401, "install token has no kid", "Install token has no key id.")
    try:
        key = await keys.get(kid, source=request.client.host if request.client else None)
    except TooManyKeyLookups as exc:
        raise AuthError(429, f"install key lookup refused: {exc}",
                        "Too many install requests with unknown signing keys: try again in a minute.") from exc
    except KeyUnavailable as exc:
        raise AuthError(401, f"install key unavailable: {exc}", "Install token key could not be verified.") from exc
    base = audience.rstrip("/")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=[base, base + "/"],
            options={"require": ["iss", "iat", "exp", "qsh", "aud"]},
            leeway=leeway,
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError(401, "install token expired", "Install token expired.") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthError(401, "install token aud is not our base URL", "Install token is for another app URL.") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(401, f"install token rejected ({type(exc).__name__}: {exc})", "Invalid install token.") from exc
    _check_qsh(claims, request_qsh(request, base_path))
    return claims
