"""The monitoring kit without Docker: Prometheus, Alertmanager and Grafana configs are
checked by Debian's promtool and amtool (which `.ci/run` installs) and parsed, and
each is tied to the compose file, the service's metrics and the operations guide."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.registry import Collector

from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.composition.webhooks import build_webhooks
from ipt_workflow.ops import metrics
from ipt_workflow.ops.webhooks import WebhookGauges, WebhookLog

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "ipt-workflow.json"
WEBHOOK_LAG = "ipt_webhook_lag_seconds"
"""The scrape-time gauge of the oldest event some subscription has not had yet."""


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: .ci/run installs Debian's package for it"
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def compose() -> dict[str, Any]:
    found: dict[str, Any] = load(ROOT / "docker-compose.yml")
    return found


def mounts(service: str) -> dict[str, str]:
    """Container path → host path (relative to the repository) of a service."""
    found = {}
    for volume in compose()["services"][service].get("volumes", []):
        host, container, *_ = volume.split(":")
        found[container] = host
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name the service's own code can export, the webhook store's
    scrape-time gauges included (read from a real store with a dispatcher's beat)."""
    folder = tmp_path_factory.mktemp("metrics")
    settings = Settings(database_url=f"sqlite:///{folder / 'ipt.db'}")
    cases = build_application(settings)
    webhooks = build_webhooks(settings, cases)
    try:
        webhooks.store.beat("test-dispatcher")
        WebhookLog()  # the dispatcher's counters are made on first use
        return service_metric_names(WebhookGauges(webhooks))
    finally:
        webhooks.store.close()
        cases.close()


def service_metric_names(*collectors: Collector) -> set[str]:
    """Every sample name the service's own code exports, with these collectors."""
    names = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("ipt_"):
            continue
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    rows = [
        {
            "projection": "x",
            "position": 0,
            "head": 0,
            "lag_events": 0,
            "lag_seconds": 0.0,
        }
    ]
    collector = metrics.ScrapeTimeCollector(lambda: rows, lambda: {"x": True})
    for each in (collector, *collectors):
        names |= {family.name for family in each.collect()}
    return names


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(ipt_[a-z0-9_]+)\b", expr))


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for group in load(DEPLOY / "alerts.yml")["groups"]
        for rule in group["rules"]
    ]


def dashboard_targets() -> list[tuple[str, str]]:
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


class TestPrometheus:
    def test_promtool_accepts_the_configuration_and_its_rules(
        self, tmp_path: Path
    ) -> None:
        rules = tmp_path / "alerts.yml"
        shutil.copy(DEPLOY / "alerts.yml", rules)
        config = load(DEPLOY / "prometheus.yml")
        config["rule_files"] = [str(rules)]  # the container's path, here
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))

        checked = run(
            tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")
        )

        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS" in checked.stdout

    def test_prometheus_scrapes_the_api_projections_and_webhooks_ports(self) -> None:
        config = load(DEPLOY / "prometheus.yml")
        services = compose()["services"]

        targets = {
            job["job_name"]: job["static_configs"][0]["targets"]
            for job in config["scrape_configs"]
        }
        projections = services["projections"]["command"]

        assert targets == {
            "ipt-workflow-api": ["api:8000"],
            "ipt-workflow-projections": ["projections:9101"],
            "ipt-workflow-webhooks": ["webhooks:9102"],
        }
        at = projections.index("--metrics-port")
        assert projections[at + 1] == "9101"
        assert projections[projections.index("--metrics-host") + 1] == "0.0.0.0"
        dispatcher = services["webhooks"]["command"]
        assert dispatcher[dispatcher.index("--metrics-port") + 1] == "9102"
        assert dispatcher[dispatcher.index("--metrics-host") + 1] == "0.0.0.0"

    def test_prometheus_sends_alerts_to_the_alertmanager_service(self) -> None:
        config = load(DEPLOY / "prometheus.yml")
        services = compose()["services"]

        (manager,) = config["alerting"]["alertmanagers"]

        assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
        assert "alertmanager" in services
        assert mounts("prometheus")["/etc/prometheus/alerts.yml"] == (
            "./deploy/alerts.yml"
        )
        assert mounts("alertmanager")["/etc/alertmanager/alertmanager.yml"] == (
            "./deploy/alertmanager.yml"
        )


