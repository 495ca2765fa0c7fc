"""Finding 4: starting with only a new cipher key after events were written with
another is a clear 503 and an unready service, not a 500 behind a ready probe.

The real app in-process over a real SQLite file, started twice: once with the old
key to write, then with only a new one.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from ipt_workflow.ops import logging as ipt_logging
from ipt_workflow.storage.cipher import fingerprint
from tests.reliability.conftest import InProcess, add_tokens


def new_key() -> tuple[str, bytes]:
    raw = secrets.token_bytes(32)
    return base64.b64encode(raw).decode(), raw


def test_events_written_with_a_key_not_configured_are_a_503_naming_the_key_in_the_log(
    in_process: Callable[..., InProcess],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Caught: case reads, history and the feed were 500s while /readyz said ready."""
    ipt_logging._configured = None
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    tokens = add_tokens(url)
    old_text, old_raw = new_key()
    new_text, _ = new_key()
    writer = in_process(url, tokens, cipher_key=old_text, log_format="json")
    case = writer.open_case("K-1")
    writer.client.__exit__(None, None, None)

    reader = in_process(url, tokens, cipher_key=new_text, log_format="json")
    capsys.readouterr()
    answers = {
        "case": reader.get(f"/cases/{case['id']}"),
        "history": reader.get(f"/cases/{case['id']}/history", who="auditor"),
        "feed": reader.get("/events", who="auditor"),
    }
    ready = reader.client.get("/readyz")
    logs = capsys.readouterr().err
    ipt_logging._configured = None

    for what, answer in answers.items():
        assert answer.status_code == 503, (what, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "unavailable"
        assert "IPT_CIPHER_KEY" in answer.json()["detail"], what
    assert ready.status_code == 503
    missing = fingerprint(old_raw).hex()
    assert ready.json()["checks"]["events"] == (
        f"unreadable: written with key {missing}, not configured"
    )
    assert '"event": "cipher_key_unknown"' in logs
    assert f'"key_fingerprint": "{missing}"' in logs
    assert old_text not in logs and new_text not in logs


def test_with_both_keys_configured_the_old_events_read_and_the_service_is_ready(
    in_process: Callable[..., InProcess], tmp_path: Path
) -> None:
    """The control: the same store with the old key still in the ring is fine."""
    url = f"sqlite:///{tmp_path / 'ring.db'}"
    tokens = add_tokens(url)
    old_text, _ = new_key()
    new_text, _ = new_key()
    writer = in_process(url, tokens, cipher_key=old_text)
    case = writer.open_case("K-2")
    writer.client.__exit__(None, None, None)

    reader = in_process(url, tokens, cipher_key=f"{new_text},{old_text}")
    answer = reader.get(f"/cases/{case['id']}")
    ready = reader.client.get("/readyz")

    assert answer.status_code == 200
    assert ready.json()["checks"]["events"] == "ok"
