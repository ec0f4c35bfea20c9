"""Secrets at rest (boxsync.crypto): AES-256-GCM, a fresh nonce per encryption, the owner bound in.

Through the public functions only, so that any implementation keeping the promises passes. A fixed
nonce is the classic AES-GCM failure: two ciphertexts under one (key, nonce) leak the XOR of their
plaintexts and let anyone forge tags, so "encrypting twice gives different ciphertexts" is a
security property, not a detail.
"""
from __future__ import annotations

import base64

import pytest

from boxsync import crypto
from boxsync.crypto import SecretError

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
SECRET = "shared-secret-" + "x" * 50


def _raw(token: str) -> bytes:
    version, _, body = token.partition(":")
    assert version == "v1"
    return base64.urlsafe_b64decode(body)


def test_encrypting_the_same_secret_twice_gives_different_ciphertexts_that_both_decrypt():
    first = crypto.encrypt(KEY, SECRET, "client-a")
    second = crypto.encrypt(KEY, SECRET, "client-a")
    assert first != second
    assert crypto.decrypt(KEY, first, "client-a") == SECRET
    assert crypto.decrypt(KEY, second, "client-a") == SECRET


def test_nonces_never_repeat():
    # 12-byte nonce in front of the sealed text: 50 encryptions, 50 different nonces and bodies.
    tokens = [crypto.encrypt(KEY, SECRET, "client-a") for _ in range(50)]
    nonces = {_raw(t)[:12] for t in tokens}
    bodies = {_raw(t)[12:] for t in tokens}
    assert len(nonces) == len(bodies) == 50


def test_the_ciphertext_does_not_contain_the_secret_and_has_the_expected_size():
    token = crypto.encrypt(KEY, SECRET, "client-a")
    assert token.startswith("v1:") and SECRET not in token
    raw = _raw(token)
    assert len(raw) == 12 + len(SECRET.encode()) + 16  # nonce + ciphertext + GCM tag
    assert SECRET.encode() not in raw


@pytest.mark.parametrize("secret", ["", "é ü ✓ 🙂", "a" * 4000])
def test_any_text_round_trips(secret):
    assert crypto.decrypt(KEY, crypto.encrypt(KEY, secret, "owner"), "owner") == secret


def test_a_ciphertext_moved_to_another_owner_does_not_decrypt():
    token = crypto.encrypt(KEY, SECRET, "client-a")
    with pytest.raises(SecretError):
        crypto.decrypt(KEY, token, "client-b")


def test_another_key_does_not_decrypt_and_says_which_setting_to_check():
    token = crypto.encrypt(KEY, SECRET, "client-a")
    with pytest.raises(SecretError) as info:
        crypto.decrypt(OTHER_KEY, token, "client-a")
    assert "BOXSYNC_SECRET_KEY" in str(info.value) and SECRET not in str(info.value)


@pytest.mark.parametrize("position", [0, 11, 12, -17, -1])
def test_tampering_with_any_part_is_detected(position):
    # Nonce (0..11), ciphertext (12..), tag (last 16): flipping one bit anywhere must fail.
    raw = bytearray(_raw(crypto.encrypt(KEY, SECRET, "client-a")))
    raw[position] ^= 0x01
    token = "v1:" + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SecretError):
        crypto.decrypt(KEY, token, "client-a")


@pytest.mark.parametrize("token", ["v2:" + base64.urlsafe_b64encode(b"\0" * 40).decode(),
                                   "plain-text-secret", ""])
def test_unknown_formats_are_refused(token):
    with pytest.raises(SecretError) as info:
        crypto.decrypt(KEY, token, "client-a")
    assert "not in the v1 format" in str(info.value)


def test_a_value_without_a_format_prefix_is_not_echoed_in_the_error():
    with pytest.raises(SecretError) as info:
        crypto.decrypt(KEY, SECRET, "client-a")
    assert SECRET not in str(info.value)
