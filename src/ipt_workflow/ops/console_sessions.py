"""Sessions of the browser console: a pasted API token, sealed into a cookie.

The cookie holds the token encrypted and authenticated (AES-GCM) with an expiry and a
random session id, so the server keeps no session state and every worker can read
it. Each request opens the cookie and looks the token up again, so a revoked key
ends its sessions as soon as it ends its API use (D80). CSRF tokens are HMACs of
the session id (or, before sign-in, of a random nonce kept in a cookie of its own).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass

from Crypto.Cipher import AES

SESSION_SECONDS = 8 * 3600
"""A session lasts a working day at most; signing in again starts a new one."""

NONCE_BYTES = 12
TAG_BYTES = 16
MAX_COOKIE_CHARS = 4000


@dataclass(frozen=True)
class ConsoleSession:
    """An opened session cookie: the token it carries and its id."""

    token: str
    session_id: str
    expires_at: int


@dataclass(frozen=True)
class SessionSealer:
    """Seals and opens session cookies and makes and checks CSRF tokens."""

    encryption_key: bytes
    mac_key: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> SessionSealer:
        """Two keys derived from one server secret, each for one purpose."""
        return cls(
            encryption_key=_derive(secret, b"ipt-workflow console session key"),
            mac_key=_derive(secret, b"ipt-workflow console csrf key"),
        )

    def seal(self, token: str, now: float) -> tuple[str, ConsoleSession]:
        """A new session for a token: the cookie value and what it holds."""
        session = ConsoleSession(
            token=token,
            session_id=secrets.token_hex(16),
            expires_at=int(now) + SESSION_SECONDS,
        )
        plain = json.dumps(
            {"t": session.token, "s": session.session_id, "e": session.expires_at},
            separators=(",", ":"),
        ).encode()
        nonce = os.urandom(NONCE_BYTES)
        cipher = AES.new(self.encryption_key, AES.MODE_GCM, nonce=nonce)
        sealed, tag = cipher.encrypt_and_digest(plain)
        value = base64.urlsafe_b64encode(nonce + tag + sealed).decode().rstrip("=")
        return value, session

    def open(self, value: str | None, now: float) -> ConsoleSession | None:
        """The session a cookie holds; None if absent, altered or expired."""
        if not value or len(value) > MAX_COOKIE_CHARS:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) <= NONCE_BYTES + TAG_BYTES:
            return None
        nonce, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES : NONCE_BYTES + TAG_BYTES]
        cipher = AES.new(self.encryption_key, AES.MODE_GCM, nonce=nonce)
        try:
            plain = cipher.decrypt_and_verify(raw[NONCE_BYTES + TAG_BYTES :], tag)
            fields = json.loads(plain)
            session = ConsoleSession(
                token=str(fields["t"]),
                session_id=str(fields["s"]),
                expires_at=int(fields["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= now:
            return None
        return session

    def csrf_token(self, binding: str) -> str:
        """The CSRF token of a session id or a sign-in nonce."""
        return hmac.new(self.mac_key, binding.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, binding: str | None, given: str | None) -> bool:
        if not binding or not given:
            return False
        # Bytes: compare_digest refuses str with characters beyond ASCII.
        return hmac.compare_digest(
            self.csrf_token(binding).encode(), given.encode("utf-8", "replace")
        )


def new_nonce() -> str:
    """A random value that binds the sign-in form's CSRF token to one browser."""
    return secrets.token_urlsafe(24)


def _derive(secret: bytes, label: bytes) -> bytes:
    return hmac.new(secret, label, hashlib.sha256).digest()
