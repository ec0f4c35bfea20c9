"""Request tokens are parsed once (issue #6) and judged exactly as PyJWT's `jwt.decode` judged them.

The verifier splits and decodes a token once, chooses the tenant from the unverified claims, then
checks the signature over the same bytes. These tests hold it to PyJWT's verdict on a corpus of
good, malformed and forged tokens (differential: PyJWT is the reference, not a stand-in).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from boxsync.connect.jwt import AuthError, parse, session_token, verify_hs256

SECRET = "k" * 64
LEEWAY = 30
HS256 = {"alg": "HS256", "typ": "JWT"}
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signed(header: dict | bytes, claims: dict | bytes, secret: str = SECRET) -> str:
    head = b64(header if isinstance(header, bytes) else json.dumps(header).encode())
    body = b64(claims if isinstance(claims, bytes) else json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def corpus() -> dict[str, str]:
    """Tokens by name, minted now (some are only a few seconds away from a verdict change)."""
    now = int(time.time())
    claims = {"iss": "site-a", "iat": now, "exp": now + 180, "qsh": "q" * 64, "sub": "557058:alice"}
    good = jwt.encode(claims, SECRET, algorithm="HS256")
    head, body, sig = good.split(".")
    # The last character of a 43-character signature carries 2 bits and 4 unused ones: flip one of
    # those, and the signature decodes to the same bytes under another spelling.
    loose_sig = sig[:-1] + ALPHABET[ALPHABET.index(sig[-1]) ^ 1]
    return {
        "good": good,
        "good, other claims order": signed(HS256, dict(reversed(list(claims.items())))),
        "exp within the leeway": signed(HS256, {**claims, "exp": now - 10}),
        "exp as a numeric string": signed(HS256, {**claims, "exp": str(now + 100)}),
        "wrong secret": jwt.encode(claims, "w" * 64, algorithm="HS256"),
        "expired": signed(HS256, {**claims, "iat": now - 600, "exp": now - 300}),
        "issued in the future": signed(HS256, {**claims, "iat": now + 600, "exp": now + 900}),
        "not before the future": signed(HS256, {**claims, "nbf": now + 600}),
        "exp not a number": signed(HS256, {**claims, "exp": "soon"}),
        "iat not a number": signed(HS256, {**claims, "iat": [1]}),
        "sub not a string": signed(HS256, {**claims, "sub": 7}),
        "jti not a string": signed(HS256, {**claims, "jti": 7}),
        **{f"no {name}": signed(HS256, {k: v for k, v in claims.items() if k != name})
           for name in ("iss", "iat", "exp", "qsh")},
        "null exp": signed(HS256, {**claims, "exp": None}),
        "alg none": signed({"alg": "none"}, claims).rsplit(".", 1)[0] + ".",
        "alg HS512": jwt.encode(claims, SECRET, algorithm="HS512"),
        "no alg": signed({"typ": "JWT"}, claims),
        "tampered claims": f"{head}.{b64(json.dumps({**claims, 'sub': 'mallory'}).encode())}.{sig}",
        "non-canonical signature": f"{head}.{body}.{loose_sig}",
        "standard base64 alphabet": f"{head}.{body}.+/{sig[2:]}",
        "stray character": f"{head}.{body}!.{sig}",
        "two segments": f"{head}.{body}",
        "four segments": f"{good}.{sig}",
        "empty": "",
        "header not JSON": signed(b"{nope", claims),
        "header a list": signed(b'["HS256"]', claims),
        "claims not JSON": signed(HS256, b"\xff\xfe{"),
        "claims a list": signed(HS256, b"[1, 2]"),
        "deeply nested claims": signed(HS256, b"[" * 100000 + b"]" * 100000),
        "kid not a string": signed({**HS256, "kid": 5}, claims),
        "b64 false": signed({**HS256, "b64": False, "crit": ["b64"]}, claims),
        "unknown crit": signed({**HS256, "crit": ["exp"], "exp": 1}, claims),
        # Refused here, accepted by PyJWT: padding and the RFC 7797 b64 header, neither of which
        # Jira's compact tokens use (a token has one spelling here).
        "stricter: padded signature": f"{head}.{body}.{sig}=",
        "stricter: b64 true": signed({**HS256, "b64": True, "crit": ["b64"]}, claims),
    }


ACCEPTED = {"good", "good, other claims order", "exp within the leeway", "exp as a numeric string"}
NAMES = sorted(corpus())


def pyjwt_verdict(token: str) -> dict | None:
    try:
        return jwt.decode(token, SECRET, algorithms=["HS256"], leeway=LEEWAY,
                          options={"require": ["iss", "iat", "exp", "qsh"], "verify_aud": False})
    except jwt.PyJWTError:
        return None


def our_verdict(token: str) -> dict | None:
    try:
        return verify_hs256(parse(token), SECRET, LEEWAY)
    except AuthError as exc:
        assert exc.status == 401 and SECRET not in exc.reason and (not token or token not in exc.reason)
        return None


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("stricter")])
def test_same_verdict_as_pyjwt(name):
    token = corpus()[name]
    assert our_verdict(token) == pyjwt_verdict(token)


def test_the_corpus_has_both_verdicts():
    tokens = corpus()
    assert {name for name in NAMES if pyjwt_verdict(tokens[name]) is not None} == ACCEPTED | {
        name for name in NAMES if name.startswith("stricter")}
    assert {name for name in NAMES if our_verdict(tokens[name]) is not None} == ACCEPTED


def test_parse_reads_the_token_once_for_choosing_and_verifying():
    good = corpus()["good"]
    token = parse(good)
    assert token.header == {"alg": "HS256", "typ": "JWT"} and token.claims["iss"] == "site-a"
    assert token.signing_input == good.rsplit(".", 1)[0].encode()
    assert verify_hs256(token, SECRET, LEEWAY) is token.claims  # the same dict: not decoded again


def test_session_tokens_are_what_pyjwt_would_mint():
    minted = session_token("boxsync", "site-a", SECRET, "557058:alice", seconds=600)
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["aud"] == "site-a" and claims["qsh"] == "context-qsh" and claims["exp"] - claims["iat"] == 600
    assert minted == jwt.encode(claims, SECRET, algorithm="HS256")


def test_short_secrets_still_warn_like_pyjwt():
    with pytest.raises(jwt.warnings.InsecureKeyLengthWarning):  # the suite turns it into an error
        verify_hs256(parse(corpus()["good"]), "short", LEEWAY)
