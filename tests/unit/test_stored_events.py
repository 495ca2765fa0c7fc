"""Events and snapshots written by an earlier release still load, and fold to the
same case: topics, shapes and the fold are part of the contract with auditors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.client_reference import ClientReference
from ipt_workflow.domain.codes import Transition
from ipt_workflow.domain.commands import DeclineFollowUp, OfferFollowUp
from tests.unit.builders import ctx, names, new_events

FIXTURES = Path(__file__).parent / "fixtures"
STORED = json.loads((FIXTURES / "events-0.1.0.json").read_text())
PINNED = json.loads((FIXTURES / "states-0.1.0.json").read_text())


def mapper() -> Any:
    return Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(row["originator_id"]),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=base64.b64decode(row["state"]),
    )


STATE_ADDED_AFTER_0_1_0 = {"ended_at", "legal_hold", "erasure"}
"""Issue 15's state: an older snapshot lacks it and the case reads it lazily."""


def state_of(case: TherapyCase) -> Any:
    plain = {
        k: v
        for k, v in vars(case).items()
        if not k.startswith("_") and k not in STATE_ADDED_AFTER_0_1_0
    }
    return json.loads(json.dumps(plain, default=str))


def event_classes(owner: type) -> set[str]:
    return {
        f"{owner.__module__}:{owner.__qualname__}.{name}"
        for name, value in vars(owner).items()
        if isinstance(value, type)
        and name not in ("Event", "PhaseEvent", "Created")
        and hasattr(value, "apply")
    }


SINCE_0_1_0 = {
    "OutcomeRevised",
    "FollowUpOfferRevised",
    "RiskFlagged",
    "RiskReviewed",
    "RelapseSuspected",
    "LegalHoldPlaced",
    "LegalHoldLifted",
    "CaseErased",
}
"""Events the first release did not have (so no stored event of theirs can exist)."""

ADDED_STATE = {
    "intake_on",
    "termination_tasks",
    "risk",
    "relapse",
    "outcome_revised_after_decision",
}
"""The case's state the first release did not have."""


def test_the_fixtures_hold_an_event_of_every_class_the_first_release_recorded() -> None:
    topics = {row["topic"] for row in STORED}
    new = {f"ipt_workflow.domain.case:TherapyCase.{n}" for n in SINCE_0_1_0}

    wanted = event_classes(TherapyCase) | event_classes(ClientReference)

    assert wanted - new <= topics, sorted(wanted - new - topics)


def as_first_release(state: Any) -> Any:
    """The state, as the first release folded it: without what it did not have."""
    old = {k: v for k, v in state.items() if k not in ADDED_STATE}
    if old.get("inventory"):
        inventory = dict(old["inventory"])
        inventory.pop("support_sources")
        inventory["relationships"] = [
            {k: v for k, v in r.items() if k not in ("current", "communication_style")}
            for r in inventory["relationships"]
        ]
        old["inventory"] = inventory
    old["measures"] = [
        {k: v for k, v in m.items() if k != "risk_item"} for m in old["measures"]
    ]
    return old


def test_every_stored_event_loads_as_a_class_that_is_stored_under_the_same_topic() -> (
    None
):
    to_domain = mapper().to_domain_event

    for row in STORED:
        event = to_domain(stored(row))

        assert get_topic(type(event)) == row["topic"]
        assert event.originator_version == row["originator_version"]


def test_each_case_folds_to_the_state_the_earlier_release_folded() -> None:
    to_domain = mapper().to_domain_event
    for case_id, expected in PINNED["states"].items():
        events = [to_domain(stored(r)) for r in STORED if r["originator_id"] == case_id]
        case = None
        for event in events:
            case = event.mutate(case)

        assert isinstance(case, TherapyCase)
        assert as_first_release(state_of(case)) == expected
        assert case.intake_on == case.created_on.date().isoformat()
        assert case.termination_tasks == (
            ["maintenance_discussed"] if case.maintenance_discussed else []
        )


def test_a_snapshot_of_the_earlier_release_restores_the_same_case() -> None:
    snapshot = mapper().to_domain_event(stored(PINNED["snapshot"]))
    assert isinstance(snapshot, Snapshot)

    case = snapshot.mutate(None)

    assert isinstance(case, TherapyCase)
    assert as_first_release(state_of(case)) == PINNED["states"][str(case.id)]
    assert (case.risk, case.relapse, case.outcome_revised_after_decision) == (
        None,
        None,
        False,
    )


def test_a_snapshot_and_a_replay_of_the_earlier_release_agree_on_the_new_state() -> (
    None
):
    to_domain = mapper().to_domain_event
    snapshot = to_domain(stored(PINNED["snapshot"]))
    from_snapshot = snapshot.mutate(None)
    replayed = None
    for row in STORED:
        if row["originator_id"] == str(from_snapshot.id):
            event = to_domain(stored(row))
            if event.originator_version <= from_snapshot.version:
                replayed = event.mutate(replayed)

    assert replayed is not None
    assert state_of(from_snapshot) == state_of(replayed)


def test_the_case_events_are_named_and_stored_as_nested_in_the_aggregate() -> None:
    for name, value in vars(TherapyCase).items():
        stored = name not in ("Created", "Event")
        if isinstance(value, type) and hasattr(value, "apply") and stored:
            assert get_topic(value) == f"ipt_workflow.domain.case:TherapyCase.{name}"
            assert value.__name__ == name


def given(case_id: str, until: str) -> TherapyCase:
    """A case folded from its stored events, up to (not including) the first `until`."""
    to_domain = mapper().to_domain_event
    case = None
    for row in STORED:
        if row["originator_id"] != case_id:
            continue
        event = to_domain(stored(row))
        if type(event).__name__ == until:
            break
        case = event.mutate(case)
    assert isinstance(case, TherapyCase)
    return case


class TestGivenEventsOfAnEarlierRelease:
    def test_when_maintenance_is_offered_after_a_remission_then_the_offer_is_recorded(
        self,
    ) -> None:
        case = given(str(UUID(int=4)), until="FollowUpOffered")

        case.handle(ctx(), OfferFollowUp.parse(kind="maintenance"))

        offered = new_events(case)
        assert names(offered) == ["FollowUpOffered"]
        assert (offered[0].kind, offered[0].automatic) == ("maintenance", False)

    def test_when_the_client_declines_then_the_case_may_close(self) -> None:
        case = given(str(UUID(int=2)), until="FollowUpDeclined")

        case.handle(ctx(), DeclineFollowUp.parse())

        assert names(new_events(case)) == ["FollowUpDeclined"]
        assert case.why_not()[Transition.close] == []
