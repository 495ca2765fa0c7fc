"""What the console and the metrics read of webhook deliveries: one small interface.

The subscriptions store (webhooks, built separately) implements
`WebhookStatusSource`; the composition root puts it on `Services.webhook_status`.
Until it does, the console shows "webhooks: not configured" (D84). A row carries ids,
a status and numbers, never a URL's secret or anything of a client.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

DeliveryState = Literal["active", "failing", "paused"]


@dataclass(frozen=True)
class WebhookStatus:
    """The delivery state of one subscription."""

    subscription_id: str
    clinic_id: str
    status: DeliveryState
    pending_events: int
    """Events of the subscription not yet acknowledged."""
    lag_seconds: float
    """Age of the oldest unacknowledged event (0 when none waits)."""
    last_delivered_at: str | None
    """RFC 3339 time of the last acknowledged delivery, if any."""


class WebhookStatusSource(Protocol):
    """Anything that can tell the delivery state of the subscriptions of clinics."""

    def webhook_statuses(
        self, clinics: Collection[str] | None
    ) -> list[WebhookStatus]: ...
