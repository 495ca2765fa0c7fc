"""The course state machine of test_case_stateful.py, where an ended case may also
be put under a legal hold and erased: every invariant of a course still holds, a
refused erasure changes nothing, and an erased case refuses every command, knows
nothing of its client and rebuilds the same from its events."""

from __future__ import annotations

import pickle
from datetime import timedelta
from typing import Any

from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.erasure import EraseCase
from ipt_workflow.domain.errors import DomainError, GuardFailed, InvalidInput
from ipt_workflow.domain.protocols import Protocol
from tests.unit.test_case_stateful import TODAY, CaseMachine, snapshot

CLIENT_FIELDS = (
    "client_ref",
    "intake_on",
    "inventory",
    "focus",
    "contract",
    "sessions",
    "missed_sessions",
    "measures",
    "risk",
    "relapse",
    "termination_tasks",
    "offers",
    "follow_up_contract",
)


class ErasingCaseMachine(CaseMachine):
    def __init__(self) -> None:
        super().__init__()
        self._protocol: Protocol | None = None
        self.erasures: list[tuple[Any, Any, Exception | None]] = []

    @property
    def protocol(self) -> Protocol:
        # An erased case forgets its protocol; the course's invariants still ask.
        if self._protocol is None or self.case.erased is None:
            self._protocol = self.case.protocol
        return self._protocol

    @rule(
        basis=st.sampled_from(["retention_expired", "data_subject_request"]),
        hold=st.sampled_from([None, "place", "lift"]),
        years_left=st.integers(-1, 1),
    )
    def hold_or_erase(self, basis: str, hold: str | None, years_left: int) -> None:
        """A legal hold placed or lifted, then an erasure, whatever the phase."""
        self._new_step()
        _ = self.protocol
        if hold == "place":
            self.send("place_legal_hold", {"reason": "MATTER-1"})
        elif hold == "lift":
            self.send("lift_legal_hold", {"reason": "MATTER-1"})
        case = self.case
        until = TODAY + timedelta(days=365 * years_left)
        before = snapshot(case)
        was = (case.is_final, case.held is not None, case.erased is not None)
        try:
            command = EraseCase.parse(basis=basis, reason="DSR-1")
            case.erase_case(self._ctx(), command, until)
        except DomainError as refused:
            self.erasures.append((was, (basis, until), refused))
            assert snapshot(case) == before, "a refused erasure changed the case"
            note(f"erase_case({basis}, until={until})  # {refused}")
            return
        self.erasures.append((was, (basis, until), None))
        # The open risk flag is client data: the erased case forgets it, and so
        # does the model (an_erased_case_knows_nothing_of_its_client checks it).
        self.risk = None
        note(f"erase_case({basis}, until={until})  # erased, phase={case.phase}")
        event("erased")

    @invariant()
    def erasure_only_of_an_ended_case_not_held_after_retention_or_on_request(
        self,
    ) -> None:
        for (final, held, erased), (basis, until), refused in self.erasures[-1:]:
            if erased:
                assert refused is None  # again: nothing more to do
                continue
            allowed = final and not held
            allowed = allowed and (basis == "data_subject_request" or until <= TODAY)
            assert (refused is None) == allowed, (final, held, basis, until, refused)
            if refused is not None:
                assert isinstance(refused, GuardFailed)

    @invariant()
    def an_erased_case_knows_nothing_of_its_client(self) -> None:
        case = self.case
        if case.erased is None:
            return
        for name in CLIENT_FIELDS:
            assert not getattr(case, name), name
        assert case.is_final

    @invariant()
    def nothing_is_dated_more_than_30_days_before_the_intake(self) -> None:
        # An erased case has no intake date left, and no dates to compare with it.
        if self.case.erased is None:
            super().nothing_is_dated_more_than_30_days_before_the_intake()

    @invariant()
    def refused_commands_and_replays_change_nothing(self) -> None:
        """As for a course; and on an erased case every command, a retry of an
        earlier one too, is refused as `case.erased` and changes nothing."""
        on_erased = [a for a in self.attempts if _erased(a.before)]
        for a in on_erased:
            # Bad input is named before the case is asked (422 over HTTP).
            assert isinstance(a.error, GuardFailed | InvalidInput), (a.name, a.error)
            if isinstance(a.error, GuardFailed):
                assert [v.rule for v in a.error.violations] == ["case.erased"]
            assert a.after is not None and a.after.state == a.before.state
        kept = self.attempts
        self.attempts = [a for a in kept if not _erased(a.before)]
        try:
            super().refused_commands_and_replays_change_nothing()
        finally:
            self.attempts = kept

    @invariant()
    def saved_events_rebuild_the_same_case(self) -> None:
        super().saved_events_rebuild_the_same_case()
        rebuilt: TherapyCase = self.app.repository.get(self.case.id)
        assert rebuilt.erased == self.case.erased


def _erased(before: Any) -> bool:
    return pickle.loads(before.state).get("erasure") is not None


TestErasingCaseMachine = ErasingCaseMachine.TestCase
TestErasingCaseMachine.settings = CaseMachine.TestCase.settings
