"""The phase transitions and the commands around them: start middle, start end,
conclude, follow-up, close, withdraw, renegotiation, reassignment, dispute stage;
refusals that record nothing, command ids, event metadata and "why not"
(domain.md §2, §4, §6; decisions D3, D4, D7)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import DeviationRule, Transition
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    ChangeDisputeStage,
    Close,
    CommandResult,
    Conclude,
    CorrectEntry,
    DeclineFollowUp,
    OfferFollowUp,
    OpenCase,
    Reassign,
    RecordDeviation,
    RecordInventory,
    RecordMeasure,
    RecordSession,
    RenegotiateContract,
    StartEnd,
    StartMiddle,
    Withdraw,
)
from ipt_workflow.domain.errors import CommandIdReused, GuardFailed, InvalidInput
from tests.unit.builders import (
    PROTOCOL_NAMES,
    SPECS,
    TODAY,
    agree_focus,
    beginning_ready,
    closed,
    concluded,
    concluded_in_remission,
    concluded_with_referral,
    ctx,
    fields_of,
    first_session,
    in_end,
    in_follow_up,
    in_middle,
    measure,
    names,
    new_events,
    open_case,
    ready_to_conclude,
    record_inventory,
    recorded,
    rules_of,
    session,
    sessions,
    withdrawn,
)

Build = Callable[[], TherapyCase]


def beginning_without(missing: str, protocol: str = "ipt") -> TherapyCase:
    """A beginning-phase case with every start_middle precondition but one."""
    case = open_case(protocol)
    if missing not in ("inventory", "focus"):
        record_inventory(case)
        agree_focus(case)
    if missing == "focus":
        record_inventory(case)
    if missing != "contract":
        case.agree_contract(ctx(), AgreeContract.parse())
    if missing != "baseline":
        measure(case, 20)
    if missing != "session":
        first_session(case)
    return case


def fb_ipt_without_parent() -> TherapyCase:
    """An fb-ipt case ready for the middle but for a session with a parent."""
    case = beginning_without("session", "fb-ipt")
    session(case, attendees=("client",))
    return case


def middle_at(protocol: str, last_number: int, **details: object) -> TherapyCase:
    """A middle-phase case whose last counted session is `last_number`."""
    case = in_middle(protocol, **details)
    sessions(case, last_number - case.counted_sessions())
    return case


def end_started_at(last_middle: int) -> TherapyCase:
    """An ipt case (16 sessions) whose end phase began after session `last_middle`."""
    case = middle_at("ipt", last_middle)
    case.start_end(ctx(), StartEnd.parse())
    return case


class TestStartMiddle:
    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_start_middle_with_every_rule_met_moves_to_the_middle_phase(
        self, protocol: str
    ) -> None:
        case = beginning_ready(protocol)
        new_events(case)

        case.start_middle(ctx(), StartMiddle.parse())

        assert case.phase == "middle"
        assert names(new_events(case)) == ["MiddlePhaseStarted"]

    @pytest.mark.parametrize(
        ("missing", "named"),
        [
            ("session", ["beginning_session_required"]),
            ("baseline", ["baseline_measure_required"]),
            ("focus", ["focus_required"]),
            ("contract", ["contract_required"]),
            # The focus needs the inventory, so neither exists without it.
            ("inventory", ["inventory_required", "focus_required"]),
        ],
    )
    def test_start_middle_names_each_missing_precondition(
        self, missing: str, named: list[str]
    ) -> None:
        case = beginning_without(missing)
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.start_middle(ctx(), StartMiddle.parse())

        assert rules_of(refused.value) == named
        assert case.phase == "beginning"
        assert recorded(case) == before

    def test_start_middle_lists_every_missing_precondition_together(self) -> None:
        case = open_case("fb-ipt")

        with pytest.raises(GuardFailed) as refused:
            case.start_middle(ctx(), StartMiddle.parse())

        assert rules_of(refused.value) == [
            "beginning_session_required",
            "baseline_measure_required",
            "inventory_required",
            "focus_required",
            "contract_required",
            "parent_session_required",
        ]

    def test_fb_ipt_without_a_parent_session_cannot_start_the_middle(self) -> None:
        case = fb_ipt_without_parent()

        with pytest.raises(GuardFailed) as refused:
            case.start_middle(ctx(), StartMiddle.parse())

        assert rules_of(refused.value) == ["parent_session_required"]

    def test_fb_ipt_with_a_parent_session_starts_the_middle(self) -> None:
        case = fb_ipt_without_parent()
        session(case, attendees=("parent",))

        case.start_middle(ctx(), StartMiddle.parse())

        assert case.phase == "middle"

    def test_fb_ipt_with_its_parent_session_voided_cannot_start_the_middle(
        self,
    ) -> None:
        case = beginning_without("session", "fb-ipt")
        session(case, attendees=("client",))
        session(case, attendees=("client", "parent"))
        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="session", reason="wrong_details", number=2, today=TODAY
            ),
        )

        with pytest.raises(GuardFailed) as refused:
            case.start_middle(ctx(), StartMiddle.parse())

        assert rules_of(refused.value) == ["parent_session_required"]

    def test_ipt_a_starts_the_middle_without_a_parent_session(self) -> None:
        case = beginning_without("session", "ipt-a")
        session(case, attendees=("client",))

        case.start_middle(ctx(), StartMiddle.parse())

        assert case.phase == "middle"

    def test_a_voided_only_beginning_session_does_not_count(self) -> None:
        case = beginning_ready("ipt")
        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="session", reason="did_not_take_place", number=1, today=TODAY
            ),
        )

        with pytest.raises(GuardFailed) as refused:
            case.start_middle(ctx(), StartMiddle.parse())

        assert rules_of(refused.value) == ["beginning_session_required"]

    def test_start_middle_from_the_middle_phase_is_refused(self) -> None:
        case = in_middle()

        with pytest.raises(GuardFailed) as refused:
            case.start_middle(ctx(), StartMiddle.parse())

        assert rules_of(refused.value) == ["wrong_phase"]


class TestStartEnd:
    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_start_end_is_allowed_with_the_most_sessions_the_end_phase_takes(
        self, protocol: str
    ) -> None:
        spec = SPECS[protocol]
        case = middle_at(protocol, spec.default_contract - spec.end_max)

        case.start_end(ctx(), StartEnd.parse())

        assert case.phase == "end"
        assert case.acute_sessions_remaining == spec.end_max

    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_start_end_is_allowed_with_the_fewest_sessions_the_end_phase_takes(
        self, protocol: str
    ) -> None:
        spec = SPECS[protocol]
        case = middle_at(protocol, spec.middle_last)

        case.start_end(ctx(), StartEnd.parse())

        assert case.phase == "end"
        assert case.acute_sessions_remaining == spec.end_min

    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_start_end_with_more_sessions_left_than_the_end_phase_takes_is_refused(
        self, protocol: str
    ) -> None:
        spec = SPECS[protocol]
        case = middle_at(protocol, spec.default_contract - spec.end_max - 1)
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.start_end(ctx(), StartEnd.parse())

        assert rules_of(refused.value) == ["sessions_left_outside_end_range"]
        assert recorded(case) == before

    def test_start_end_without_a_middle_session_is_refused(self) -> None:
        case = beginning_ready("ipt")
        sessions(case, 2)
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )
        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=6, reason="client_request")
        )
        case.start_middle(ctx(), StartMiddle.parse())

        with pytest.raises(GuardFailed) as refused:
            case.start_end(ctx(), StartEnd.parse())

        assert case.acute_sessions_remaining == 3
        assert rules_of(refused.value) == ["middle_session_required"]

    def test_start_end_lists_both_unmet_rules_together(self) -> None:
        case = in_middle("ipt")

        with pytest.raises(GuardFailed) as refused:
            case.start_end(ctx(), StartEnd.parse())

        assert rules_of(refused.value) == [
            "middle_session_required",
            "sessions_left_outside_end_range",
        ]

    def test_start_end_from_the_beginning_is_refused(self) -> None:
        case = beginning_ready()

        with pytest.raises(GuardFailed) as refused:
            case.start_end(ctx(), StartEnd.parse())

        assert rules_of(refused.value) == ["wrong_phase"]


class TestConclude:
    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_conclude_after_the_end_minimum_and_an_end_measure_is_allowed(
        self, protocol: str
    ) -> None:
        case = ready_to_conclude(protocol)

        case.conclude(ctx(), Conclude.parse(maintenance_discussed=True))

        assert case.phase == "concluded"
        assert case.outcome is not None
        assert case.maintenance_discussed is True

    def test_conclude_with_fewer_than_the_end_minimum_sessions_is_refused(
        self,
    ) -> None:
        case = in_end("ipt")
        session(case)
        measure(case, 8)
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.conclude(ctx(), Conclude.parse())

        assert rules_of(refused.value) == ["end_sessions_required"]
        assert recorded(case) == before

    def test_conclude_with_an_end_measure_on_another_instrument_is_refused(
        self,
    ) -> None:
        case = in_end("ipt", baseline=30, instrument="bdi2")
        sessions(case, 2)
        measure(case, 8, "phq9")

        with pytest.raises(GuardFailed) as refused:
            case.conclude(ctx(), Conclude.parse())

        assert rules_of(refused.value) == ["end_measure_required"]
        assert "bdi2" in refused.value.violations[0].message

    def test_a_measure_from_the_middle_phase_is_not_the_final_measure(self) -> None:
        case = in_middle("ipt")
        sessions(case, 13)
        measure(case, 8)
        case.start_end(ctx(), StartEnd.parse())
        sessions(case, 2)

        with pytest.raises(GuardFailed) as refused:
            case.conclude(ctx(), Conclude.parse())

        assert rules_of(refused.value) == ["end_measure_required"]

    def test_conclude_lists_both_unmet_rules_together(self) -> None:
        case = in_end("ipt")

        with pytest.raises(GuardFailed) as refused:
            case.conclude(ctx(), Conclude.parse())

        assert rules_of(refused.value) == [
            "end_sessions_required",
            "end_measure_required",
        ]

    def test_conclude_from_the_middle_is_refused(self) -> None:
        case = in_middle()

        with pytest.raises(GuardFailed) as refused:
            case.conclude(ctx(), Conclude.parse())

        assert rules_of(refused.value) == ["wrong_phase"]


class TestOfferFollowUp:
    @pytest.mark.parametrize("kind", ["continuation", "maintenance"])
    def test_a_clinician_may_offer_follow_up_after_remission(self, kind: str) -> None:
        case = concluded_in_remission()

        case.offer_follow_up(ctx(), OfferFollowUp.parse(kind=kind))

        event = new_events(case)[-1]
        assert isinstance(event, events.FollowUpOffered)
        assert (event.kind, event.automatic) == (kind, False)
        assert case.follow_up_offer is not None

    def test_an_offer_while_one_is_open_is_refused(self) -> None:
        case = concluded()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.offer_follow_up(ctx(), OfferFollowUp.parse(kind="maintenance"))

        assert rules_of(refused.value) == ["offer_already_open"]
        assert recorded(case) == before

    def test_a_new_offer_after_a_declined_one_is_allowed(self) -> None:
        case = concluded()
        case.decline_follow_up(ctx(), DeclineFollowUp.parse())

        case.offer_follow_up(ctx(), OfferFollowUp.parse(kind="maintenance"))

        assert case.follow_up_offer is not None
        assert case.follow_up_offer["kind"] == "maintenance"

    def test_a_referral_cannot_be_offered_by_hand(self) -> None:
        case = concluded_in_remission()

        with pytest.raises(InvalidInput) as refused:
            case.offer_follow_up(ctx(), OfferFollowUp.parse(kind="referral"))

        assert fields_of(refused.value) == ["kind"]

    def test_an_offer_outside_the_concluded_phase_is_refused(self) -> None:
        case = in_follow_up()

        with pytest.raises(GuardFailed) as refused:
            case.offer_follow_up(ctx(), OfferFollowUp.parse(kind="maintenance"))

        assert rules_of(refused.value) == ["wrong_phase"]


class TestAcceptFollowUp:
    @pytest.mark.parametrize("frequency", ["weekly", "fortnightly", "monthly"])
    def test_accepting_continuation_with_a_contract_starts_follow_up(
        self, frequency: str
    ) -> None:
        case = concluded()
        new_events(case)

        case.accept_follow_up(
            ctx(), AcceptFollowUp.parse(sessions=6, frequency=frequency)
        )

        assert case.phase == "follow_up"
        assert names(new_events(case)) == ["FollowUpAccepted"]
        assert case.follow_up_contract == {"sessions": 6, "frequency": frequency}
        assert case.sessions_remaining == 6
        assert case.follow_up_offer is None

    @pytest.mark.parametrize("kind", ["continuation", "maintenance"])
    def test_accepting_continuation_or_maintenance_without_a_contract_is_refused(
        self, kind: str
    ) -> None:
        case = concluded_in_remission()
        case.offer_follow_up(ctx(), OfferFollowUp.parse(kind=kind))
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.accept_follow_up(ctx(), AcceptFollowUp.parse())

        assert rules_of(refused.value) == ["follow_up_contract_required"]
        assert recorded(case) == before
        assert case.phase == "concluded"

    def test_accepting_a_referral_closes_the_case_as_referred(self) -> None:
        case = concluded_with_referral()
        new_events(case)

        case.accept_follow_up(ctx(), AcceptFollowUp.parse())

        assert names(new_events(case)) == ["FollowUpAccepted", "CaseClosed"]
        assert case.phase == "closed"
        assert case.ending is not None
        assert case.ending["disposition"] == "referred"

    def test_accepting_a_referral_with_a_contract_is_refused(self) -> None:
        case = concluded_with_referral()

        with pytest.raises(GuardFailed) as refused:
            case.accept_follow_up(
                ctx(), AcceptFollowUp.parse(sessions=6, frequency="monthly")
            )

        assert rules_of(refused.value) == ["referral_takes_no_contract"]
        assert case.phase == "concluded"

    def test_accepting_without_an_open_offer_is_refused(self) -> None:
        case = concluded_in_remission()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.accept_follow_up(
                ctx(), AcceptFollowUp.parse(sessions=6, frequency="monthly")
            )

        assert rules_of(refused.value) == ["no_open_offer"]
        assert recorded(case) == before


class TestDeclineFollowUp:
    def test_declining_closes_the_offer_and_keeps_the_case_concluded(self) -> None:
        case = concluded()
        new_events(case)

        case.decline_follow_up(ctx(), DeclineFollowUp.parse())

        assert names(new_events(case)) == ["FollowUpDeclined"]
        assert case.phase == "concluded"
        assert case.follow_up_offer is None

    def test_declining_without_an_open_offer_is_refused(self) -> None:
        case = concluded_in_remission()

        with pytest.raises(GuardFailed) as refused:
            case.decline_follow_up(ctx(), DeclineFollowUp.parse())

        assert rules_of(refused.value) == ["no_open_offer"]


class TestClose:
    def test_closing_while_an_offer_is_open_is_refused(self) -> None:
        case = concluded()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.close(ctx(), Close.parse())

        assert rules_of(refused.value) == ["offer_awaiting_decision"]
        assert recorded(case) == before

    def test_closing_a_concluded_case_without_an_offer_completes_it(self) -> None:
        case = concluded_in_remission()

        case.close(ctx(), Close.parse())

        assert case.phase == "closed"
        assert case.ending == {"disposition": "completed", "reason": None}

    def test_closing_after_the_offer_was_declined_records_the_decline(self) -> None:
        case = concluded()
        case.decline_follow_up(ctx(), DeclineFollowUp.parse())

        case.close(ctx(), Close.parse())

        assert case.ending is not None
        assert case.ending["disposition"] == "follow_up_declined"

    def test_closing_follow_up_after_every_contracted_session_completes_it(
        self,
    ) -> None:
        case = in_follow_up(follow_up_sessions=2)
        sessions(case, 2)

        case.close(ctx(), Close.parse())

        assert case.phase == "closed"
        assert case.ending is not None
        assert case.ending["disposition"] == "follow_up_completed"

    def test_closing_follow_up_before_its_contract_is_held_ends_it_early(
        self,
    ) -> None:
        case = in_follow_up(follow_up_sessions=24)
        session(case)

        case.close(ctx(), Close.parse(reason="client_declined_further_sessions"))

        assert case.ending is not None
        assert case.ending["disposition"] == "follow_up_ended_early"
        assert case.ending["reason"] == "client_declined_further_sessions"

    def test_closing_follow_up_early_with_the_reason_completed_completes_it(
        self,
    ) -> None:
        case = in_follow_up(follow_up_sessions=24)
        session(case)

        case.close(ctx(), Close.parse(reason="completed"))

        assert case.ending is not None
        assert case.ending["disposition"] == "follow_up_completed"

    def test_closing_follow_up_without_a_session_or_a_reason_is_refused(
        self,
    ) -> None:
        case = in_follow_up()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.close(ctx(), Close.parse())

        assert rules_of(refused.value) == ["follow_up_session_or_reason_required"]
        assert recorded(case) == before

    def test_closing_follow_up_without_a_session_but_with_a_reason_is_allowed(
        self,
    ) -> None:
        case = in_follow_up()

        case.close(ctx(), Close.parse(reason="client_declined_further_sessions"))

        assert case.ending == {
            "disposition": "follow_up_ended_early",
            "reason": "client_declined_further_sessions",
        }

    @pytest.mark.parametrize("build", [in_middle, closed], ids=lambda f: f.__name__)
    def test_closing_outside_concluded_or_follow_up_is_refused(
        self, build: Build
    ) -> None:
        case = build()

        with pytest.raises(GuardFailed) as refused:
            case.close(ctx(), Close.parse())

        assert rules_of(refused.value) == ["wrong_phase"]


NON_FINAL: list[Build] = [
    open_case,
    in_middle,
    in_end,
    concluded,
    in_follow_up,
]


class TestWithdraw:
    @pytest.mark.parametrize("build", NON_FINAL, ids=lambda f: f.__name__)
    def test_a_case_is_withdrawn_from_every_phase_that_is_not_final(
        self, build: Build
    ) -> None:
        case = build()
        from_phase = case.phase
        new_events(case)

        case.withdraw(ctx(), Withdraw.parse(reason="dropped_out"))

        event = new_events(case)[-1]
        assert isinstance(event, events.CaseWithdrawn)
        assert (event.from_phase, event.reason) == (from_phase, "dropped_out")
        assert case.phase == "withdrawn"

    def test_withdrawing_with_an_offer_open_leaves_no_offer_open(self) -> None:
        case = concluded()
        assert case.follow_up_offer is not None

        case.withdraw(ctx(), Withdraw.parse(reason="moved"))

        assert case.follow_up_offer is None
        assert case.why_not()[Transition.decline_follow_up][0].rule == "wrong_phase"

    @pytest.mark.parametrize("build", [closed, withdrawn], ids=lambda f: f.__name__)
    def test_a_case_in_a_final_phase_cannot_be_withdrawn(self, build: Build) -> None:
        case = build()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.withdraw(ctx(), Withdraw.parse(reason="moved"))

        assert rules_of(refused.value) == ["wrong_phase"]
        assert recorded(case) == before

    @pytest.mark.parametrize(
        "reason",
        ["dropped_out", "moved", "referred_elsewhere", "declined_treatment", "other"],
    )
    def test_every_withdrawal_reason_is_accepted(self, reason: str) -> None:
        case = open_case()

        case.withdraw(ctx(), Withdraw.parse(reason=reason))

        assert case.ending == {"disposition": "withdrawn", "reason": reason}

    def test_a_withdrawn_case_accepts_no_more_commands(self) -> None:
        case = withdrawn()

        with pytest.raises(GuardFailed) as measured:
            measure(case, 10)
        with pytest.raises(GuardFailed) as reassigned:
            case.reassign(ctx(), Reassign.parse(clinician_id="clinician-2"))

        assert rules_of(measured.value) == ["wrong_phase"]
        assert rules_of(reassigned.value) == ["wrong_phase"]


class TestRenegotiateContract:
    def test_a_count_within_the_range_with_a_reason_is_renegotiated(self) -> None:
        case = beginning_ready("ipt")

        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=12, reason="clinical_progress")
        )

        event = new_events(case)[-1]
        assert isinstance(event, events.ContractRenegotiated)
        assert (event.sessions, event.previous_sessions, event.reason) == (
            12,
            16,
            "clinical_progress",
        )
        assert event.deviation_used is False
        assert case.contract == {"sessions": 12, "frequency": "weekly"}

    def test_renegotiating_without_a_contract_is_refused(self) -> None:
        case = open_case()

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(), RenegotiateContract.parse(sessions=14, reason="client_request")
            )

        assert rules_of(refused.value) == ["contract_required"]

    def test_renegotiating_without_a_reason_code_is_refused(self) -> None:
        case = beginning_ready()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            case.renegotiate_contract(
                ctx(), RenegotiateContract.parse(sessions=14, reason="")
            )

        assert fields_of(refused.value) == ["reason"]
        assert recorded(case) == before

    @pytest.mark.parametrize(("protocol", "count"), [("ipt", 11), ("ipt", 17)])
    def test_a_count_outside_the_range_without_a_deviation_is_refused(
        self, protocol: str, count: int
    ) -> None:
        case = beginning_ready(protocol)

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(),
                RenegotiateContract.parse(sessions=count, reason="client_request"),
            )

        assert rules_of(refused.value) == ["contract_outside_range"]

    def test_ipt_b_refuses_any_other_count_without_a_deviation(self) -> None:
        case = beginning_ready("ipt-b")

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(), RenegotiateContract.parse(sessions=9, reason="slow_progress")
            )

        assert rules_of(refused.value) == ["contract_outside_range"]

    @pytest.mark.parametrize("count", [4, 30])
    def test_a_contract_range_deviation_allows_4_to_30_sessions(
        self, count: int
    ) -> None:
        case = open_case("ipt")
        case.agree_contract(ctx(), AgreeContract.parse())
        case.record_deviation(
            ctx(),
            RecordDeviation.parse(rule="contract_range", reason="clinical_judgement"),
        )

        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=count, reason="slow_progress")
        )

        assert case.contract is not None
        assert case.contract["sessions"] == count
        assert case.unused_deviations(DeviationRule.contract_range) == 0

    @pytest.mark.parametrize("count", [3, 31])
    def test_a_contract_range_deviation_does_not_allow_beyond_4_to_30(
        self, count: int
    ) -> None:
        case = open_case("ipt")
        case.agree_contract(ctx(), AgreeContract.parse())
        case.record_deviation(
            ctx(),
            RecordDeviation.parse(rule="contract_range", reason="clinical_judgement"),
        )

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(), RenegotiateContract.parse(sessions=count, reason="slow_progress")
            )

        assert "contract_outside_range" in rules_of(refused.value)
        assert case.contract is not None
        assert case.contract["sessions"] == 16

    def test_a_contract_range_deviation_is_used_up_by_one_renegotiation(
        self,
    ) -> None:
        case = beginning_ready("ipt-b")
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )
        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=10, reason="slow_progress")
        )

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(), RenegotiateContract.parse(sessions=12, reason="slow_progress")
            )

        assert rules_of(refused.value) == ["contract_outside_range"]
        assert case.deviations[0]["used"] is True

    def test_a_new_contract_range_deviation_allows_another_renegotiation(
        self,
    ) -> None:
        case = beginning_ready("ipt-b")
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )
        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=10, reason="slow_progress")
        )
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )

        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=12, reason="slow_progress")
        )

        assert case.contract is not None
        assert case.contract["sessions"] == 12

    def test_the_first_renegotiation_after_a_deviation_uses_it_even_within_the_range(
        self,
    ) -> None:
        case = beginning_ready("ipt")
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )
        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=14, reason="client_request")
        )

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(), RenegotiateContract.parse(sessions=20, reason="slow_progress")
            )

        assert rules_of(refused.value) == ["contract_outside_range"]
        assert case.unused_deviations(DeviationRule.contract_range) == 0

    def test_a_count_below_the_sessions_held_plus_the_end_owed_is_refused(
        self,
    ) -> None:
        case = middle_at("ipt", 12)
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(),
                RenegotiateContract.parse(sessions=13, reason="clinical_progress"),
            )

        assert rules_of(refused.value) == ["contract_below_sessions_owed"]
        assert recorded(case) == before

    def test_the_sessions_held_plus_the_end_owed_is_accepted(self) -> None:
        case = middle_at("ipt", 12)

        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=14, reason="clinical_progress")
        )

        assert case.contract is not None
        assert case.contract["sessions"] == 14

    def test_a_deviation_does_not_allow_a_count_below_the_sessions_owed(
        self,
    ) -> None:
        case = middle_at("ipt", 12)
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(),
                RenegotiateContract.parse(sessions=11, reason="clinical_progress"),
            )

        assert rules_of(refused.value) == ["contract_below_sessions_owed"]

    def test_end_sessions_held_reduce_what_the_end_phase_still_owes(self) -> None:
        case = end_started_at(13)
        sessions(case, 1)
        refused_count, accepted_count = 14, 15

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(),
                RenegotiateContract.parse(
                    sessions=refused_count, reason="clinical_progress"
                ),
            )
        case.renegotiate_contract(
            ctx(),
            RenegotiateContract.parse(
                sessions=accepted_count, reason="clinical_progress"
            ),
        )

        assert rules_of(refused.value) == ["contract_below_sessions_owed"]
        assert case.contract is not None
        assert case.contract["sessions"] == accepted_count

    def test_in_the_end_phase_a_count_beyond_the_end_maximum_is_refused(
        self,
    ) -> None:
        case = end_started_at(13)
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(), RenegotiateContract.parse(sessions=17, reason="slow_progress")
            )

        assert rules_of(refused.value) == ["end_phase_over_maximum"]
        assert case.unused_deviations(DeviationRule.contract_range) == 1

    def test_in_the_end_phase_a_count_at_the_end_maximum_is_accepted(self) -> None:
        case = end_started_at(14)

        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )
        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=17, reason="slow_progress")
        )

        assert case.contract is not None
        assert case.contract["sessions"] == 17

    def test_in_the_middle_phase_the_end_maximum_does_not_limit_the_count(
        self,
    ) -> None:
        case = middle_at("ipt", 13)
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )

        case.renegotiate_contract(
            ctx(), RenegotiateContract.parse(sessions=17, reason="slow_progress")
        )

        assert case.contract is not None
        assert case.contract["sessions"] == 17

    def test_a_renegotiation_in_the_concluded_phase_is_refused(self) -> None:
        case = concluded()

        with pytest.raises(GuardFailed) as refused:
            case.renegotiate_contract(
                ctx(), RenegotiateContract.parse(sessions=14, reason="client_request")
            )

        assert rules_of(refused.value) == ["wrong_phase"]


class TestReassign:
    @pytest.mark.parametrize("build", NON_FINAL, ids=lambda f: f.__name__)
    def test_a_case_is_reassigned_in_every_phase_that_is_not_final(
        self, build: Build
    ) -> None:
        case = build()

        case.reassign(ctx(), Reassign.parse(clinician_id="clinician-2"))

        event = new_events(case)[-1]
        assert isinstance(event, events.CaseReassigned)
        assert (event.clinician_id, event.previous_clinician_id) == (
            "clinician-2",
            "clinician-1",
        )
        assert case.clinician_id == "clinician-2"

    def test_reassigning_to_the_same_clinician_is_refused(self) -> None:
        case = open_case()

        with pytest.raises(GuardFailed) as refused:
            case.reassign(ctx(), Reassign.parse(clinician_id="clinician-1"))

        assert rules_of(refused.value) == ["clinician_unchanged"]

    def test_reassigning_a_closed_case_is_refused(self) -> None:
        case = closed()

        with pytest.raises(GuardFailed) as refused:
            case.reassign(ctx(), Reassign.parse(clinician_id="clinician-2"))

        assert rules_of(refused.value) == ["wrong_phase"]


def role_dispute_case() -> TherapyCase:
    case = open_case()
    record_inventory(case)
    agree_focus(case, "role_dispute", dispute_stage="impasse")
    return case


class TestChangeDisputeStage:
    def test_the_stage_of_a_role_dispute_changes(self) -> None:
        case = role_dispute_case()

        case.change_dispute_stage(
            ctx(), ChangeDisputeStage.parse(stage="renegotiation")
        )

        event = new_events(case)[-1]
        assert isinstance(event, events.DisputeStageChanged)
        assert (event.stage, event.previous_stage) == ("renegotiation", "impasse")
        assert case.focus is not None
        assert case.focus["dispute_stage"] == "renegotiation"

    def test_the_stage_of_a_secondary_role_dispute_changes(self) -> None:
        case = open_case()
        record_inventory(case)
        agree_focus(
            case,
            "role_transition",
            secondary_area="role_dispute",
            secondary_reason="linked_to_onset",
            dispute_stage="renegotiation",
        )

        case.change_dispute_stage(ctx(), ChangeDisputeStage.parse(stage="dissolution"))

        assert case.focus is not None
        assert case.focus["dispute_stage"] == "dissolution"

    @pytest.mark.parametrize("focus", [None, "role_transition"])
    def test_a_stage_change_without_a_role_dispute_focus_is_refused(
        self, focus: str | None
    ) -> None:
        case = open_case()
        record_inventory(case)
        if focus is not None:
            agree_focus(case, focus)
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.change_dispute_stage(ctx(), ChangeDisputeStage.parse(stage="impasse"))

        assert rules_of(refused.value) == ["focus_not_role_dispute"]
        assert recorded(case) == before

    def test_a_stage_change_to_the_same_stage_is_refused(self) -> None:
        case = role_dispute_case()

        with pytest.raises(GuardFailed) as refused:
            case.change_dispute_stage(ctx(), ChangeDisputeStage.parse(stage="impasse"))

        assert rules_of(refused.value) == ["dispute_stage_unchanged"]

    def test_a_stage_change_in_the_end_phase_is_allowed(self) -> None:
        case = open_case()
        record_inventory(case)
        agree_focus(case, "role_dispute", dispute_stage="impasse")
        case.agree_contract(ctx(), AgreeContract.parse())
        measure(case, 20)
        session(case)
        case.start_middle(ctx(), StartMiddle.parse())
        sessions(case, 13)
        case.start_end(ctx(), StartEnd.parse())

        case.change_dispute_stage(ctx(), ChangeDisputeStage.parse(stage="dissolution"))

        assert case.focus is not None
        assert case.focus["dispute_stage"] == "dissolution"

    def test_a_stage_change_after_acute_treatment_is_refused(self) -> None:
        case = concluded()

        with pytest.raises(GuardFailed) as refused:
            case.change_dispute_stage(ctx(), ChangeDisputeStage.parse(stage="impasse"))

        assert rules_of(refused.value) == ["wrong_phase"]


class TestCommandIds:
    def test_a_retried_session_returns_its_earlier_number_and_records_nothing(
        self,
    ) -> None:
        case = in_middle()
        first = case.record_session(
            ctx("cmd-1"),
            RecordSession.parse(
                held_on=TODAY,
                minutes=50,
                modality="in_person",
                attendees=["client"],
                today=TODAY,
            ),
        )
        before = recorded(case)

        retry = case.record_session(
            ctx("cmd-1"),
            RecordSession.parse(
                held_on=TODAY,
                minutes=50,
                modality="in_person",
                attendees=["client"],
                today=TODAY,
            ),
        )

        assert first.session_number == 2
        assert retry == CommandResult(
            version=first.version, replayed=True, session_number=2
        )
        assert recorded(case) == before
        assert case.counted_sessions() == 2

    def test_a_retry_after_the_case_moved_on_still_returns_the_earlier_result(
        self,
    ) -> None:
        case = in_middle()
        first = case.record_session(
            ctx("cmd-1"),
            RecordSession.parse(
                held_on=TODAY,
                minutes=50,
                modality="in_person",
                attendees=["client"],
                today=TODAY,
            ),
        )
        sessions(case, 12)
        case.start_end(ctx(), StartEnd.parse())
        before = recorded(case)

        retry = case.record_session(
            ctx("cmd-1"),
            RecordSession.parse(
                held_on=TODAY,
                minutes=50,
                modality="in_person",
                attendees=["client"],
                today=TODAY,
            ),
        )

        assert (retry.version, retry.session_number) == (first.version, 2)
        assert recorded(case) == before
        assert case.phase == "end"

    def test_a_retried_conclude_returns_the_version_after_both_its_events(
        self,
    ) -> None:
        case = ready_to_conclude()
        first = case.conclude(ctx("cmd-conclude"), Conclude.parse())
        before = recorded(case)

        retry = case.conclude(ctx("cmd-conclude"), Conclude.parse())

        assert retry.replayed is True
        assert retry.version == first.version == case.version
        assert recorded(case) == before

    def test_a_retried_transition_is_not_refused_for_being_in_the_new_phase(
        self,
    ) -> None:
        case = beginning_ready()
        first = case.start_middle(ctx("cmd-middle"), StartMiddle.parse())

        retry = case.start_middle(ctx("cmd-middle"), StartMiddle.parse())

        assert retry.replayed is True
        assert retry.version == first.version

    def test_a_command_id_reused_for_another_command_is_refused(self) -> None:
        case = in_middle()
        case.record_session(
            ctx("cmd-1"),
            RecordSession.parse(
                held_on=TODAY,
                minutes=50,
                modality="in_person",
                attendees=["client"],
                today=TODAY,
            ),
        )
        before = recorded(case)

        with pytest.raises(CommandIdReused):
            case.record_measure(
                ctx("cmd-1"),
                RecordMeasure.parse(
                    instrument="phq9", score=12, measured_on=TODAY, today=TODAY
                ),
            )

        assert recorded(case) == before

    def test_a_command_id_reused_with_other_values_is_refused(self) -> None:
        case = in_middle()
        case.record_session(
            ctx("cmd-1"),
            RecordSession.parse(
                held_on=TODAY,
                minutes=50,
                modality="in_person",
                attendees=["client"],
                today=TODAY,
            ),
        )
        before = recorded(case)

        with pytest.raises(CommandIdReused):
            case.record_session(
                ctx("cmd-1"),
                RecordSession.parse(
                    held_on=TODAY,
                    minutes=55,
                    modality="in_person",
                    attendees=["client"],
                    today=TODAY,
                ),
            )

        assert recorded(case) == before

    def test_the_command_id_that_opened_the_case_cannot_be_reused(self) -> None:
        case = TherapyCase.open(
            ctx("cmd-open"),
            OpenCase.parse(
                clinic_id="clinic-1",
                client_ref="client-9",
                protocol="ipt",
                client_age=30,
                clinician_id="clinician-1",
            ),
        )

        with pytest.raises(CommandIdReused):
            case.reassign(ctx("cmd-open"), Reassign.parse(clinician_id="clinician-2"))

    def test_the_id_of_a_refused_command_may_be_used_again(self) -> None:
        case = open_case()
        with pytest.raises(GuardFailed):
            case.start_middle(ctx("cmd-1"), StartMiddle.parse())

        case.record_inventory(
            ctx("cmd-1"),
            RecordInventory.parse(relationships=[{"role": "friend", "closeness": 2}]),
        )

        assert case.inventory is not None


class TestEventMetadata:
    def test_every_event_of_a_course_records_who_for_whom_and_which_command(
        self,
    ) -> None:
        case = in_follow_up()
        session(case)
        case.close(ctx(), Close.parse())

        events = new_events(case)

        assert len(events) > 20
        for event in events:
            assert event.timestamp.utcoffset() == timedelta(0)
            assert event.recorded_by == "actor-1"
            assert event.on_behalf_of is None
            assert isinstance(event.command_id, str)
            assert event.command_id

    def test_an_event_records_the_clinician_the_actor_acts_for(self) -> None:
        case = open_case()
        new_events(case)

        case.record_inventory(
            ctx("cmd-7", on_behalf_of="clinician-3"),
            RecordInventory.parse(relationships=[{"role": "friend", "closeness": 2}]),
        )

        [event] = new_events(case)
        assert (event.recorded_by, event.on_behalf_of, event.command_id) == (
            "actor-1",
            "clinician-3",
            "cmd-7",
        )

    def test_both_events_of_one_command_carry_its_command_id(self) -> None:
        case = ready_to_conclude()
        new_events(case)

        case.conclude(ctx("cmd-conclude", on_behalf_of="clinician-3"), Conclude.parse())

        events = new_events(case)
        assert names(events) == ["AcuteTreatmentConcluded", "FollowUpOffered"]
        assert {(e.command_id, e.on_behalf_of) for e in events} == {
            ("cmd-conclude", "clinician-3")
        }


class TestRefusalsRecordNothing:
    @pytest.mark.parametrize(
        ("build", "command"),
        [
            (open_case, lambda c: c.start_middle(ctx(), StartMiddle.parse())),
            (open_case, lambda c: c.start_end(ctx(), StartEnd.parse())),
            (in_middle, lambda c: c.start_end(ctx(), StartEnd.parse())),
            (in_end, lambda c: c.conclude(ctx(), Conclude.parse())),
            (concluded, lambda c: c.close(ctx(), Close.parse())),
            (concluded, lambda c: c.accept_follow_up(ctx(), AcceptFollowUp.parse())),
            (
                concluded_in_remission,
                lambda c: c.decline_follow_up(ctx(), DeclineFollowUp.parse()),
            ),
            (in_follow_up, lambda c: c.close(ctx(), Close.parse())),
            (closed, lambda c: c.withdraw(ctx(), Withdraw.parse(reason="moved"))),
            (
                open_case,
                lambda c: c.agree_contract(ctx(), AgreeContract.parse(sessions=40)),
            ),
            (
                beginning_ready,
                lambda c: c.renegotiate_contract(
                    ctx(), RenegotiateContract.parse(sessions=40, reason="other")
                ),
            ),
        ],
    )
    def test_a_refused_command_records_nothing(
        self, build: Build, command: Callable[[TherapyCase], CommandResult]
    ) -> None:
        case = build()
        phase = case.phase
        before = recorded(case)

        with pytest.raises(GuardFailed):
            command(case)

        assert recorded(case) == before
        assert case.phase == phase


WHY_NOT_STATES: dict[str, Build] = {
    "opened": open_case,
    "beginning_ready": beginning_ready,
    "fb_ipt_without_parent": fb_ipt_without_parent,
    "middle_without_sessions": in_middle,
    "middle_at_its_limit": lambda: middle_at("ipt", 14),
    "end_just_started": in_end,
    "end_ready": ready_to_conclude,
    "concluded_with_continuation": concluded,
    "concluded_with_referral": concluded_with_referral,
    "concluded_in_remission": concluded_in_remission,
    "follow_up": in_follow_up,
    "closed": closed,
    "withdrawn": withdrawn,
}


def run_transition(case: TherapyCase, transition: Transition) -> None:
    """Send `transition` with a complete, valid body (decision D4)."""
    offer = case.follow_up_offer
    if transition is Transition.start_middle:
        case.start_middle(ctx(), StartMiddle.parse())
    elif transition is Transition.start_end:
        case.start_end(ctx(), StartEnd.parse())
    elif transition is Transition.conclude:
        case.conclude(ctx(), Conclude.parse())
    elif transition is Transition.accept_follow_up:
        if offer is not None and offer["kind"] == "referral":
            case.accept_follow_up(ctx(), AcceptFollowUp.parse())
        else:
            case.accept_follow_up(
                ctx(), AcceptFollowUp.parse(sessions=4, frequency="monthly")
            )
    elif transition is Transition.decline_follow_up:
        case.decline_follow_up(ctx(), DeclineFollowUp.parse())
    elif transition is Transition.close:
        case.close(ctx(), Close.parse(reason="no_longer_needed"))
    else:
        case.withdraw(ctx(), Withdraw.parse(reason="moved"))


class TestWhyNot:
    @pytest.mark.parametrize("state", list(WHY_NOT_STATES))
    @pytest.mark.parametrize("transition", list(Transition))
    def test_why_not_agrees_with_what_the_transition_command_does(
        self, state: str, transition: Transition
    ) -> None:
        case = WHY_NOT_STATES[state]()
        said = [v.rule for v in case.why_not()[transition]]

        try:
            run_transition(case, transition)
        except GuardFailed as refused:
            done = rules_of(refused)
        else:
            done = []

        assert done == said

    def test_why_not_lists_every_reason_the_middle_cannot_start(self) -> None:
        case = open_case("fb-ipt")

        reasons = case.why_not()[Transition.start_middle]

        assert [v.rule for v in reasons] == [
            "beginning_session_required",
            "baseline_measure_required",
            "inventory_required",
            "focus_required",
            "contract_required",
            "parent_session_required",
        ]

    def test_why_not_answers_for_every_transition(self) -> None:
        case = in_middle()

        answer = case.why_not()

        assert set(answer) == set(Transition)
        assert answer[Transition.withdraw] == []
        assert [v.rule for v in answer[Transition.conclude]] == ["wrong_phase"]

    def test_why_not_allows_closing_follow_up_for_a_body_with_a_reason(
        self,
    ) -> None:
        case = in_follow_up()

        allowed = case.why_not()[Transition.close]

        assert allowed == []
        with pytest.raises(GuardFailed):
            case.close(ctx(), Close.parse())
