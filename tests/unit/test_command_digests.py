"""A retried command is told from another by the digest stored with its events: the
digest of every command, as the API sends it, is pinned to what release 0.1.0
stored, so a retry from before an upgrade is still recognised."""

from __future__ import annotations

from typing import Any

import pytest

from ipt_workflow.domain import commands as c
from ipt_workflow.domain import erasure
from tests.unit.builders import TODAY

PINNED: dict[type[c.Command], tuple[dict[str, Any], str]] = {
    c.RecordRiskReview: (  # added in the second round; pinned from then on
        {"outcome": "safety_plan_made"},
        "94d3b8ab08c6f0290c02012c38db590dd7b08d90b8724858071513517b27bd32",
    ),
    c.OpenCase: (
        {
            "clinic_id": "clinic-1",
            "client_ref": "A-1042",
            "protocol": "ipt",
            "client_age": 34,
            "clinician_id": "t-7",
            "prior_episodes": 1,
        },
        "4ac577116708122675b4b7019f7dc26bfb2612a1aa578c328195450f5b7728ca",
    ),
    c.RecordInventory: (
        {
            "relationships": [
                {
                    "role": "partner",
                    "closeness": 1,
                    "supportive": False,
                    "conflict": True,
                    "changed_at_onset": False,
                    "deceased": False,
                }
            ],
            "attachment_style": "anxious",
            "communication_style": None,
        },
        "90da51b2efe5f55859c7063ef4f234973f974f443a1c313a8a9d9d41d22537a4",
    ),
    c.AgreeFocus: (
        {
            "primary_area": "role_dispute",
            "client_agreed": True,
            "secondary_area": None,
            "secondary_reason": None,
            "dispute_stage": "impasse",
            "note": None,
        },
        "c64a1a9f33ab1a4b915e30c90fffeb7d0195e79df0d56856437a72464c667945",
    ),
    c.ChangeDisputeStage: (
        {"stage": "renegotiation"},
        "7e79b47642d30ba5e71b0500f39a3fb5421c80d5cad48643a5537892c8cc6e88",
    ),
    c.AgreeContract: (
        {"sessions": 16, "frequency": "weekly"},
        "86ea69793037a4b9b184dda13f4deaa9fc3a37a3219e5774dd2e60064ddad167",
    ),
    c.RenegotiateContract: (
        {"sessions": 14, "reason": "other", "frequency": None, "note": "n"},
        "bdee32bfa8a23bce8fd0d3ad7791daa44407bc7a45ddf2a3a7150f475614baf1",
    ),
    c.RecordDeviation: (
        {"rule": "contract_range", "reason": "crisis", "note": None},
        "004370bc793d20575129705e14fe429760f95edc9ec17759808c5c9ba0189bb1",
    ),
    c.RecordMeasure: (
        {"instrument": "phq9", "score": 18, "measured_on": "2026-01-05"},
        "2fa67d49799ec3472304e747729f5928a01f95559f51ed3344d0c05a75490e7d",
    ),
    c.RecordSession: (
        {
            "held_on": "2026-01-05",
            "minutes": 50,
            "modality": "in_person",
            "attendees": ["client"],
            "kind": "therapy",
            "strategies": ["communication_analysis"],
            "communication_aspects": ["tone"],
        },
        "c0e49cbfae61ffa49c86f7c81791d573468978648517786bc80371fa9bd73739",
    ),
    c.RecordMissedSession: (
        {"scheduled_on": "2026-01-07", "reason": "client_cancelled", "note": None},
        "4c3f81e634e89b94fae57bafa51669680bc50a6bbe27bd811f75a454de841918",
    ),
    c.CorrectEntry: (
        {
            "entry": "measure",
            "reason": "wrong_details",
            "number": None,
            "measured_on": "2026-01-05",
            "instrument": "phq9",
            "note": None,
        },
        "dbf1ea34f82435003cf854ff8e861573d1507e7cfb5ad58f63aba2a2ff845116",
    ),
    c.Reassign: (
        {"clinician_id": "t-8"},
        "eac2bac697598b019bdcd9a91c5d71d0f936b902ea50e7137d9b2beec47ad379",
    ),
    c.StartMiddle: (
        {},
        "acac3102188cf3f1986a441e67e4264e04496a85a6ad6880518ab4b13a6767ab",
    ),
    c.StartEnd: (
        {},
        "e429af90cc86d40571b18ef9c6ef27750b8917b3646b59e2c305c64ba4e2132c",
    ),
    c.Conclude: (
        {"maintenance_discussed": True},
        "20aa153838c27c7bc4a3696919fc379e7a23a45f6e492a849c7f023b614c9242",
    ),
    c.OfferFollowUp: (
        {"kind": "maintenance"},
        "6ea5da3b20de25a343049fb3c8f778e858cdeab510524c322bf01ac837f32354",
    ),
    c.AcceptFollowUp: (
        {"sessions": 6, "frequency": "monthly"},
        "8bdb5f9adad5d21d40e778f6fe12fcac2de21269f661914ff6471dcf04cce5db",
    ),
    c.DeclineFollowUp: (
        {},
        "1e83d7f868c1cbb3386b75c58d418d90300594ef6a92be733914950b888ccc7b",
    ),
    c.Close: (
        {"reason": None, "note": None},
        "1b297aef49c40901a5db03225bff1bd9cb9dc7672789015d8e03065471f0612a",
    ),
    c.Withdraw: (
        {"reason": "other", "note": "n"},
        "ec9a1bec185080b0bac92c169b0736ebd01390aef130842d4b0f3e2764623fde",
    ),
    # Added after 0.1.0, pinned to the release that added them (issue 15).
    erasure.PlaceLegalHold: (
        {"reason": "MATTER-1"},
        "296c777b51d315416e0bc0cbc83c2ff2ad7beb3619b84b07eccb531ff9a19b4d",
    ),
    erasure.LiftLegalHold: (
        {"reason": "MATTER-1"},
        "263bbecf8053a7fb37cdba505cdf1e24fb419f1ff66a48df49dc7b6644fe4700",
    ),
    erasure.EraseCase: (
        {"basis": "data_subject_request", "reason": "DSR-1"},
        "2e04213c853eed668f6c85bd495e287d075d5e54ae08d25cedc6a3f1ed08a048",
    ),
}


