"""Secrets at rest: AES-256-GCM with the tenant (or owner) bound in as associated data.

Binding the owner means a ciphertext copied from one tenant's row into another's will not decrypt,
so a database-level mix-up cannot hand tenant A's shared secret to tenant B.
"""
from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class SecretError(Exception):
    """A stored secret could not be decrypted (wrong key, tampered, or moved between owners)."""


def encrypt(key: bytes, plaintext: str, owner: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), owner.encode())
    return f"{_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(key: bytes, token: str, owner: str) -> str:
    """The plaintext, or SecretError for anything that is not a sealed secret of this owner under
    this key: another format, damaged text, truncation, a wrong key, a moved row. The message
    never repeats the stored text (a plaintext secret stored by mistake must not reach a log)."""
    version, _, body = token.partition(":")
    if version != _VERSION:
        raise SecretError(f"stored secret is not in the {_VERSION} format")
    try:
        raw = base64.urlsafe_b64decode(body)
    except ValueError as exc:  # binascii.Error, non-ASCII text
        raise SecretError("stored secret is not valid base64") from exc
    if len(raw) < 12 + 16:  # nonce + GCM tag
        raise SecretError("stored secret is truncated")
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], owner.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SecretError("stored secret does not decrypt with this BOXSYNC_SECRET_KEY") from exc
