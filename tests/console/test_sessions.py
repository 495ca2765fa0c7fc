"""Console sessions: what the cookie holds, and the cookie a production server sets."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ipt_workflow.ops.console_sessions import SESSION_SECONDS, SessionSealer
from tests.ops.conftest import start_server

SEALER = SessionSealer.from_secret(b"a server secret for the tests")
NOW = 1_800_000_000.0


class TestSessionCookie:
    def test_a_sealed_session_opens_to_the_same_token_until_it_expires(self) -> None:
        value, session = SEALER.seal("ipt_k1_token", NOW)

        opened = SEALER.open(value, NOW + SESSION_SECONDS - 1)
        expired = SEALER.open(value, NOW + SESSION_SECONDS)

        assert opened == session
        assert opened.token == "ipt_k1_token"
        assert expired is None

    def test_the_cookie_does_not_show_the_token(self) -> None:
        value, _ = SEALER.seal("ipt_k1_secret-token-text", NOW)

        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))

        assert b"secret-token-text" not in raw
        assert "secret-token-text" not in value

    @pytest.mark.parametrize("position", [0, 12, 20, 40, -1])
    def test_a_cookie_altered_anywhere_does_not_open(self, position: int) -> None:
        value, _ = SEALER.seal("ipt_k1_token", NOW)
        raw = bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        raw[position] ^= 0x01
        altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")

        assert SEALER.open(altered, NOW) is None

    @pytest.mark.parametrize("value", ["", "x", "!!!", "a" * 5000, None])
    def test_garbage_in_the_cookie_is_no_session(self, value: str | None) -> None:
        assert SEALER.open(value, NOW) is None

    def test_a_cookie_sealed_with_another_secret_does_not_open(self) -> None:
        value, _ = SessionSealer.from_secret(b"another secret").seal("t", NOW)

        assert SEALER.open(value, NOW) is None

    def test_a_csrf_token_is_valid_only_for_its_own_session(self) -> None:
        token = SEALER.csrf_token("session-a")

        assert SEALER.csrf_valid("session-a", token)
        assert not SEALER.csrf_valid("session-b", token)
        assert not SEALER.csrf_valid("session-a", token[:-1] + "0")
        assert not SEALER.csrf_valid(None, token)
        assert not SEALER.csrf_valid("session-a", None)


def test_outside_dev_mode_the_session_cookie_is_secure_and_host_only(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ipt.db'}"
    secrets = {
        "IPT_DATABASE_URL": url,
        "IPT_CIPHER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "IPT_REFERENCE_KEY": "a-reference-key-for-this-test-only-0123456789",
        "IPT_CHECKPOINT_KEY": "a-checkpoint-key-for-this-test-only-0123456789",
    }
    env = {**os.environ, **secrets}
    made = subprocess.run(
        [
            *(sys.executable, "-m", "ipt_workflow.cli.main", "keys", "add"),
            *("--role", "auditor", "--clinic", "clinic-a", "--actor", "audit-team"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = made.stdout.strip()
    server = start_server(tmp_path, url, dev=False, **secrets)
    try:
        with httpx.Client(base_url=server.base) as browser:
            form = browser.get("/console/sign-in")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf is not None
            # httpx keeps Secure cookies off plain HTTP: send the nonce back by hand.
            nonce = form.cookies.get("__Host-ipt_console_signin")
            signed_in = browser.post(
                "/console/sign-in",
                data={"token": token, "csrf_token": csrf.group(1)},
                headers={"Cookie": f"__Host-ipt_console_signin={nonce}"},
            )
    finally:
        server.stop()

    set_cookie = signed_in.headers["set-cookie"]
    assert signed_in.status_code == 303
    assert form.headers["set-cookie"].startswith("__Host-ipt_console_signin=")
    assert set_cookie.startswith("__Host-ipt_console=")
    attributes = [a.strip().lower() for a in set_cookie.split(",")[0].split(";")]
    assert {"httponly", "secure", "path=/", "samesite=strict"} <= set(attributes)
    assert token not in set_cookie