@pytest.mark.parametrize("kind", list(PINNED), ids=lambda k: k.__name__)
def test_a_command_parsed_from_what_the_api_sends_keeps_its_digest(
    kind: type[c.Command],
) -> None:
    values, digest = PINNED[kind]

    command = kind.parse(today=TODAY, **values)

    assert command.digest() == digest


def test_every_command_a_case_records_is_pinned() -> None:
    recorded = {
        kind
        for kind in c.Command.__subclasses__()
        if kind not in (c.SetContract, c.DecideFollowUp)
    }

    assert recorded == set(PINNED)


def test_a_command_that_is_decided_by_the_case_is_digested_as_what_it_becomes() -> None:
    agreed = c.SetContract.parse(sessions=16, frequency="weekly").as_agreement()
    accepted = c.DecideFollowUp.parse(
        accepted=True, sessions=6, frequency="monthly"
    ).as_acceptance()

    assert agreed.digest() == PINNED[c.AgreeContract][1]
    assert accepted.digest() == PINNED[c.AcceptFollowUp][1]


@pytest.mark.parametrize(
    ("kind", "added"),
    [
        (c.OpenCase, {"intake_on": "2026-01-05"}),
        (c.RecordMeasure, {"risk_item": 1}),
        (c.Conclude, {"termination_tasks": ["progress_reviewed"]}),
        (c.RecordInventory, {"support_sources": ["friend"]}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_a_field_added_later_changes_the_digest_only_when_it_is_given(
    kind: type[c.Command], added: dict[str, Any]
) -> None:
    values, digest = PINNED[kind]

    with_it = kind.parse(today=TODAY, **values, **added)

    assert with_it.digest() != digest
