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
NOW = int(time.time())
CLAIMS = {"iss": "site-a", "iat": NOW, "exp": NOW + 180, "qsh": "q" * 64, "sub": "557058:alice"}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signed(header: dict | bytes, claims: dict | bytes, secret: str = SECRET) -> str:
    head = b64(header if isinstance(header, bytes) else json.dumps(header).encode())
    body = b64(claims if isinstance(claims, bytes) else json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


HS256 = {"alg": "HS256", "typ": "JWT"}
good = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
head, body, sig = good.split(".")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The last character of a 43-character signature carries 2 bits and 4 unused ones: flip one of
# those, and the signature decodes to the same bytes under another spelling.
loose_sig = sig[:-1] + ALPHABET[ALPHABET.index(sig[-1]) ^ 1]

CORPUS = {
    "good": good,
    "good, other claims order": signed(HS256, {**dict(reversed(list(CLAIMS.items())))}),
    "exp within the leeway": signed(HS256, {**CLAIMS, "exp": NOW - 10}),
    "exp as a numeric string": signed(HS256, {**CLAIMS, "exp": str(NOW + 100)}),
    "wrong secret": jwt.encode(CLAIMS, "w" * 64, algorithm="HS256"),
    "expired": signed(HS256, {**CLAIMS, "iat": NOW - 600, "exp": NOW - 300}),
    "issued in the future": signed(HS256, {**CLAIMS, "iat": NOW + 600, "exp": NOW + 900}),
    "not before the future": signed(HS256, {**CLAIMS, "nbf": NOW + 600}),
    "exp not a number": signed(HS256, {**CLAIMS, "exp": "soon"}),
    "iat not a number": signed(HS256, {**CLAIMS, "iat": [1]}),
    "sub not a string": signed(HS256, {**CLAIMS, "sub": 7}),
    "jti not a string": signed(HS256, {**CLAIMS, "jti": 7}),
    **{f"no {name}": signed(HS256, {k: v for k, v in CLAIMS.items() if k != name})
       for name in ("iss", "iat", "exp", "qsh")},
    "null exp": signed(HS256, {**CLAIMS, "exp": None}),
    "alg none": signed({"alg": "none"}, CLAIMS).rsplit(".", 1)[0] + ".",
    "alg HS512": jwt.encode(CLAIMS, SECRET, algorithm="HS512"),
    "no alg": signed({"typ": "JWT"}, CLAIMS),
    "tampered claims": f"{head}.{b64(json.dumps({**CLAIMS, 'sub': 'mallory'}).encode())}.{sig}",
    "non-canonical signature": f"{head}.{body}.{loose_sig}",
    "standard base64 alphabet": f"{head}.{body}.+/{sig[2:]}",
    "stray character": f"{head}.{body}!.{sig}",
    "two segments": f"{head}.{body}",
    "four segments": f"{good}.{sig}",
    "empty": "",
    "header not JSON": signed(b"{nope", CLAIMS),
    "header a list": signed(b'["HS256"]', CLAIMS),
    "claims not JSON": signed(HS256, b"\xff\xfe{"),
    "claims a list": signed(HS256, b"[1, 2]"),
    "deeply nested claims": signed(HS256, b"[" * 100000 + b"]" * 100000),
    "kid not a string": signed({**HS256, "kid": 5}, CLAIMS),
    "b64 false": signed({**HS256, "b64": False, "crit": ["b64"]}, CLAIMS),
    "unknown crit": signed({**HS256, "crit": ["exp"], "exp": 1}, CLAIMS),
}
# Refused here, accepted by PyJWT: padding and the RFC 7797 b64 header, neither of which RFC 7515
# compact tokens from Jira use (a token has one spelling here).
STRICTER = {
    "padded signature": f"{head}.{body}.{sig}=",
    "b64 true": signed({**HS256, "b64": True, "crit": ["b64"]}, CLAIMS),
}


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


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_same_verdict_as_pyjwt(name):
    token = CORPUS[name]
    assert our_verdict(token) == pyjwt_verdict(token)


def test_the_corpus_has_both_verdicts():
    accepted = {name for name, token in CORPUS.items() if pyjwt_verdict(token) is not None}
    assert accepted == {"good", "good, other claims order", "exp within the leeway", "exp as a numeric string"}


@pytest.mark.parametrize("name", sorted(STRICTER))
def test_stricter_than_pyjwt_on_spellings_jira_never_uses(name):
    assert pyjwt_verdict(STRICTER[name]) is not None
    assert our_verdict(STRICTER[name]) is None


def test_parse_reads_the_token_once_for_choosing_and_verifying():
    token = parse(good)
    assert token.header == {"alg": "HS256", "typ": "JWT"} and token.claims == CLAIMS
    assert token.signing_input == f"{head}.{body}".encode()
    assert verify_hs256(token, SECRET, LEEWAY) is token.claims  # the same dict: not decoded again


def test_session_tokens_are_what_pyjwt_would_mint():
    minted = session_token("boxsync", "site-a", SECRET, "557058:alice", seconds=600)
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["aud"] == "site-a" and claims["qsh"] == "context-qsh" and claims["exp"] - claims["iat"] == 600
    assert minted == jwt.encode(claims, SECRET, algorithm="HS256")


def test_short_secrets_still_warn_like_pyjwt():
    with pytest.raises(jwt.warnings.InsecureKeyLengthWarning):  # the suite turns it into an error
        verify_hs256(parse(jwt.encode(CLAIMS, "k" * 64, algorithm="HS256")), "short", LEEWAY)
