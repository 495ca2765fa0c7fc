"""AES-GCM as every payload stores it: nonce (12 bytes), tag (16), ciphertext.

That is the layout of the library's `AESCipher`, which the first releases used
(pycryptodome); OpenSSL through `cryptography` reads and writes the same bytes
about fifty times faster (issue 12's profile: the cipher was an eighth of a
command's time, D118).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
TAG_BYTES = 16
KEY_SIZES = (16, 24, 32)


def check_key_size(size: int) -> None:
    if size not in KEY_SIZES:
        raise ValueError(f"Invalid key size: {size} not in {KEY_SIZES}")


class Gcm:
    """One key's AES-GCM, with optional associated data."""

    def __init__(self, key: bytes) -> None:
        check_key_size(len(key))
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, associated: bytes | None = None) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, associated)
        return nonce + sealed[-TAG_BYTES:] + sealed[:-TAG_BYTES]

    def decrypt(self, data: bytes, associated: bytes | None = None) -> bytes:
        nonce = data[:NONCE_BYTES]
        tag = data[NONCE_BYTES : NONCE_BYTES + TAG_BYTES]
        if len(nonce) != NONCE_BYTES or len(tag) != TAG_BYTES:
            raise ValueError("Damaged cipher text: too short")
        try:
            return self._aead.decrypt(
                nonce, data[NONCE_BYTES + TAG_BYTES :] + tag, associated
            )
        except InvalidTag:
            raise ValueError("Cipher text is damaged: invalid tag") from None
