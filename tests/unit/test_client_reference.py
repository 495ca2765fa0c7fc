"""The client index remembers every case of a client, also from events stored by
releases that kept only the open one."""

from __future__ import annotations

from uuid import UUID

import pytest

from ipt_workflow.domain.client_reference import ClientReference, ReferenceInUseError
from tests.unit.test_stored_events import STORED, mapper, stored

TOPIC = "ipt_workflow.domain.client_reference:ClientReference."


def test_events_stored_by_0_1_0_fold_to_every_case_of_the_client_oldest_first() -> None:
    rows = [r for r in STORED if r["topic"].startswith(TOPIC)]
    to_domain = mapper().to_domain_event

    ref = None
    for row in rows:
        ref = to_domain(stored(row)).mutate(ref)

    assert [r["topic"].removeprefix(TOPIC) for r in rows] == [
        "Registered",
        "Released",
        "Claimed",
    ]
    assert isinstance(ref, ClientReference)
    assert ref.case_ids == (UUID(int=1), UUID(int=2))
    assert ref.open_case_id == UUID(int=2)


class TestClaim:
    def test_a_released_reference_keeps_the_ended_case_beside_the_new_one(
        self,
    ) -> None:
        ref = ClientReference.register(UUID(int=7), UUID(int=1))
        ref.release(UUID(int=1))

        ref.claim(UUID(int=2))

        assert ref.case_ids == (UUID(int=1), UUID(int=2))
        assert [type(e).__name__ for e in ref.collect_events()] == [
            "Registered",
            "Released",
            "Claimed",
        ]

    def test_a_reference_held_by_an_open_case_cannot_be_claimed(self) -> None:
        ref = ClientReference.register(UUID(int=7), UUID(int=1))

        with pytest.raises(ReferenceInUseError):
            ref.claim(UUID(int=2))

        assert ref.case_ids == (UUID(int=1),)
