"""AES-GCM with a key ring, so the cipher key can be rotated without rewriting events.

New payloads are encrypted with the newest key and carry that key's fingerprint;
older payloads name the key they need, which stays readable while it is configured.
"""

from __future__ import annotations

import hashlib
from base64 import b64decode

from eventsourcing.persistence import Cipher
from eventsourcing.utils import Environment

from ipt_workflow.storage.gcm import Gcm, check_key_size

FORMAT = b"\x01"
FINGERPRINT_BYTES = 8


class UnknownCipherKeyError(ValueError):
    """Raised when a payload names a key that is not configured."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        super().__init__(
            f"payload was encrypted with key {fingerprint}, which is not configured"
        )


def fingerprint(key: bytes) -> bytes:
    return hashlib.sha256(b"ipt-workflow key id" + key).digest()[:FINGERPRINT_BYTES]


def parse_keys(text: str) -> list[bytes]:
    """Keys from `CIPHER_KEY`: base64 keys separated by commas, newest first."""
    keys = [b64decode(part.strip(), validate=True) for part in text.split(",") if part]
    if not keys:
        raise ValueError("no cipher key given")
    for key in keys:
        check_key_size(len(key))
    return keys


def ring_key_of(payload: bytes) -> bytes | None:
    """The fingerprint of the ring key a payload in this format names; None if the
    payload is not in it."""
    if payload[:1] != FORMAT or len(payload) < 1 + FINGERPRINT_BYTES:
        return None
    return payload[1 : 1 + FINGERPRINT_BYTES]


class KeyRingCipher(Cipher):
    """Encrypts with the newest configured key; decrypts with whichever is named."""

    def __init__(self, environment: Environment) -> None:
        text = environment.get("CIPHER_KEY")
        if not text:
            raise OSError("'CIPHER_KEY' not in env")
        keys = parse_keys(text)
        self._ring = {fingerprint(k): Gcm(k) for k in keys}
        self._newest = fingerprint(keys[0])

    @property
    def newest(self) -> bytes:
        """The fingerprint of the key new payloads are encrypted with."""
        return self._newest

    @property
    def fingerprints(self) -> list[bytes]:
        """Every configured key's fingerprint."""
        return list(self._ring)

    def encrypt(self, plaintext: bytes) -> bytes:
        return FORMAT + self._newest + self._ring[self._newest].encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        if ciphertext[:1] != FORMAT:
            raise ValueError("payload is not in the key-ring format")
        key_id = ciphertext[1 : 1 + FINGERPRINT_BYTES]
        cipher = self._ring.get(key_id)
        if cipher is None:
            raise UnknownCipherKeyError(key_id.hex())
        return cipher.decrypt(ciphertext[1 + FINGERPRINT_BYTES :])
