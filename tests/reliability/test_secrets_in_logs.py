"""Finding 3: a 500 writes no token, key or password into the logs, in either format.

The real app in-process over the real PostgreSQL cluster (so the database URL has a
password), with the real logging configuration; the defect is provoked by making the
case application fail inside a read.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator

import pytest

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.ops import logging as ipt_logging
from tests.reliability.conftest import InProcess
from tests.support.postgres import PASSWORD


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Each test configures logging for its own format; the next one starts over."""
    ipt_logging._configured = None
    yield
    ipt_logging._configured = None


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_the_logs_of_a_500_hold_no_token_key_or_password(
    log_format: str,
    postgres_url: str,
    in_process: Callable[..., InProcess],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fresh_logging: None,
) -> None:
    """Caught: the console format printed tracebacks with every frame's locals: the
    caller's token (26 times), other callers' tokens from the cache and the URL."""
    cipher_key = base64.b64encode(secrets.token_bytes(32)).decode()
    checkpoint_key = secrets.token_urlsafe(32)
    reference_key = secrets.token_urlsafe(32)
    app = in_process(
        database_url=postgres_url,
        log_format=log_format,
        cipher_key=cipher_key,
        checkpoint_key=checkpoint_key,
        reference_key=reference_key,
    )
    case = app.open_case("S-1")
    app.get(f"/cases/{case['id']}", who="auditor")  # another caller, cached
    app.get("/projections/status", who="ops")

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the defect this test provokes")

    monkeypatch.setattr(CaseApplication, "get_case", broken)
    answer = app.get(f"/cases/{case['id']}")
    logs = capsys.readouterr().err

    assert answer.status_code == 500
    assert answer.json()["code"] == "internal_error"
    assert "the defect this test provokes" in logs  # the traceback was written
    assert "Traceback" in logs
    for secret in [
        *app.tokens.values(),
        PASSWORD,
        cipher_key,
        checkpoint_key,
        reference_key,
    ]:
        assert secret not in logs, f"a secret in the {log_format} logs"
    assert len(logs) < 200_000  # no frame dumps: was 8.6 MB for one 500


def test_text_loses_bearer_tokens_api_tokens_and_url_passwords(
    fresh_logging: None,
) -> None:
    """The scrubber's second line of defence: secrets it recognises in any text."""
    token = f"ipt_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
    line = {
        "event": "x",
        "error": f"Authorization: Bearer abc.def; token {token}",
        "url": "postgresql://ipt:s3cret-pass@db:5432/ipt",
        "nested": {"password": "p", "list": [f"Bearer {token}"]},
    }

    scrubbed = ipt_logging.scrub_client_data(None, "info", line)
    text = repr(scrubbed)

    assert "abc.def" not in text
    assert token not in text
    assert "s3cret-pass" not in text
    assert "postgresql://ipt:[secret removed]@db:5432/ipt" in text
    assert scrubbed["nested"]["password"] == ipt_logging.SECRET_REMOVED
