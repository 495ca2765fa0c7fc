"""Prometheus metrics: what the service counts, and `/metrics` across workers.

Labels carry route templates, command names, outcome labels, rule codes, projection
and pool names: fixed vocabularies, never a case id or anything a client sent.

With several uvicorn workers `serve` points `PROMETHEUS_MULTIPROC_DIR` at an empty
folder before the workers start; each worker then writes its counters to files
there and any worker's `/metrics` sums them all (prometheus-client's multiprocess
mode). Gauges that describe the whole service (projection positions and lag,
readiness of the database) are read at scrape time instead, by the worker that
answers the scrape.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# `_created` series double what Prometheus stores and tell nothing a restart does not.
disable_created_metrics()  # type: ignore[no-untyped-call]

REQUESTS = Counter(
    "ipt_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "ipt_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COMMANDS = Counter(
    "ipt_commands",
    "Commands that reached the case application, by command name and outcome.",
    ["command", "outcome"],
)
GUARD_FAILURES = Counter(
    "ipt_guard_failures",
    "Unmet rules of refused commands (one per violation), by command and rule code.",
    ["command", "rule"],
)
RETRIES = Counter(
    "ipt_command_retries",
    "Commands decided again after losing a race for their case, by command.",
    ["command"],
)
PROJECTION_RESTARTS = Counter(
    "ipt_projection_restarts",
    "Projection runners replaced after they failed, by read model.",
    ["projection"],
)
POOL_CONNECTIONS = Gauge(
    "ipt_db_pool_connections",
    "PostgreSQL pool connections of the API processes, by pool and state "
    "(open, idle, max); summed over live workers.",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "ipt_db_pool_requests_waiting",
    "Requests waiting for a pooled connection, by pool; summed over live workers.",
    ["pool"],
    multiprocess_mode="livesum",
)

PoolSource = Callable[[], Iterable[tuple[str, Any]]]
"""Yields (name, psycopg_pool.ConnectionPool) pairs of this process."""

POOL_REFRESH_SECONDS = 1.0
_last_pool_refresh = 0.0
_pool_lock = threading.Lock()


def is_multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR))


def prepare_multiprocess_dir(path: str | None = None) -> tuple[str, bool]:
    """An empty folder for the workers' metric files; True if it was made here.

    prometheus-client needs the folder emptied before the workers start: files
    of an earlier run would be summed in.
    """
    if path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return str(folder), False
    return tempfile.mkdtemp(prefix="ipt-metrics-"), True


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def worker_exiting() -> None:
    """Drop this process's live gauges (pool use) from the shared files."""
    folder = os.environ.get(MULTIPROC_DIR)
    if folder:
        multiprocess.mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def observe_command(command: str, outcome: str, rules: Sequence[str]) -> None:
    COMMANDS.labels(command, outcome).inc()
    for rule in rules:
        GUARD_FAILURES.labels(command, rule).inc()


def observe_retry(command: str) -> None:
    RETRIES.labels(command).inc()


def observe_projection_restart(projection: str) -> None:
    PROJECTION_RESTARTS.labels(projection).inc()


def refresh_pools(source: PoolSource, *, force: bool = False) -> None:
    """Copy the pools' current use into the gauges, at most once a second."""
    global _last_pool_refresh
    now = time.monotonic()
    if not force and now - _last_pool_refresh < POOL_REFRESH_SECONDS:
        return
    if not _pool_lock.acquire(blocking=False):
        return
    try:
        _last_pool_refresh = now
        for name, pool in source():
            stats: dict[str, int] = pool.get_stats()
            POOL_CONNECTIONS.labels(name, "open").set(stats.get("pool_size", 0))
            POOL_CONNECTIONS.labels(name, "idle").set(stats.get("pool_available", 0))
            POOL_CONNECTIONS.labels(name, "max").set(stats.get("pool_max", 0))
            POOL_WAITING.labels(name).set(stats.get("requests_waiting", 0))
    finally:
        _pool_lock.release()


StatusSource = Callable[[], list[dict[str, Any]]]
RunningSource = Callable[[], dict[str, bool]]


class ScrapeTimeCollector(Collector):
    """Projection position and lag from the read models' status, read per scrape."""

    def __init__(
        self, status: StatusSource | None, running: RunningSource | None
    ) -> None:
        self.status = status
        self.running = running

    def collect(self) -> Iterator[Metric]:
        reachable = GaugeMetricFamily(
            "ipt_database_reachable",
            "1 if the scrape could read the projections' status from the database.",
        )
        if self.running is not None:
            running = GaugeMetricFamily(
                "ipt_projection_running",
                "1 if this process's runner of the read model is running.",
                labels=["projection"],
            )
            for name, alive in sorted(self.running().items()):
                running.add_metric([name], 1.0 if alive else 0.0)
            yield running
        if self.status is None:
            return
        try:
            rows = self.status()
        except Exception:
            reachable.add_metric([], 0.0)
            yield reachable
            return
        reachable.add_metric([], 1.0)
        yield reachable
        families = {
            "position": GaugeMetricFamily(
                "ipt_projection_position",
                "Log position of the last event the read model processed.",
                labels=["projection"],
            ),
            "head": GaugeMetricFamily(
                "ipt_projection_head",
                "Log position of the newest event, as seen with each read model.",
                labels=["projection"],
            ),
            "lag_events": GaugeMetricFamily(
                "ipt_projection_lag_events",
                "Case events the read model has yet to process (counted to 10001).",
                labels=["projection"],
            ),
            "lag_seconds": GaugeMetricFamily(
                "ipt_projection_lag_seconds",
                "Age of the oldest case event the read model has yet to process.",
                labels=["projection"],
            ),
        }
        for row in rows:
            for key, family in families.items():
                family.add_metric([row["projection"]], float(row[key]))
        yield from families.values()


class _Forward(Collector):
    """The process-wide registry, forwarded into a per-scrape registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def exposition(*extra: Collector) -> bytes:
    """The Prometheus text of every metric: this process's or every worker's."""
    registry = CollectorRegistry()
    if is_multiprocess():
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)
