"""Finding 6: the production checks cannot be skipped.

Real processes: `uvicorn --factory` as an operator might start it, and
`ipt-workflow serve`, over real SQLite files; each is given at most 60 s to refuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.settings import Settings
from tests.reliability.conftest import (
    add_tokens,
    free_port,
    port_is_free,
    secrets_env,
)

REFUSE_WITHIN = 60.0


def run(
    args: list[str], tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command that must refuse to start; kill its group if it serves instead."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IPT_")},
        "IPT_DATABASE_URL": f"sqlite:///{tmp_path / 'ipt.db'}",
        **env,
    }
    process = subprocess.Popen(
        args,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=REFUSE_WITHIN)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, err = process.communicate()
        raise AssertionError(f"still running after {REFUSE_WITHIN} s: {err}") from None
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def uvicorn_factory(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "ipt_workflow.api.app:app_from_environment",
        "--port",
        str(port),
    ]


def serve(*args: str) -> list[str]:
    return [sys.executable, "-m", "ipt_workflow.cli.main", "serve", *args]


def test_uvicorn_factory_without_keys_refuses_to_serve(tmp_path: Path) -> None:
    """Caught: it served with no cipher key, checkpoint key or API keys, and
    /readyz said ready."""
    port = free_port()

    done = run(uvicorn_factory(port), tmp_path)

    assert done.returncode != 0
    assert "refusing to start: IPT_CIPHER_KEY is not set" in done.stderr
    assert "no API key exists" in done.stderr
    assert port_is_free(port)


def test_uvicorn_factory_with_ipt_dev_alone_refuses_to_serve(tmp_path: Path) -> None:
    """Caught: IPT_DEV=true in the environment turned on the public dev tokens."""
    done = run(uvicorn_factory(free_port()), tmp_path, IPT_DEV="true")

    assert done.returncode != 0
    assert "development mode needs `ipt-workflow serve --dev`" in done.stderr


def test_serve_without_dev_but_with_ipt_dev_set_refuses_to_start(
    tmp_path: Path,
) -> None:
    """Caught: `serve` (no --dev) with IPT_DEV=true served the dev tokens."""
    done = run(serve("--port", str(free_port())), tmp_path, IPT_DEV="true")

    assert done.returncode == 2
    assert "IPT_DEV is set in the environment" in done.stderr
    assert "--dev flag" in done.stderr


def test_serve_dev_on_a_host_that_is_not_loopback_refuses_to_start(
    tmp_path: Path,
) -> None:
    """Caught: `--dev` served its public tokens on 0.0.0.0. Nothing is bound."""
    done = run(serve("--dev", "--host", "0.0.0.0", "--port", "1"), tmp_path)

    assert done.returncode == 2
    assert "loopback address only, not 0.0.0.0" in done.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("IPT_REFERENCE_KEY", "x"), ("IPT_CHECKPOINT_KEY", "short")],
)
def test_a_key_shorter_than_its_minimum_is_a_configuration_error(
    tmp_path: Path, name: str, value: str
) -> None:
    """Caught: a one-character IPT_REFERENCE_KEY was accepted."""
    env = {**secrets_env(), name: value}

    done = run(serve("--port", str(free_port())), tmp_path, **env)

    assert done.returncode == 2
    assert f"configuration error: {name}:" in done.stderr
    assert value not in done.stderr.replace(name, "")


def test_with_keys_and_secrets_the_factory_serves_and_is_ready(tmp_path: Path) -> None:
    """The control: the same factory, configured for production, starts."""
    url = f"sqlite:///{tmp_path / 'ipt.db'}"
    add_tokens(url)
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IPT_")},
        "IPT_DATABASE_URL": url,
        **secrets_env(),
    }
    process = subprocess.Popen(
        uvicorn_factory(port),
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        ready = None
        for _ in range(600):
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
    finally:
        os.killpg(process.pid, 9)
        process.wait(timeout=30)

    assert ready is not None
    assert ready.status_code == 200, ready.text


def test_dev_tokens_are_refused_from_an_address_that_is_not_loopback(
    tmp_path: Path,
) -> None:
    """Caught: a dev-mode server answered the dev tokens from any client."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'dev.db'}", dev=True)
    auth = {"Authorization": "Bearer dev-ops"}
    app = create_app(settings)
    with TestClient(
        app, base_url="http://127.0.0.1", client=("127.0.0.1", 5000)
    ) as local:
        mine = local.get("/projections/status", headers=auth)
    with TestClient(
        app, base_url="http://127.0.0.1", client=("192.0.2.7", 5000)
    ) as remote:
        theirs = remote.get("/projections/status", headers=auth)

    assert mine.status_code == 200
    assert theirs.status_code == 401
