"""Request and response bodies of the subscription routes (api.md, Webhooks)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from ipt_workflow.api.schemas import Identifier
from ipt_workflow.application.webhooks import ALL_TYPES, EVENT_TYPES, MAX_URL_LENGTH

EventType = StrEnum(  # type: ignore[misc]
    "EventType", [(ALL_TYPES, ALL_TYPES)] + [(name, name) for name in EVENT_TYPES]
)
"""`*` (every type) or the name of an event a case records."""

Description = Annotated[
    str,
    StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"),
]
SUB_ID = "2f1c9a4e-5b7d-4e21-9c1a-7d3e8b6f0a12"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _example(**values: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [values]})


class SubscriptionCreate(BaseModel):
    """A new subscription: where to POST, and which events."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://ehr.example.org/hooks/ipt",
                    "event_types": ["*"],
                    "description": "EHR integration",
                }
            ]
        },
    )
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)] = (
        Field(
            description="an https URL whose host resolves to public addresses only "
            "(http and private addresses only where the operator allows them)"
        )
    )
    event_types: list[EventType] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES) + 1,
        description='`["*"]` for every event, or names of event types',
    )
    description: Description | None = Field(
        default=None, description="a note for the admins; at most 200 characters"
    )
    clinic_id: Identifier | None = Field(
        default=None,
        description="whose events; required when the token covers several clinics",
    )


class Redelivery(BaseModel):
    """Deliver again every subscribed event from a log position on."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"from_position": 1200}]}
    )
    from_position: Annotated[int, Strict()] = Field(
        ge=0, le=2**63 - 1, description="the first log position to deliver again"
    )


class SubscriptionView(BaseModel):
    """A subscription and how far its deliveries have come."""

    model_config = _example(
        id=SUB_ID,
        clinic_id="demo-clinic",
        url="https://ehr.example.org/hooks/ipt",
        event_types=["*"],
        description="EHR integration",
        status="active",
        created_at="2026-11-02T09:00:00+00:00",
        created_by="clinic-admin",
        position=1234,
        attempts=0,
        next_attempt_at=None,
        first_failed_at=None,
        failing_since=None,
    )
    id: str
    clinic_id: str
    url: str
    event_types: list[str]
    description: str | None
    status: Literal["active", "failing"] = Field(
        description="`failing` once an event was retried for the whole retry window; "
        "later events wait behind it"
    )
    created_at: str
    created_by: str
    position: int = Field(
        description="every event of the clinic up to this log position was handled"
    )
    attempts: int = Field(description="failed attempts on the next event to deliver")
    next_attempt_at: str | None
    first_failed_at: str | None
    failing_since: str | None


class SubscriptionCreated(SubscriptionView):
    """The new subscription with its signing secret, shown in this answer only."""

    model_config = _example(
        id=SUB_ID,
        clinic_id="demo-clinic",
        url="https://ehr.example.org/hooks/ipt",
        event_types=["*"],
        description=None,
        status="active",
        created_at="2026-11-02T09:00:00+00:00",
        created_by="clinic-admin",
        position=1234,
        attempts=0,
        next_attempt_at=None,
        first_failed_at=None,
        failing_since=None,
        secret=SECRET,
    )
    secret: str = Field(
        description="the Standard Webhooks secret (`whsec_…`) that signs every "
        "delivery; keep it: it is not shown again"
    )


class SubscriptionPage(BaseModel):
    """Subscriptions of the caller's clinics, oldest first."""

    items: list[SubscriptionView]
    next_after: str | None = Field(
        default=None, description="the cursor of the next page; absent on the last"
    )


class DeliveryView(BaseModel):
    """One attempt to deliver one event."""

    model_config = _example(
        id=88,
        event_id="7b0c2f4e-1d2a-4c55-9e0f-0a1b2c3d4e5f:3",
        position=1240,
        attempt=2,
        at="2026-11-02T09:00:05+00:00",
        outcome="http_error",
        status_code=500,
        error="HTTP 500",
        duration_ms=31,
        next_attempt_at="2026-11-02T09:01:05+00:00",
    )
    id: int
    event_id: str = Field(description="`<case_id>:<version>`, the CloudEvents id")
    position: int
    attempt: int = Field(description="1 for the first attempt at this event")
    at: str
    outcome: Literal["delivered", "http_error", "timeout", "network_error", "refused"]
    status_code: int | None = Field(description="the receiver's HTTP status, if any")
    error: str | None = Field(description="what went wrong, if it did")
    duration_ms: int | None
    next_attempt_at: str | None = Field(
        description="when this event is tried again (null once delivered)"
    )


class DeliveryPage(BaseModel):
    """A subscription's attempts, oldest first."""

    items: list[DeliveryView]
    next_after: int | None = Field(
        default=None, description="the cursor of the next page; absent on the last"
    )


class SubscriptionHealth(BaseModel):
    subscription_id: str
    clinic_id: str
    status: Literal["active", "failing"]
    position: int
    head: int
    lag_seconds: float = Field(
        description="age of the oldest event not yet handled (0 when caught up)"
    )
    attempts: int
    next_attempt_at: str | None
    failing_since: str | None


class DispatcherHealth(BaseModel):
    holder: str = Field(description="host and process id of the dispatcher")
    last_seen: str
    age_seconds: float


class WebhookStatus(BaseModel):
    """Every subscription's delivery state, and the dispatcher's heartbeat."""

    model_config = _example(
        failing=0,
        dispatcher={
            "holder": "host-1:4242",
            "last_seen": "2026-11-02T09:00:00+00:00",
            "age_seconds": 0.8,
        },
        items=[
            {
                "subscription_id": SUB_ID,
                "clinic_id": "demo-clinic",
                "status": "active",
                "position": 1234,
                "head": 1234,
                "lag_seconds": 0.0,
                "attempts": 0,
                "next_attempt_at": None,
                "failing_since": None,
            }
        ],
    )
    failing: int
    dispatcher: DispatcherHealth | None = Field(
        description="null when no dispatcher has ever run against this database"
    )
    items: list[SubscriptionHealth]