class TestAlerts:
    def test_every_rule_has_a_runbook_section_in_the_operations_guide(self) -> None:
        anchors = github_anchors((ROOT / "docs" / "operations.md").read_text())

        missing = {}
        for rule in alert_rules():
            url = rule["annotations"].get("runbook_url", "")
            path, _, anchor = url.partition("#")
            if path != "docs/operations.md" or anchor not in anchors:
                missing[rule["alert"]] = url

        assert missing == {}
        assert len(alert_rules()) >= 9

    def test_every_rule_is_about_a_metric_the_service_exports(
        self, exported: set[str]
    ) -> None:
        known = exported | {"up"}

        unknown = {
            rule["alert"]: metric_names(rule["expr"]) - known for rule in alert_rules()
        }

        assert {k: v for k, v in unknown.items() if v} == {}

    def test_amtool_accepts_the_alertmanager_configuration(self) -> None:
        checked = run(tool("amtool"), "check-config", str(DEPLOY / "alertmanager.yml"))

        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS" in checked.stdout

    def test_every_severity_of_the_rules_has_its_own_route(self) -> None:
        config = load(DEPLOY / "alertmanager.yml")
        receivers = {r["name"] for r in config["receivers"]}

        routed = {}
        for route in config["route"]["routes"]:
            (matcher,) = route["matchers"]
            severity = re.fullmatch(r'severity="(\w+)"', matcher)
            assert severity, matcher
            routed[severity.group(1)] = route["receiver"]
        severities = {rule["labels"]["severity"] for rule in alert_rules()}

        assert severities == {"page", "ticket"}
        assert routed == {"page": "page", "ticket": "ticket"}
        assert set(routed.values()) <= receivers

    def test_the_inhibit_rules_name_only_alerts_that_exist(self) -> None:
        config = load(DEPLOY / "alertmanager.yml")
        names = {rule["alert"] for rule in alert_rules()}

        named = set()
        for rule in config["inhibit_rules"]:
            for matcher in rule["source_matchers"] + rule["target_matchers"]:
                found = re.fullmatch(r'alertname=~?"([\w|]+)"', matcher)
                assert found, matcher
                named |= set(found.group(1).split("|"))

        assert named <= names


class TestGrafana:
    def test_the_dashboard_has_the_panels_operations_watch(self) -> None:
        titles = {title for title, _ in dashboard_targets()}

        assert {
            "Request rate by route",
            "Errors",
            "Latency",
            "Commands by outcome",
            "Guard failures by rule",
            "Projection lag (seconds)",
            "Webhook delivery lag",
        } <= titles

    def test_every_query_is_valid_promql(self, tmp_path: Path) -> None:
        rules = {
            "groups": [
                {
                    "name": "dashboard",
                    "rules": [
                        {
                            "record": f"dashboard:query_{i}",
                            # Grafana fills in its rate interval; promtool cannot.
                            "expr": expr.replace("$__rate_interval", "5m"),
                        }
                        for i, (_, expr) in enumerate(dashboard_targets())
                    ],
                }
            ]
        }
        path = tmp_path / "dashboard-queries.yml"
        path.write_text(yaml.safe_dump(rules))

        checked = run(tool("promtool"), "check", "rules", str(path))

        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"{len(rules['groups'][0]['rules'])} rules found" in checked.stdout

    def test_every_query_reads_a_metric_the_service_exports(
        self, exported: set[str]
    ) -> None:
        unknown = {
            title: metric_names(expr) - exported for title, expr in dashboard_targets()
        }

        assert {k: v for k, v in unknown.items() if v} == {}

    def test_the_webhook_panel_reads_the_lag_gauge_of_the_store(
        self, exported: set[str]
    ) -> None:
        """Caught in the merge with the webhooks: the panel, written before them,
        read `ipt_webhook_delivery_lag_seconds`, which is a histogram's name (only
        its _bucket, _sum and _count series exist), so it could never show a value."""
        panels = json.loads(DASHBOARD.read_text())["panels"]

        (webhooks,) = [p for p in panels if p["title"] == "Webhook delivery lag"]

        assert metric_names(webhooks["targets"][0]["expr"]) == {WEBHOOK_LAG}
        assert WEBHOOK_LAG in exported
        assert webhooks["fieldConfig"]["defaults"]["noValue"] == (
            "no webhook status scraped"
        )

    def test_panels_use_the_provisioned_datasource_and_do_not_overlap(self) -> None:
        datasources = load(
            DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
        )["datasources"]
        dashboard = json.loads(DASHBOARD.read_text())
        (uid,) = [d["uid"] for d in datasources]
        cells: dict[tuple[int, int], int] = {}

        for panel in dashboard["panels"]:
            g = panel["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, (panel["title"], cells[(x, y)])
                    cells[(x, y)] = panel["id"]
            assert g["x"] + g["w"] <= 24
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == uid
                assert all(t["datasource"]["uid"] == uid for t in panel["targets"])

        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        assert dashboard["uid"] == "ipt-workflow"
        assert datasources[0]["url"] == "http://prometheus:9090"

    def test_compose_provisions_the_dashboard_beside_prometheus(self) -> None:
        services = compose()["services"]
        provider = load(
            DEPLOY / "grafana" / "provisioning" / "dashboards" / "ipt-workflow.yml"
        )["providers"][0]

        grafana = mounts("grafana")

        assert services["grafana"]["profiles"] == ["monitoring"]
        assert services["alertmanager"]["profiles"] == ["monitoring"]
        assert grafana["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
        assert grafana[provider["options"]["path"]] == "./deploy/grafana/dashboards"
        for service in ("grafana", "alertmanager", "prometheus"):
            for host in mounts(service).values():
                assert (ROOT / host).exists(), host
            for port in services[service]["ports"]:
                assert port.startswith("127.0.0.1:"), port  # never on every interface
        password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
        assert password.startswith("${GRAFANA_ADMIN_PASSWORD:?")


@pytest.mark.parametrize(
    "path",
    sorted(p.relative_to(ROOT).as_posix() for p in DEPLOY.rglob("*.yml")),
)
def test_every_deployment_file_is_yaml_a_parser_reads(path: str) -> None:
    assert isinstance(load(ROOT / path), dict)
