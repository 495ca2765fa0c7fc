"""What the webhook dispatcher tells operations: log lines, counters, and the gauges
of every subscription's state read at scrape time.

Labels are outcomes and statuses only; subscription and clinic ids appear in log
lines and in `GET /webhooks/status`, never as metric labels (D32).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ipt_workflow.application.webhooks import Webhooks
from ipt_workflow.storage.webhooks import Delivery, Subscription

log = structlog.get_logger("ipt_workflow.webhooks")


class _Metrics:
    """The dispatcher's counters, made on first use: a metric without labels writes
    its file at once in multiprocess mode, and `serve` imports this module before it
    prepares that folder."""

    def __init__(self) -> None:
        self.deliveries = Counter(
            "ipt_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, http_error, timeout, "
            "network_error, refused).",
            ["outcome"],
        )
        self.duration = Histogram(
            "ipt_webhook_delivery_duration_seconds",
            "Time one delivery attempt took, from connecting to the receiver's answer.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.lag = Histogram(
            "ipt_webhook_delivery_lag_seconds",
            "Time from an event's recording to its acknowledged delivery.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600, 21600, 86400),
        )
        self.failing = Counter(
            "ipt_webhook_subscriptions_failed",
            "Subscriptions that turned `failing` (retried past the retry window).",
        )


_made: list[_Metrics] = []
_made_lock = threading.Lock()


def _metrics() -> _Metrics:
    with _made_lock:
        if not _made:
            _made.append(_Metrics())
        return _made[0]


class WebhookLog:
    """The dispatcher's observer: one log line and counter per attempt."""

    def __init__(self) -> None:
        # httpx logs every request's URL at INFO; a receiver's URL may carry a
        # token in its path or query, and the attempt line says all that matters.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        _metrics()

    def attempted(
        self, sub: Subscription, delivery: Delivery, lag_seconds: float | None
    ) -> None:
        metrics = _metrics()
        metrics.deliveries.labels(delivery.outcome).inc()
        metrics.duration.observe((delivery.duration_ms or 0) / 1000)
        fields: dict[str, Any] = {
            "subscription_id": sub.id,
            "clinic_id": sub.clinic_id,
            "event_id": delivery.event_id,
            "position": delivery.position,
            "attempt": delivery.attempt,
            "outcome": delivery.outcome,
            "status_code": delivery.status_code,
            "duration_ms": delivery.duration_ms,
        }
        if lag_seconds is not None:
            metrics.lag.observe(max(lag_seconds, 0.0))
            log.debug("webhook_delivered", **fields)
            return
        if delivery.next_attempt_at is not None:
            fields["retry_in_seconds"] = round(
                delivery.next_attempt_at - time.time(), 1
            )
        log.warning("webhook_attempt_failed", reason=delivery.error, **fields)

    def failing(self, sub: Subscription, event_id: str) -> None:
        _metrics().failing.inc()
        log.error(
            "webhook_subscription_failing",
            subscription_id=sub.id,
            clinic_id=sub.clinic_id,
            event_id=event_id,
        )

    def recovered(self, sub: Subscription) -> None:
        log.info(
            "webhook_subscription_recovered",
            subscription_id=sub.id,
            clinic_id=sub.clinic_id,
        )

    def dispatch_failed(self, error: BaseException, retry_in: float) -> None:
        log.error(
            "webhook_dispatch_failed",
            error=type(error).__name__,
            retry_in_seconds=retry_in,
        )

    def leading(self, leader: bool) -> None:
        log.log(
            logging.INFO,
            "webhook_dispatcher_leading" if leader else "webhook_dispatcher_standby",
        )


class WebhookGauges(Collector):
    """Subscriptions by status, the oldest undelivered event's age and the
    dispatcher's heartbeat, read from the store at scrape time (any process)."""

    def __init__(self, webhooks: Webhooks) -> None:
        self.webhooks = webhooks

    def collect(self) -> Iterator[Metric]:
        try:
            subs = self.webhooks.store.live()
            beat = self.webhooks.store.last_beat()
            head = self.webhooks.cases.recorder.max_notification_id() or 0
            oldest = max(
                (self.webhooks.lag(sub, head).seconds for sub in subs), default=0.0
            )
        except Exception:
            return  # ipt_database_reachable already says why
        by_status = GaugeMetricFamily(
            "ipt_webhook_subscriptions",
            "Webhook subscriptions by status (active, failing).",
            labels=["status"],
        )
        for status in ("active", "failing"):
            by_status.add_metric(
                [status], float(sum(1 for s in subs if s.status == status))
            )
        yield by_status
        yield GaugeMetricFamily(
            "ipt_webhook_lag_seconds",
            "Age of the oldest event some subscription has not handled yet.",
            value=oldest,
        )
        if beat is not None:
            yield GaugeMetricFamily(
                "ipt_webhook_dispatcher_heartbeat_age_seconds",
                "Seconds since the delivering dispatcher last wrote its heartbeat.",
                value=max(time.time() - beat[1], 0.0),
            )
