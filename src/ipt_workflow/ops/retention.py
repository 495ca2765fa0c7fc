"""What a retention run tells operations: a log line per case, a metric, progress.

Lines and labels carry the case id, its clinic, the retention date and the action:
never client data. A run is a short-lived process, so its counter is written to a
node_exporter textfile (`--metrics-file`) instead of being scraped.
"""

from __future__ import annotations

from uuid import UUID

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile

from ipt_workflow.ops.progress import Reporter

retention_log = structlog.get_logger("ipt_workflow.retention")

ACTIONS = ("due", "erased", "unsupported", "refused", "failed")


class RetentionRunReport:
    """Counts, logs and shows the progress of one retention run."""

    def __init__(self, *, apply: bool, bar: Reporter | None = None) -> None:
        self.apply = apply
        self.bar = bar
        self.registry = CollectorRegistry()
        self.cases = Counter(
            "ipt_retention_run_cases",
            "Cases a retention run found due, by what it did with them.",
            ["action"],
            registry=self.registry,
        )
        for action in ACTIONS:
            self.cases.labels(action).inc(0)
        self.finished = Gauge(
            "ipt_retention_run_finished_timestamp_seconds",
            "When the last retention run ended.",
            ["mode"],
            registry=self.registry,
        )
        self.counts = dict.fromkeys(ACTIONS, 0)

    def case(
        self, case_id: UUID, clinic_id: str, until: str, action: str, **extra: str
    ) -> None:
        self.counts[action] += 1
        self.cases.labels(action).inc()
        retention_log.info(
            "retention_case",
            case_id=str(case_id),
            clinic_id=clinic_id,
            retention_until=until,
            action=action,
            apply=self.apply,
            **extra,
        )
        if self.bar is not None:
            self.bar.advance()

    def write_metrics(self, path: str) -> None:
        self.finished.labels("apply" if self.apply else "dry_run").set_to_current_time()
        write_to_textfile(path, self.registry)
