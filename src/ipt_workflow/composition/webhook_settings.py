"""The webhook settings (IPT_WEBHOOK_*, IPT_RUN_WEBHOOKS), kept apart from the rest.

`Settings` inherits them, so they are read, validated and reported like every other
setting; this module owns their names, defaults and checks.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from ipt_workflow.application.webhooks import parse_allow_hosts

DEFAULT_RETRY = "5,60,600,3600,21600,43200"


class WebhookSettings(BaseSettings):
    """Where webhooks may go, how often they are retried, and who sends them."""

    run_webhooks: bool = False
    """Run the webhook dispatcher inside the API process (one worker only)."""

    webhook_allow_hosts: str = ""
    """Host names, addresses or networks (comma-separated) that may be called over
    http or at private addresses."""

    webhook_retry_seconds: str = DEFAULT_RETRY
    """Waits after the 1st, 2nd, ... failed attempt, in seconds; the last repeats."""

    webhook_retry_for_seconds: float = Field(default=3 * 24 * 3600.0, gt=0)
    """How long an event is retried before its subscription is `failing`."""

    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """A 2xx within this long acknowledges an event; later is a failure."""

    webhook_workers: int = Field(default=16, ge=1, le=256)
    """Subscriptions delivered to at once by the dispatcher."""

    webhook_poll_seconds: float = Field(default=0.25, gt=0, le=10)
    """How often the dispatcher looks for new events and due retries."""

    webhook_keep_deliveries_days: float = Field(default=30.0, gt=0)
    """How long the delivery log keeps each attempt."""

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _valid_hosts(cls, text: str) -> str:
        parse_allow_hosts(text)
        return text

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _valid_schedule(cls, text: str) -> str:
        retry_schedule(text)
        return text


def retry_schedule(text: str) -> tuple[float, ...]:
    try:
        waits = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError("comma-separated seconds, such as 5,60,600") from None
    if not waits or any(not 0 < w <= 7 * 86400 for w in waits):
        raise ValueError("at least one wait, each over 0 and at most 7 days")
    return waits
