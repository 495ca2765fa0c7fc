"""docker-compose.yml fits the Compose specification and takes its secrets from the
environment only; validated with the specification's own JSON schema (vendored in
tests/ops/compose_spec), so no docker-compose binary or network is needed."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest

from tests.support.compose import MissingMandatoryValue, interpolate, render, validate

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "pw-from-the-environment",
    "IPT_CIPHER_KEY": "cipher-from-the-environment",
    "IPT_REFERENCE_KEY": "reference-from-the-environment",
    "IPT_CHECKPOINT_KEY": "checkpoint-from-the-environment",
    "GRAFANA_ADMIN_PASSWORD": "grafana-from-the-environment",
}


def test_the_compose_file_fits_the_compose_schema_with_secrets_from_the_env() -> None:
    rendered = render(COMPOSE, SECRETS)

    validate(rendered)
    services = rendered["services"]
    assert set(services) == {
        "postgres",
        "api",
        "projections",
        "webhooks",
        "retention",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    for name in ("api", "projections", "webhooks"):
        environment = services[name]["environment"]
        assert environment["IPT_DATABASE_URL"] == (
            "postgresql://ipt:pw-from-the-environment@postgres:5432/ipt"
        )
        for secret in ("IPT_CIPHER_KEY", "IPT_REFERENCE_KEY", "IPT_CHECKPOINT_KEY"):
            assert environment[secret] == SECRETS[secret]
    assert (
        services["postgres"]["environment"]["POSTGRES_PASSWORD"]
        == (SECRETS["POSTGRES_PASSWORD"])
    )
    assert services["projections"]["command"][1:3] == ["projections", "run"]
    assert services["webhooks"]["command"][1:3] == ["webhooks", "run"]
    assert (
        services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
        == (SECRETS["GRAFANA_ADMIN_PASSWORD"])
    )
    assert "ipt-workflow retention run" in str(services["retention"])
    command = services["api"]["command"]
    assert command[command.index("--workers") + 1] == "4"
    assert services["api"]["ports"] == ["8000:8000"]
    assert sum("healthcheck" in s for s in services.values()) == 4
    assert [s.get("image") for s in services.values()].count("ipt-workflow:local") == 4


def test_the_schema_check_refuses_a_service_with_an_unknown_key() -> None:
    """The validator is not a rubber stamp: a misspelt key fails it."""
    rendered = copy.deepcopy(render(COMPOSE, SECRETS))
    rendered["services"]["api"]["helthcheck"] = rendered["services"]["api"].pop(
        "healthcheck"
    )

    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):
        validate(rendered)


def test_docker_compose_refuses_to_render_without_the_secrets() -> None:
    text = COMPOSE.read_text()

    with pytest.raises(MissingMandatoryValue, match="Missing mandatory value"):
        render(COMPOSE, {})
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, name
        assert all(use.startswith(":?") for use in uses), (name, uses)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A:+r}", {"A": "x"}, "r"),
        ("$$A $A", {"A": "x"}, "$A x"),
    ],
)
def test_interpolation_follows_the_compose_specification(
    text: str, env: dict[str, str], expected: str
) -> None:
    assert interpolate(text, env) == expected


def test_the_image_is_one_python_slim_build_and_prometheus_scrapes_the_api() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    scrape = (ROOT / "deploy" / "prometheus.yml").read_text()

    assert dockerfile.count("FROM ") == 1
    assert "FROM python:3.11-slim" in dockerfile
    assert "USER ipt" in dockerfile
    assert 'targets: ["api:8000"]' in scrape
    assert 'targets: ["webhooks:9102"]' in scrape
    assert "metrics_path: /metrics" in scrape
