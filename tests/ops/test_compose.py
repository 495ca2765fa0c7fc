"""docker-compose.yml validates (Debian's docker-compose, no engine) and takes its
secrets from the environment only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "POSTGRES_PASSWORD": "pw-from-the-environment",
    "IPT_CIPHER_KEY": "cipher-from-the-environment",
    "IPT_REFERENCE_KEY": "reference-from-the-environment",
    "IPT_CHECKPOINT_KEY": "checkpoint-from-the-environment",
}


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: .ci/run installs Debian's package"
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", "docker-compose.yml", *args],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docker_compose_config_validates_with_secrets_from_the_environment() -> None:
    rendered = compose("config", env=SECRETS)
    services = rendered.stdout.split("\nvolumes:")[0]

    assert rendered.returncode == 0, rendered.stderr
    assert set(re.findall(r"^  ([a-z_]+):$", services, re.MULTILINE)) == {
        "postgres",
        "api",
        "projections",
        "webhooks",
        "retention",
        "prometheus",
    }
    for value in SECRETS.values():
        assert value in rendered.stdout
    assert "postgresql://ipt:pw-from-the-environment@postgres:5432/ipt" in (
        rendered.stdout
    )
    assert "- projections\n    - run" in rendered.stdout
    assert "- webhooks\n    - run" in rendered.stdout
    assert "--workers\n    - '4'" in rendered.stdout
    assert rendered.stdout.count("healthcheck:") == 4
    assert rendered.stdout.count("image: ipt-workflow:local") == 4
    assert "ipt-workflow retention run" in rendered.stdout


def test_docker_compose_refuses_to_render_without_the_secrets() -> None:
    text = (ROOT / "docker-compose.yml").read_text()

    done = compose("config", "-q", env={})

    assert done.returncode != 0
    assert "Missing mandatory value" in done.stderr
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, name
        assert all(use.startswith(":?") for use in uses), (name, uses)


def test_the_image_is_one_python_slim_build_and_prometheus_scrapes_the_api() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    scrape = (ROOT / "deploy" / "prometheus.yml").read_text()

    assert dockerfile.count("FROM ") == 1
    assert "FROM python:3.11-slim" in dockerfile
    assert "USER ipt" in dockerfile
    assert 'targets: ["api:8000"]' in scrape
    assert 'targets: ["webhooks:9102"]' in scrape
    assert "metrics_path: /metrics" in scrape
