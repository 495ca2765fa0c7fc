"""The webhook routes of api.md: an admin's subscriptions, their delivery log and
redelivery; the delivery status for ops."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from ipt_workflow.api import webhook_schemas as w
from ipt_workflow.api.deps import Principal, ServicesDep, idempotency_key, require
from ipt_workflow.api.errors import ApiError, responses
from ipt_workflow.application.webhooks import Webhooks
from ipt_workflow.domain.errors import FieldError, InvalidInput
from ipt_workflow.storage.webhooks import Claim, Subscription, Written

router = APIRouter(prefix="/subscriptions", tags=["webhooks"])
status_router = APIRouter(tags=["webhooks"])

Admin = Annotated[Principal, Depends(require("admin"))]
Watcher = Annotated[Principal, Depends(require("ops", "admin"))]
Key = Annotated[str | None, Depends(idempotency_key)]

WRITE_ERRORS = responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
READ_ERRORS = responses(401, 403, 404, 422, 429, 503)
LIST_ERRORS = responses(401, 403, 422, 429, 503)
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this answers a retried request as the first time",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
LOCATION = {
    "Location": {
        "description": "the new subscription's path",
        "schema": {"type": "string"},
    }
}


def _webhooks(svc: ServicesDep) -> Webhooks:
    if svc.webhooks is None:
        raise ApiError(503, "unavailable", "Webhooks are not configured here.")
    return svc.webhooks


WebhooksDep = Annotated[Webhooks, Depends(_webhooks)]


def _time(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")


def view(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "clinic_id": sub.clinic_id,
        "url": sub.url,
        "event_types": list(sub.event_types),
        "description": sub.description,
        "status": sub.status,
        "created_at": _time(sub.created_at),
        "created_by": sub.created_by,
        "position": sub.position,
        "attempts": sub.attempts,
        "next_attempt_at": _time(sub.next_attempt_at),
        "first_failed_at": _time(sub.first_failure_at),
        "failing_since": _time(sub.failing_since),
    }


def _claim(
    request: Request, key: str | None, scope: str, body: dict[str, Any] | None
) -> Claim | None:
    """The Idempotency-Key of a write, scoped to the subscription's clinic; the
    digest covers method, path and the parsed body."""
    if key is None:
        return None
    asked = {"method": request.method, "path": request.url.path, "body": body}
    digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
    return Claim(scope, key, digest)


def _replayed(written: Written) -> dict[str, str]:
    return {"Idempotent-Replayed": "true"} if written.replayed else {}


def _clinic_of(principal: Principal, asked: str | None) -> str:
    """The clinic a new subscription is for: named, or the token's only one."""
    clinics = principal.clinics
    if asked is not None:
        if clinics is not None and asked not in clinics:
            raise InvalidInput(
                [FieldError("clinic_id", "this token does not cover that clinic")]
            )
        return asked
    if clinics is None or len(clinics) != 1:
        raise InvalidInput(
            [FieldError("clinic_id", "required: this token covers several clinics")]
        )
    return next(iter(clinics))


@router.post(
    "",
    status_code=201,
    response_model=w.SubscriptionCreated,
    responses={201: {"headers": {**LOCATION, **REPLAYED}}, **WRITE_ERRORS},
)
def create_subscription(
    body: w.SubscriptionCreate,
    principal: Admin,
    webhooks: WebhooksDep,
    request: Request,
    key: Key = None,
) -> JSONResponse:
    """Subscribe a URL to a clinic's events; the answer holds the signing secret."""
    clinic_id = _clinic_of(principal, body.clinic_id)
    written = webhooks.subscribe(
        clinic_id=clinic_id,
        url=body.url,
        types=[str(t.value) for t in body.event_types],
        description=body.description,
        actor=principal.actor,
        claim=_claim(request, key, clinic_id, body.model_dump(mode="json")),
    )
    sub = webhooks.get(written.subscription_id, None, deleted=True)
    return JSONResponse(
        {**view(sub), "secret": sub.secret},
        status_code=written.status,
        headers={"Location": f"/subscriptions/{sub.id}", **_replayed(written)},
    )


