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

from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.client_reference import ClientReference

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


def state_of(case: TherapyCase) -> Any:
    plain = {k: v for k, v in vars(case).items() if not k.startswith("_")}
    return json.loads(json.dumps(plain, default=str))


def event_classes(owner: type) -> set[str]:
    return {
        f"{owner.__module__}:{owner.__qualname__}.{name}"
        for name, value in vars(owner).items()
        if isinstance(value, type)
        and name not in ("Event", "PhaseEvent", "Created")
        and hasattr(value, "apply")
    }


def test_the_fixtures_hold_an_event_of_every_class_the_aggregates_record() -> None:
    topics = {row["topic"] for row in STORED}

    wanted = event_classes(TherapyCase) | event_classes(ClientReference)

    assert wanted <= topics, sorted(wanted - topics)


def test_every_stored_event_loads_as_the_class_its_topic_names() -> None:
    to_domain = mapper().to_domain_event

    for row in STORED:
        event = to_domain(stored(row))

        assert f"{type(event).__module__}:{type(event).__qualname__}" == row["topic"]
        assert event.originator_version == row["originator_version"]


def test_each_case_folds_to_the_state_the_earlier_release_folded() -> None:
    to_domain = mapper().to_domain_event
    for case_id, expected in PINNED["states"].items():
        events = [to_domain(stored(r)) for r in STORED if r["originator_id"] == case_id]
        case = None
        for event in events:
            case = event.mutate(case)

        assert isinstance(case, TherapyCase)
        assert state_of(case) == expected


def test_a_snapshot_of_the_earlier_release_restores_the_same_case() -> None:
    snapshot = mapper().to_domain_event(stored(PINNED["snapshot"]))
    assert isinstance(snapshot, Snapshot)

    case = snapshot.mutate(None)

    assert isinstance(case, TherapyCase)
    assert state_of(case) == PINNED["states"][str(case.id)]
