"""The request an Idempotency-Key is digested over stays what release 0.1.0 digested
(its whole body as JSON, defaults filled in), so that a retry sent before an upgrade
is still recognised after it; fields added since count only when given."""

from __future__ import annotations

from typing import Any

import pytest

from ipt_workflow.api import schemas

# What release 0.1.0 dumped for each body (model_dump(mode="json")).
FIRST_RELEASE: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "CaseCreate": (
        {
            "client_ref": "A-1",
            "protocol": "ipt",
            "client_age": 34,
            "clinician_id": "t-7",
        },
        {
            "client_age": 34,
            "client_ref": "A-1",
            "clinician_id": "t-7",
            "on_behalf_of": None,
            "prior_episodes": 0,
            "protocol": "ipt",
        },
    ),
    "InventoryRecord": (
        {"relationships": [{"role": "partner", "closeness": 1, "conflict": True}]},
        {
            "attachment_style": None,
            "communication_style": None,
            "on_behalf_of": None,
            "relationships": [
                {
                    "changed_at_onset": False,
                    "closeness": 1,
                    "conflict": True,
                    "deceased": False,
                    "on_behalf_of": None,
                    "role": "partner",
                    "supportive": False,
                }
            ],
        },
    ),
    "MeasureRecord": (
        {"instrument": "phq9", "score": 18, "measured_on": "2026-10-01"},
        {
            "instrument": "phq9",
            "measured_on": "2026-10-01",
            "on_behalf_of": None,
            "score": 18,
        },
    ),
    "SessionRecord": (
        {
            "held_on": "2026-10-01",
            "minutes": 50,
            "modality": "video",
            "attendees": ["client"],
        },
        {
            "attendees": ["client"],
            "communication_aspects": [],
            "held_on": "2026-10-01",
            "kind": "therapy",
            "minutes": 50,
            "modality": "video",
            "on_behalf_of": None,
            "strategies": [],
        },
    ),
    "CorrectionRecord": (
        {"entry": "session", "number": 1, "reason": "duplicate_entry"},
        {
            "entry": "session",
            "instrument": None,
            "measured_on": None,
            "note": None,
            "number": 1,
            "on_behalf_of": None,
            "reason": "duplicate_entry",
        },
    ),
    "TransitionBody": (
        {"maintenance_discussed": True},
        {
            "maintenance_discussed": True,
            "note": None,
            "on_behalf_of": None,
            "reason": None,
        },
    ),
    "ContractAgree": (
        {"sessions": 16, "frequency": "weekly"},
        {
            "frequency": "weekly",
            "note": None,
            "on_behalf_of": None,
            "reason": None,
            "sessions": 16,
        },
    ),
}


@pytest.mark.parametrize("name", list(FIRST_RELEASE))
def test_a_body_of_the_first_release_is_digested_as_it_was(name: str) -> None:
    given, dumped = FIRST_RELEASE[name]

    body = getattr(schemas, name)(**given)

    assert schemas.stable_dump(body) == dumped


def test_a_field_added_since_is_digested_when_it_is_given() -> None:
    given, dumped = FIRST_RELEASE["MeasureRecord"]

    body = schemas.MeasureRecord(**given, risk_item=1)

    assert schemas.stable_dump(body) == {**dumped, "risk_item": 1}


def test_a_default_that_became_null_is_digested_as_it_first_was() -> None:
    """conclude's `maintenance_discussed` defaulted to false in 0.1.0; it is null now
    (a generated client sends it), and an empty body still digests as then."""
    body = schemas.TransitionBody()

    assert schemas.stable_dump(body) == {
        "maintenance_discussed": False,
        "note": None,
        "on_behalf_of": None,
        "reason": None,
    }