@router.get(
    "",
    response_model=w.SubscriptionPage,
    response_model_exclude_unset=True,
    responses=LIST_ERRORS,
)
def list_subscriptions(
    principal: Admin,
    webhooks: WebhooksDep,
    after: Annotated[UUID | None, Query(description="the last id of a page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """The subscriptions of the caller's clinics, oldest first."""
    found = webhooks.page(
        principal.clinics, None if after is None else str(after), limit + 1
    )
    page: dict[str, Any] = {"items": [view(s) for s in found[:limit]]}
    if len(found) > limit:
        page["next_after"] = found[limit - 1].id
    return page


@router.get(
    "/{subscription_id}", response_model=w.SubscriptionView, responses=READ_ERRORS
)
def get_subscription(
    subscription_id: UUID, principal: Admin, webhooks: WebhooksDep
) -> dict[str, Any]:
    """One subscription of the caller's clinics, and how far its deliveries are."""
    return view(webhooks.get(str(subscription_id), principal.clinics))


@router.delete(
    "/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"headers": REPLAYED}, **WRITE_ERRORS},
)
def delete_subscription(
    subscription_id: UUID,
    principal: Admin,
    webhooks: WebhooksDep,
    request: Request,
    key: Key = None,
) -> Response:
    """Delete a subscription: no delivery starts after this answer."""
    sub = _visible_or_replayed(webhooks, str(subscription_id), principal, key)
    written = webhooks.unsubscribe(
        str(subscription_id), principal.clinics, _claim(request, key, sub, None)
    )
    return Response(status_code=204, headers=_replayed(written))


def _visible_or_replayed(
    webhooks: Webhooks, sub_id: str, principal: Principal, key: str | None
) -> str:
    """The clinic of a subscription the caller may change (a deleted one only for
    a retried request, whose first answer it gets)."""
    sub = webhooks.get(sub_id, principal.clinics, deleted=key is not None)
    return sub.clinic_id


@router.get(
    "/{subscription_id}/deliveries",
    response_model=w.DeliveryPage,
    response_model_exclude_unset=True,
    responses=READ_ERRORS,
)
def deliveries(
    subscription_id: UUID,
    principal: Admin,
    webhooks: WebhooksDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Every attempt to deliver to the subscription, oldest first."""
    found = webhooks.deliveries(
        str(subscription_id), principal.clinics, after, limit + 1
    )
    page: dict[str, Any] = {
        "items": [
            {
                "id": d.id,
                "event_id": d.event_id,
                "position": d.position,
                "attempt": d.attempt,
                "at": _time(d.at),
                "outcome": d.outcome,
                "status_code": d.status_code,
                "error": d.error,
                "duration_ms": d.duration_ms,
                "next_attempt_at": _time(d.next_attempt_at),
            }
            for d in found[:limit]
        ]
    }
    if len(found) > limit:
        page["next_after"] = found[limit - 1].id
    return page


@router.post(
    "/{subscription_id}/redeliver",
    status_code=202,
    response_model=w.SubscriptionView,
    responses={202: {"headers": REPLAYED}, **WRITE_ERRORS},
)
def redeliver(
    subscription_id: UUID,
    body: w.Redelivery,
    principal: Admin,
    webhooks: WebhooksDep,
    request: Request,
    key: Key = None,
) -> JSONResponse:
    """Deliver every subscribed event from `from_position` on again, in order."""
    sub_id = str(subscription_id)
    clinic = _visible_or_replayed(webhooks, sub_id, principal, key)
    written = webhooks.redeliver(
        sub_id,
        principal.clinics,
        body.from_position,
        _claim(request, key, clinic, body.model_dump(mode="json")),
    )
    sub = webhooks.get(sub_id, None, deleted=True)
    return JSONResponse(view(sub), status_code=202, headers=_replayed(written))


@status_router.get(
    "/webhooks/status", response_model=w.WebhookStatus, responses=LIST_ERRORS
)
def webhook_status(principal: Watcher, webhooks: WebhooksDep) -> dict[str, Any]:
    """Delivery state of every subscription of the caller's clinics; no URLs."""
    head = webhooks.cases.recorder.max_notification_id() or 0
    items = []
    for sub in webhooks.page(principal.clinics, None, 10_000):
        lag = webhooks.lag(sub, head)
        items.append(
            {
                "subscription_id": sub.id,
                "clinic_id": sub.clinic_id,
                "status": sub.status,
                "position": sub.position,
                "head": head,
                "lag_seconds": lag.seconds,
                "attempts": sub.attempts,
                "next_attempt_at": _time(sub.next_attempt_at),
                "failing_since": _time(sub.failing_since),
            }
        )
    beat = webhooks.store.last_beat()
    dispatcher = None
    if beat is not None:
        now = datetime.now(UTC).timestamp()
        dispatcher = {
            "holder": beat[0],
            "last_seen": _time(beat[1]),
            "age_seconds": round(max(now - beat[1], 0.0), 3),
        }
    return {
        "failing": sum(1 for i in items if i["status"] == "failing"),
        "dispatcher": dispatcher,
        "items": items,
    }
