"""Rules that hold over the whole life of a case (domain.md §7), and the domain's
defects 1-10 of issue 11 ("What is wrong today"), each shown by a case built the
way a clinic builds it: corrections and what they may not remove, uncounted
meetings, voided sessions and the room they leave, the intake date and the order
of measures, replacements and the revision of the outcome, the contract's floor,
contract_range deviations, how a follow-up ends, refusal texts, malformed input.

Every refusal names its rule codes exactly and is checked to record nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipt_workflow.api.views import case_view
from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import DeviationRule, Phase, Transition
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    Close,
    Command,
    Conclude,
    CorrectEntry,
    DecideFollowUp,
    DeclineFollowUp,
    OpenCase,
    RecordDeviation,
    RecordInventory,
    RecordMeasure,
    RecordMissedSession,
    RecordSession,
    RenegotiateContract,
    SetContract,
    StartEnd,
    StartMiddle,
)
from ipt_workflow.domain.errors import GuardFailed, InvalidInput
from ipt_workflow.domain.protocols import SessionKind
from ipt_workflow.domain.rules.measures import outcome_of
from tests.unit.builders import (
    TODAY,
    agree_focus,
    beginning_ready,
    concluded,
    concluded_in_remission,
    concluded_with_referral,
    course,
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
    refusal,
    relationship,
    run,
    session,
    sessions,
    sessions_until_refused,
)

DAY = timedelta(days=1)


# --- helpers --------------------------------------------------------------------------


def void_session(number: int, entry: str = "session") -> CorrectEntry:
    return CorrectEntry.parse(
        entry=entry, reason="wrong_details", number=number, today=TODAY
    )


def void_measure(
    on: date,
    instrument: str = "phq9",
    replacement: Mapping[str, Any] | None = None,
) -> CorrectEntry:
    return CorrectEntry.parse(
        entry="measure",
        reason="wrong_details",
        instrument=instrument,
        measured_on=on,
        replacement=replacement,
        today=TODAY,
    )


def void_meeting(entry: str, on: date = TODAY) -> CorrectEntry:
    return CorrectEntry.parse(
        entry=entry, reason="did_not_take_place", held_on=on, today=TODAY
    )


def a_measure(score: int, on: date = TODAY, instrument: str = "phq9") -> RecordMeasure:
    return RecordMeasure.parse(
        instrument=instrument, score=score, measured_on=on, today=TODAY
    )


def deviation(rule: str = "contract_range") -> RecordDeviation:
    return RecordDeviation.parse(rule=rule, reason="clinical_judgement")


def renegotiation(count: int, frequency: str | None = None) -> RenegotiateContract:
    return RenegotiateContract.parse(
        sessions=count, reason="client_request", frequency=frequency
    )


def inventory_without_a_death() -> RecordInventory:
    return RecordInventory.parse(
        relationships=[relationship("partner"), relationship("mother", conflict=True)]
    )


def legacy(case: TherapyCase, event_class: type[Any], **facts: Any) -> None:
    """An event as the first release recorded it, without today's rules (its
    histories replay like this)."""
    case.trigger_event(
        event_class,
        recorded_by="actor-1",
        on_behalf_of=None,
        command_id=f"legacy-{case.version}",
        command_digest="0" * 64,
        **facts,
    )


def beginning_with(*measures: RecordMeasure) -> TherapyCase:
    """An ipt case ready for the middle phase, its beginning measures these."""
    case = open_case("ipt")
    record_inventory(case)
    agree_focus(case)
    run(case, AgreeContract.parse(), *measures)
    first_session(case)
    return case


def shown_outcome(case: TherapyCase) -> Mapping[str, Any] | None:
    """The outcome the case shows a clinic system (GET /cases/{id})."""
    shown: Mapping[str, Any] | None = case_view(case, None)["outcome"]
    return shown


# --- §7 corrections never leave the case in a state its rules forbid ------------------


class TestReRecordingTheInventoryKeepsTheFocus:
    """§7: the inventory may be re-recorded only if the agreed focus still holds on
    it; start_middle checks the focus against the current inventory (defect 1)."""

    def test_an_inventory_without_the_deceased_relationship_under_a_grief_focus_is_refused(  # noqa: E501
        self,
    ) -> None:
        case = open_case()
        record_inventory(case, deceased=True)
        agree_focus(case, "grief")
        before = case.inventory

        rules, unchanged = refusal(case, inventory_without_a_death())

        assert rules == ["grief_needs_deceased_relationship"]
        assert unchanged
        assert case.inventory == before

    def test_the_refusal_names_the_grief_focus(self) -> None:
        case = open_case()
        record_inventory(case, deceased=True)
        agree_focus(case, "grief")

        with pytest.raises(GuardFailed) as refused:
            case.handle(ctx(), inventory_without_a_death())

        assert "focus is grief" in refused.value.violations[0].message

    def test_an_inventory_that_keeps_a_deceased_relationship_replaces_the_earlier_one(
        self,
    ) -> None:
        case = open_case()
        record_inventory(case, deceased=True)
        agree_focus(case, "grief")
        again = RecordInventory.parse(
            relationships=[relationship("father", deceased=True, current=False)]
        )

        run(case, again)

        assert case.inventory is not None
        assert [r["role"] for r in case.inventory["relationships"]] == ["father"]

    def test_an_inventory_without_a_death_under_another_focus_is_accepted(
        self,
    ) -> None:
        case = open_case()
        record_inventory(case, deceased=True)
        agree_focus(case, "role_transition")

        run(case, inventory_without_a_death())

        assert case.inventory is not None
        assert not any(r["deceased"] for r in case.inventory["relationships"])

    def test_start_middle_refuses_a_grief_focus_the_current_inventory_does_not_hold(
        self,
    ) -> None:
        case = beginning_ready("ipt")
        run(case, course().inventory(deceased=True), course().focus("grief"))
        legacy(
            case,
            TherapyCase.InterpersonalInventoryRecorded,
            relationships=[
                RecordInventory.parse(relationships=[relationship()])
                .relationships[0]
                .as_dict()
            ],
            attachment_style=None,
            communication_style=None,
            support_sources=[],
        )

        rules, unchanged = refusal(case, StartMiddle.parse())

        assert rules == ["grief_needs_deceased_relationship"]
        assert unchanged
        assert [v.rule for v in case.why_not()[Transition.start_middle]] == rules


class TestCorrectionsKeepWhatStartMiddleRequired:
    """§7: after start_middle a correction may not remove the last counted
    beginning session, the baseline, the fb-ipt parent session or the ipt-g
    pre-group meeting (defect 2)."""

    def test_voiding_the_only_counted_beginning_session_after_start_middle_is_refused(
        self,
    ) -> None:
        case = in_middle("ipt")

        rules, unchanged = refusal(case, void_session(1))

        assert rules == ["beginning_session_still_required"]
        assert unchanged
        assert case.counted_sessions(Phase.beginning) == 1

    def test_voiding_a_beginning_session_while_another_remains_is_allowed(
        self,
    ) -> None:
        case = beginning_ready("ipt")
        session(case)
        run(case, StartMiddle.parse())

        run(case, void_session(1))

        assert case.counted_sessions(Phase.beginning) == 1

    def test_before_start_middle_the_only_beginning_session_may_be_voided(
        self,
    ) -> None:
        case = beginning_ready("ipt")

        run(case, void_session(1))

        assert case.counted_sessions(Phase.beginning) == 0
        assert "beginning_session_required" in [
            v.rule for v in case.why_not()[Transition.start_middle]
        ]

    @pytest.mark.parametrize("build", [in_middle, in_end], ids=["middle", "end"])
    def test_voiding_the_only_baseline_after_start_middle_is_refused(
        self, build: Callable[[], TherapyCase]
    ) -> None:
        case = build()

        rules, unchanged = refusal(case, void_measure(TODAY))

        assert rules == ["baseline_still_required"]
        assert unchanged
        assert case.baseline is not None and case.baseline["score"] == 20

    def test_voiding_the_baseline_hands_it_to_the_next_beginning_measure_not_to_a_later_phase(  # noqa: E501
        self,
    ) -> None:
        case = beginning_with(
            a_measure(20, TODAY - 2 * DAY), a_measure(24, TODAY - DAY)
        )
        run(case, StartMiddle.parse(), a_measure(27, on=TODAY - 3 * DAY))

        run(case, void_measure(TODAY - 2 * DAY))

        assert case.baseline is not None
        assert (case.baseline["score"], case.baseline["phase"]) == (24, "beginning")

    def test_a_baseline_re_entered_as_a_replacement_with_its_date_is_the_baseline(
        self,
    ) -> None:
        case = in_end("ipt")

        run(case, void_measure(TODAY, replacement={"score": 18, "measured_on": TODAY}))

        assert case.baseline is not None
        assert case.baseline["score"] == 18
        assert case.baseline["measured_on"] == TODAY.isoformat()
        assert case.baseline["phase"] == "beginning"

    def test_fb_ipt_voiding_its_only_beginning_session_names_both_rules(self) -> None:
        case = in_middle("fb-ipt")

        rules, unchanged = refusal(case, void_session(1))

        assert rules == [
            "beginning_session_still_required",
            "parent_session_still_required",
        ]
        assert unchanged

    def test_fb_ipt_voiding_its_only_parent_session_is_refused_while_others_remain(
        self,
    ) -> None:
        case = beginning_ready("fb-ipt")
        session(case, attendees=("client",))
        run(case, StartMiddle.parse())

        rules, unchanged = refusal(case, void_session(1))

        assert rules == ["parent_session_still_required"]
        assert unchanged

    def test_fb_ipt_voiding_a_beginning_session_without_a_parent_is_allowed(
        self,
    ) -> None:
        case = beginning_ready("fb-ipt")
        session(case, attendees=("client",))
        run(case, StartMiddle.parse())

        run(case, void_session(2))

        assert case.counted_sessions(Phase.beginning) == 1

    def test_ipt_a_may_void_its_parent_session_since_none_is_required(self) -> None:
        case = beginning_ready("ipt-a")
        session(case, attendees=("client",))
        run(case, StartMiddle.parse())

        run(case, void_session(1))

        assert case.parent_sessions() == []

    def test_ipt_g_voiding_its_only_pre_group_meeting_after_group_sessions_is_refused(
        self,
    ) -> None:
        case = in_middle("ipt-g")

        rules, unchanged = refusal(case, void_meeting("pre_group"))

        assert rules == ["pre_group_meeting_still_required"]
        assert unchanged

    def test_ipt_g_voiding_one_of_two_pre_group_meetings_is_allowed(self) -> None:
        case = beginning_ready("ipt-g")
        session(case, kind="individual_pre_group", held_on=TODAY - DAY)
        run(case, StartMiddle.parse())

        run(case, void_meeting("pre_group", TODAY - DAY))

        assert len(case.meetings(SessionKind.individual_pre_group)) == 1


class TestCorrectingUncountedMeetings:
    """§7: uncounted meetings can be corrected, by `held_on` (defect 9)."""

    def test_a_pre_group_meeting_entered_in_error_no_longer_satisfies_the_ipt_g_rule(
        self,
    ) -> None:
        case = open_case("ipt-g")
        session(case, kind="individual_pre_group")
        new_events(case)

        run(case, void_meeting("pre_group"))

        voided = new_events(case)
        assert names(voided) == ["SessionEnteredInError"]
        assert (voided[0].kind, voided[0].number) == ("individual_pre_group", None)
        rules, unchanged = refusal(case, course("ipt-g").session(attendees=["group"]))
        assert rules == ["pre_group_meeting_required"]
        assert unchanged

    def test_an_engagement_session_entered_in_error_can_be_voided_and_recorded_again(
        self,
    ) -> None:
        case = open_case("ipt-b")
        session(case, kind="engagement", held_on=TODAY - DAY)

        run(case, void_meeting("engagement", TODAY - DAY))
        session(case, kind="engagement")

        assert [s["voided"] for s in case.sessions] == [True, False]

    def test_a_mid_group_meeting_is_voided_in_the_middle_phase(self) -> None:
        case = in_middle("ipt-g")
        session(case, kind="individual_mid_group")

        run(case, void_meeting("mid_group"))

        assert case.meetings(SessionKind.individual_mid_group) == []

    def test_a_post_group_meeting_is_voided_in_the_concluded_phase(self) -> None:
        case = concluded("ipt-g")
        session(case, kind="individual_post_group")

        run(case, void_meeting("post_group"))

        assert case.meetings(SessionKind.individual_post_group) == []

    def test_of_two_meetings_on_one_day_the_later_recorded_is_voided(self) -> None:
        case = open_case("ipt-g")
        session(case, kind="individual_pre_group", minutes=30)
        session(case, kind="individual_pre_group", minutes=60)

        run(case, void_meeting("pre_group"))

        assert [(s["minutes"], s["voided"]) for s in case.sessions] == [
            (30, False),
            (60, True),
        ]

    def test_a_meeting_not_held_that_day_is_not_found(self) -> None:
        case = open_case("ipt-g")
        session(case, kind="individual_pre_group")

        rules, unchanged = refusal(case, void_meeting("pre_group", TODAY - DAY))

        assert rules == ["entry_not_found"]
        assert unchanged

    def test_a_meeting_voided_already_cannot_be_voided_again(self) -> None:
        case = open_case("ipt-g")
        session(case, kind="individual_pre_group")
        run(case, void_meeting("pre_group"))

        rules, unchanged = refusal(case, void_meeting("pre_group"))

        assert rules == ["entry_already_voided"]
        assert unchanged


class TestVoidedSessionsGiveNoPhaseMoreRoom:
    """§7: the end phase holds at most its maximum, and no counted acute session is
    numbered or positioned past the contract, whatever was voided (defect 4)."""

    def test_ipt_after_voiding_middle_sessions_in_the_end_phase_sessions_17_to_19_are_refused(  # noqa: E501
        self,
    ) -> None:
        case = in_end("ipt")
        for number in range(10, 15):
            run(case, void_session(number))

        accepted, refused = sessions_until_refused(case)

        assert accepted == [15, 16]
        assert refused == ["contract_session_limit"]
        assert case.counted_sessions(Phase.end) == 2

    def test_an_end_phase_started_with_three_left_stops_at_its_maximum_of_three(
        self,
    ) -> None:
        case = in_middle("ipt")
        sessions(case, 12)
        run(case, StartEnd.parse())
        for number in range(9, 14):
            run(case, void_session(number))

        accepted, refused = sessions_until_refused(case)

        assert accepted == [14, 15, 16]
        assert refused == ["contract_session_limit", "end_phase_session_limit"]

    def test_ipt_b_after_voiding_middle_sessions_its_end_phase_holds_two(
        self,
    ) -> None:
        case = in_end("ipt-b")
        for number in range(3, 7):
            run(case, void_session(number))

        accepted, refused = sessions_until_refused(case)

        assert accepted == [7, 8]
        assert refused == ["contract_session_limit", "end_phase_session_limit"]
        assert case.counted_sessions(Phase.end) == 2

    @pytest.mark.parametrize("protocol", ["ipt", "ipt-b"])
    def test_after_that_a_change_of_frequency_alone_is_still_renegotiated(
        self, protocol: str
    ) -> None:
        case = in_end(protocol)
        for number in range(2, case.last_session_number + 1):
            run(case, void_session(number))
        sessions_until_refused(case)
        assert case.contract is not None
        count = case.contract["sessions"]
        new_events(case)

        run(case, renegotiation(count, frequency="twice_weekly"))

        assert names(new_events(case)) == ["ContractRenegotiated"]
        assert case.contract == {"sessions": count, "frequency": "twice_weekly"}

    def test_a_renegotiation_that_would_give_the_end_phase_more_than_its_maximum_is_refused(  # noqa: E501
        self,
    ) -> None:
        case = in_middle("ipt")
        sessions(case, 12)
        run(case, StartEnd.parse())
        for number in range(9, 14):
            run(case, void_session(number))
        sessions(case, 3)
        run(case, deviation())

        rules, unchanged = refusal(case, renegotiation(19))

        assert rules == ["end_phase_over_maximum"]
        assert unchanged

    def test_voiding_a_session_the_largest_contract_could_not_replace_is_refused(
        self,
    ) -> None:
        case = in_middle("ipt")
        run(case, deviation(), renegotiation(30))
        sessions(case, 27)
        run(case, StartEnd.parse())
        sessions(case, 2)

        rules, unchanged = refusal(case, void_session(30))

        assert case.last_session_number == 30
        assert rules == ["correction_leaves_no_way_forward"]
        assert unchanged

    def test_voided_middle_sessions_give_the_middle_phase_no_number_past_its_last(
        self,
    ) -> None:
        case = in_middle("ipt")
        sessions(case, 13)
        run(case, void_session(13), void_session(14))

        accepted, refused = sessions_until_refused(case)

        assert accepted == []
        assert refused == ["middle_session_limit"]

    def test_beginning_deviations_never_stretch_the_beginning_past_the_contract(
        self,
    ) -> None:
        case = beginning_ready("ipt", contract=12)
        for _ in range(10):
            run(case, deviation("beginning_session_limit"))

        accepted, refused = sessions_until_refused(case)

        assert accepted == list(range(2, 10))
        assert refused == ["contract_session_limit"]

    def test_without_a_contract_the_beginning_stops_where_the_largest_contract_would(
        self,
    ) -> None:
        case = open_case("ipt-b")
        for _ in range(5):
            run(case, deviation("beginning_session_limit"))

        accepted, refused = sessions_until_refused(case)

        assert accepted == [1, 2, 3, 4, 5]
        assert refused == ["contract_session_limit"]

    def test_the_beginning_held_without_a_contract_can_still_agree_one_and_go_on(
        self,
    ) -> None:
        case = open_case("ipt-b")
        record_inventory(case)
        agree_focus(case)
        measure(case, 20)
        for _ in range(3):
            run(case, deviation("beginning_session_limit"))
        sessions_until_refused(case)

        run(case, AgreeContract.parse(), StartMiddle.parse())
        session(case)
        run(case, StartEnd.parse())

        assert case.phase == "end"
        assert case.last_session_number == 6


# --- §7 dates, and the order of measures ----------------------------------------------


class TestTheIntakeDate:
    """§7: an optional intake_on (default: the opening day, never in the future);
    nothing dated more than 30 days before it (defect 7)."""

    def test_a_case_opened_without_an_intake_date_takes_the_opening_day(self) -> None:
        case = open_case()

        assert case.intake_on == TODAY.isoformat()

    def test_a_case_opened_with_an_intake_date_in_the_past_keeps_it(self) -> None:
        case = open_case(intake_on=date(2025, 9, 15))
        opened = new_events(case)[0]

        assert case.intake_on == "2025-09-15"
        assert opened.intake_on == "2025-09-15"

    @pytest.mark.parametrize(
        "intake_on",
        [TODAY + 2 * DAY, date(1900, 1, 1), "2026-02-30", "yesterday"],
        ids=["future", "1900", "no-such-day", "not-a-date"],
    )
    def test_an_intake_date_in_the_future_or_not_a_day_is_bad_input(
        self, intake_on: object
    ) -> None:
        raw = course().opening().params()

        with pytest.raises(InvalidInput) as invalid:
            OpenCase.parse(today=TODAY, **{**raw, "intake_on": intake_on})

        assert fields_of(invalid.value) == ["intake_on"]

    def test_an_intake_date_tomorrow_is_accepted_with_a_days_grace(self) -> None:
        case = open_case(intake_on=TODAY + DAY)

        assert case.intake_on == (TODAY + DAY).isoformat()

    @pytest.mark.parametrize("days_before", [0, 30])
    @pytest.mark.parametrize("what", ["measure", "session", "missed", "replacement"])
    def test_an_entry_up_to_30_days_before_intake_is_accepted(
        self, what: str, days_before: int
    ) -> None:
        intake = TODAY - 60 * DAY
        case = open_case(intake_on=intake)
        measure(case, 20)
        new_events(case)

        run(case, dated_entry(what, intake - days_before * DAY))

        assert new_events(case)

    @pytest.mark.parametrize("what", ["measure", "session", "missed", "replacement"])
    def test_an_entry_31_days_before_intake_is_refused(self, what: str) -> None:
        intake = TODAY - 60 * DAY
        case = open_case(intake_on=intake)
        measure(case, 20)

        rules, unchanged = refusal(case, dated_entry(what, intake - 31 * DAY))

        assert rules == ["dated_before_intake"]
        assert unchanged

    def test_a_score_dated_a_year_before_intake_typed_in_the_end_phase_is_refused(
        self,
    ) -> None:
        case = in_end("ipt")
        sessions(case, 2)

        rules, unchanged = refusal(case, a_measure(18, on=TODAY - 365 * DAY))

        assert rules == ["dated_before_intake"]
        assert unchanged
        assert case.final_measure is None

    def test_a_measure_dated_in_1900_is_refused(self) -> None:
        case = open_case()

        rules, unchanged = refusal(case, a_measure(18, on=date(1900, 1, 1)))

        assert rules == ["dated_before_intake"]
        assert unchanged


def dated_entry(what: str, on: date) -> Command:
    """A session, missed session, measure or replacement dated `on`."""
    if what == "measure":
        return a_measure(15, on=on)
    if what == "session":
        return course().session(held_on=on)
    if what == "missed":
        return RecordMissedSession.parse(
            scheduled_on=on, reason="client_cancelled", today=TODAY
        )
    return void_measure(TODAY, replacement={"score": 21, "measured_on": on})


class TestTheOrderOfMeasures:
    """§7: a measure belongs to its phase; within it measures go by date, ties by
    recording order; the baseline is the earliest of the beginning (else of the
    case), the final the latest of the end with the baseline's instrument."""

    def test_the_baseline_is_the_earliest_dated_beginning_measure_not_the_first(
        self,
    ) -> None:
        case = beginning_with(a_measure(20, TODAY), a_measure(25, TODAY - 5 * DAY))

        baseline = case.baseline

        assert baseline is not None and baseline["score"] == 25

    def test_of_two_beginning_measures_on_one_day_the_first_recorded_is_the_baseline(
        self,
    ) -> None:
        case = beginning_with(a_measure(20, TODAY), a_measure(25, TODAY))

        baseline = case.baseline

        assert baseline is not None and baseline["score"] == 20

    def test_a_measure_recorded_in_the_middle_is_never_the_baseline_whatever_its_date(
        self,
    ) -> None:
        case = in_middle("ipt")

        run(case, a_measure(27, on=TODAY - 10 * DAY))

        assert case.measures[-1]["phase"] == "middle"
        assert case.baseline is not None and case.baseline["score"] == 20

    def test_the_final_is_the_latest_dated_end_measure_not_the_last_recorded(
        self,
    ) -> None:
        case = ready_to_conclude("ipt", final=8)
        run(case, a_measure(18, on=TODAY - 3 * DAY))

        run(case, Conclude.parse())

        assert case.final_measure is not None and case.final_measure["score"] == 8
        assert case.outcome is not None
        assert (case.outcome["final"], case.outcome["classification"]) == (
            8,
            "response",
        )

    def test_of_two_end_measures_on_one_day_the_later_recorded_is_the_final(
        self,
    ) -> None:
        case = ready_to_conclude("ipt", final=8)

        run(case, a_measure(12))

        assert case.final_measure is not None and case.final_measure["score"] == 12

    def test_the_final_takes_only_the_baselines_instrument(self) -> None:
        case = ready_to_conclude("ipt", final=8)

        run(case, a_measure(2, on=TODAY, instrument="hamd17"))

        assert case.final_measure is not None
        assert case.final_measure["instrument"] == "phq9"

    def test_with_no_beginning_measure_left_the_baseline_is_the_cases_earliest(
        self,
    ) -> None:
        case = in_middle("ipt")
        run(case, a_measure(24, on=TODAY - DAY), a_measure(22, on=TODAY - 2 * DAY))
        legacy(
            case,
            TherapyCase.MeasureEnteredInError,
            index=0,
            instrument="phq9",
            measured_on=TODAY.isoformat(),
            reason="wrong_case",
            note=None,
        )

        baseline = case.baseline

        assert baseline is not None
        assert (baseline["score"], baseline["phase"]) == (22, "middle")

    def test_the_final_is_never_the_baseline_itself(self) -> None:
        case = in_end("ipt")
        sessions(case, 2)
        legacy(
            case,
            TherapyCase.MeasureEnteredInError,
            index=0,
            instrument="phq9",
            measured_on=TODAY.isoformat(),
            reason="wrong_case",
            note=None,
        )
        run(case, a_measure(15))

        rules, unchanged = refusal(case, Conclude.parse())

        assert case.baseline is not None and case.baseline["phase"] == "end"
        assert rules == ["end_measure_required"]
        assert unchanged


# --- §7 replacements, and the outcome revised after conclude --------------------------


def to_conclusion(case: TherapyCase, final: int) -> TherapyCase:
    """An ipt case ready for the middle, taken to conclude (16 sessions) with a
    final phq9 of `final` taken today."""
    run(case, StartMiddle.parse())
    sessions(case, 13)
    run(case, StartEnd.parse())
    sessions(case, 2)
    run(case, a_measure(final), Conclude.parse())
    return case


def concluded_with_dated_baseline(final: int = 8) -> TherapyCase:
    """Concluded on phq9 20 (two days ago) → `final` (today): a baseline that can
    be addressed apart from the final."""
    return to_conclusion(beginning_with(a_measure(20, TODAY - 2 * DAY)), final)


def replaced(score: int, on: date = TODAY) -> dict[str, Any]:
    return {"score": score, "measured_on": on}


class TestAMeasureCorrectionWithAReplacement:
    """§7: the entry is voided and its replacement recorded in the same save, in
    the phase of the entry it replaces."""

    def test_the_measure_is_voided_and_its_replacement_recorded_in_the_same_save(
        self,
    ) -> None:
        case = in_middle("ipt")
        new_events(case)

        run(case, void_measure(TODAY, replacement=replaced(22)))

        saved = new_events(case)
        assert names(saved) == ["MeasureEnteredInError", "SymptomsMeasured"]
        assert (saved[1].score, saved[1].phase, saved[1].replaces) == (
            22,
            "beginning",
            0,
        )
        assert [m["voided"] for m in case.measures] == [True, False]

    def test_a_replacement_takes_the_phase_of_the_entry_it_replaces(self) -> None:
        case = in_middle("ipt")
        run(case, a_measure(14, on=TODAY - DAY))
        sessions(case, 13)
        run(case, StartEnd.parse())

        run(case, void_measure(TODAY - DAY, replacement=replaced(12)))

        assert case.phase == "end"
        assert case.measures[-1]["phase"] == "middle"
        assert case.final_measure is None

    def test_a_replacement_on_a_session_correction_is_bad_input(self) -> None:
        with pytest.raises(InvalidInput) as invalid:
            CorrectEntry.parse(
                entry="session",
                reason="wrong_details",
                number=1,
                replacement=replaced(3),
                today=TODAY,
            )

        assert fields_of(invalid.value) == ["replacement"]

    @pytest.mark.parametrize(
        ("replacement", "bad"),
        [
            ({"score": 28, "measured_on": TODAY}, ["replacement.score"]),
            ({"score": 3, "measured_on": TODAY + 2 * DAY}, ["replacement.measured_on"]),
            ({"score": 3}, ["replacement.measured_on"]),
            ({"score": 3, "measured_on": TODAY, "phase": "end"}, ["replacement.phase"]),
            ([3, TODAY], ["replacement"]),
        ],
        ids=["score", "future", "no-date", "extra-field", "not-an-object"],
    )
    def test_a_malformed_replacement_names_its_field(
        self, replacement: object, bad: list[str]
    ) -> None:
        with pytest.raises(InvalidInput) as invalid:
            CorrectEntry.parse(
                entry="measure",
                reason="wrong_details",
                instrument="phq9",
                measured_on=TODAY,
                replacement=replacement,
                today=TODAY,
            )

        assert fields_of(invalid.value) == bad


class TestCorrectionsAfterConclude:
    """§7: after conclude a measure the outcome used needs a replacement; a
    correction that changes the class records OutcomeRevised, and revises the open
    offer or marks the revision as made after the client's decision (defect 3)."""

    @pytest.mark.parametrize(
        "build", [concluded, in_follow_up], ids=["concluded", "follow-up"]
    )
    def test_voiding_the_final_without_a_replacement_is_refused(
        self, build: Callable[[], TherapyCase]
    ) -> None:
        case = build()

        rules, unchanged = refusal(case, void_measure(TODAY))

        assert rules == ["replacement_required"]
        assert unchanged

    def test_voiding_the_baseline_without_a_replacement_is_refused(self) -> None:
        case = concluded_with_dated_baseline()

        rules, unchanged = refusal(case, void_measure(TODAY - 2 * DAY))

        assert rules == ["replacement_required"]
        assert unchanged

    def test_a_measure_the_outcome_did_not_use_is_voided_without_a_replacement(
        self,
    ) -> None:
        case = ready_to_conclude("ipt")
        run(case, a_measure(12, on=TODAY - DAY), Conclude.parse())
        new_events(case)

        run(case, void_measure(TODAY - DAY))

        assert names(new_events(case)) == ["MeasureEnteredInError"]
        assert case.outcome is not None
        assert case.outcome["classification"] == "response"

    def test_a_final_corrected_to_no_response_revises_the_outcome_and_the_offer(
        self,
    ) -> None:
        case = concluded()
        new_events(case)

        run(case, void_measure(TODAY, replacement=replaced(18)))

        saved = new_events(case)
        assert names(saved) == [
            "MeasureEnteredInError",
            "SymptomsMeasured",
            "OutcomeRevised",
            "FollowUpOfferRevised",
        ]
        revised, offer = saved[2], saved[3]
        assert revised.previous["classification"] == "response"
        assert revised.outcome["classification"] == "no_response"
        assert not revised.after_decision
        assert (offer.previous_kind, offer.kind) == ("continuation", "referral")
        assert case.follow_up_offer is not None
        assert case.follow_up_offer["kind"] == "referral"

    def test_the_revised_outcome_is_the_one_the_case_shows(self) -> None:
        case = concluded()

        run(case, void_measure(TODAY, replacement=replaced(18)))

        shown = shown_outcome(case)
        assert shown is not None
        assert (shown["final"], shown["classification"]) == (18, "no_response")
        assert case.outcome is not None
        assert case.outcome["classification"] == "no_response"

    def test_a_revised_referral_is_accepted_and_closes_the_case_as_referred(
        self,
    ) -> None:
        case = concluded()
        run(case, void_measure(TODAY, replacement=replaced(18)))

        run(case, AcceptFollowUp.parse())

        assert case.phase == "closed"
        assert case.ending is not None
        assert case.ending["disposition"] == "referred"

    def test_a_baseline_corrected_so_the_reduction_falls_below_a_quarter_revises_it(
        self,
    ) -> None:
        case = concluded_with_dated_baseline(final=8)
        new_events(case)

        run(
            case,
            void_measure(TODAY - 2 * DAY, replacement=replaced(10, TODAY - 2 * DAY)),
        )

        assert "OutcomeRevised" in names(new_events(case))
        assert case.outcome is not None
        assert (case.outcome["baseline"], case.outcome["classification"]) == (
            10,
            "no_response",
        )
        assert case.follow_up_offer is not None
        assert case.follow_up_offer["kind"] == "referral"

    def test_a_referral_corrected_to_a_response_offers_continuation_instead(
        self,
    ) -> None:
        case = concluded_with_referral()
        new_events(case)

        run(case, void_measure(TODAY, replacement=replaced(8)))

        offer = new_events(case)[-1]
        assert isinstance(offer, events.FollowUpOfferRevised)
        assert (offer.previous_kind, offer.kind) == ("referral", "continuation")
        assert case.follow_up_offer is not None
        assert case.follow_up_offer["kind"] == "continuation"

    def test_a_response_corrected_to_remission_withdraws_the_offer_so_the_case_may_close(  # noqa: E501
        self,
    ) -> None:
        case = concluded()
        new_events(case)

        run(case, void_measure(TODAY, replacement=replaced(3)), Close.parse())

        revised = [
            (e.previous_kind, e.kind)
            for e in new_events(case)
            if isinstance(e, events.FollowUpOfferRevised)
        ]
        assert revised == [("continuation", None)]
        assert case.ending is not None
        assert case.ending["disposition"] == "completed"

    def test_a_remission_without_an_offer_corrected_to_a_response_opens_continuation(
        self,
    ) -> None:
        case = concluded_in_remission()
        new_events(case)

        run(case, void_measure(TODAY, replacement=replaced(8)))

        saved = new_events(case)
        assert names(saved)[-2:] == ["OutcomeRevised", "FollowUpOfferRevised"]
        assert (saved[-1].previous_kind, saved[-1].kind) == (None, "continuation")
        rules, unchanged = refusal(case, Close.parse())
        assert rules == ["offer_awaiting_decision"]
        assert unchanged

    def test_a_maintenance_offer_becomes_continuation_when_remission_turns_partial(
        self,
    ) -> None:
        case = concluded(final=3, prior_episodes=3)
        assert case.follow_up_offer is not None
        assert case.follow_up_offer["kind"] == "maintenance"

        run(case, void_measure(TODAY, replacement=replaced(12)))

        assert case.outcome is not None
        assert case.outcome["classification"] == "partial_response"
        assert case.follow_up_offer is not None
        assert case.follow_up_offer["kind"] == "continuation"

    def test_a_correction_that_keeps_the_class_records_no_revision_but_shows_the_new_figures(  # noqa: E501
        self,
    ) -> None:
        case = concluded()
        new_events(case)

        run(case, void_measure(TODAY, replacement=replaced(9)))

        assert names(new_events(case)) == ["MeasureEnteredInError", "SymptomsMeasured"]
        shown = shown_outcome(case)
        assert shown is not None
        assert (shown["final"], shown["classification"]) == (9, "response")
        assert case.follow_up_offer is not None
        assert case.follow_up_offer["kind"] == "continuation"

    def test_after_the_client_accepted_the_revision_is_marked_and_no_offer_changes(
        self,
    ) -> None:
        case = in_follow_up()
        contract = case.follow_up_contract
        new_events(case)

        run(case, void_measure(TODAY, replacement=replaced(18)))

        saved = new_events(case)
        assert names(saved)[-1] == "OutcomeRevised"
        assert saved[-1].after_decision
        assert case.outcome_revised_after_decision
        assert (case.phase, case.follow_up_contract) == ("follow_up", contract)

    def test_after_the_client_declined_the_revision_is_marked_and_no_offer_opens(
        self,
    ) -> None:
        case = concluded()
        run(case, DeclineFollowUp.parse())
        new_events(case)

        run(case, void_measure(TODAY, replacement=replaced(18)))

        assert names(new_events(case))[-1] == "OutcomeRevised"
        assert case.outcome_revised_after_decision
        assert case.follow_up_offer is None

    def test_a_correction_that_would_leave_the_outcome_without_a_final_is_refused(
        self,
    ) -> None:
        case = to_conclusion(
            beginning_with(
                a_measure(20, TODAY - 10 * DAY),
                a_measure(30, TODAY - 9 * DAY, instrument="hamd17"),
            ),
            final=8,
        )
        moved = void_measure(
            TODAY - 10 * DAY, replacement=replaced(21, TODAY - 8 * DAY)
        )

        rules, unchanged = refusal(case, moved)

        assert rules == ["final_measure_still_required"]
        assert unchanged
        assert outcome_of(case) is not None

    def test_the_same_correction_keeping_its_date_is_accepted(self) -> None:
        case = to_conclusion(
            beginning_with(
                a_measure(20, TODAY - 10 * DAY),
                a_measure(30, TODAY - 9 * DAY, instrument="hamd17"),
            ),
            final=8,
        )

        run(
            case,
            void_measure(TODAY - 10 * DAY, replacement=replaced(21, TODAY - 10 * DAY)),
        )

        assert case.baseline is not None
        assert (case.baseline["instrument"], case.baseline["score"]) == ("phq9", 21)


# --- §7 renegotiation always leaves a way forward -------------------------------------


class TestTheContractsFloor:
    """§7: the lowest contract is the sessions held (by number), plus a middle
    session if none was held, plus the end sessions owed; agreeing and
    renegotiating use it and report every unmet rule at once (defects 5 and 8)."""

    def test_ipt_b_with_two_beginning_sessions_cannot_be_cut_to_four(self) -> None:
        case = beginning_ready("ipt-b")
        session(case)
        run(case, deviation())

        rules, unchanged = refusal(case, renegotiation(4))

        assert rules == ["contract_below_sessions_owed"]
        assert unchanged
        assert case.unused_deviations(DeviationRule.contract_range) == 1

    def test_ipt_b_cut_to_five_still_has_a_middle_and_an_end(self) -> None:
        case = beginning_ready("ipt-b")
        session(case)
        run(case, deviation())

        run(case, renegotiation(5), StartMiddle.parse())
        session(case)
        run(case, StartEnd.parse())

        assert case.phase == "end"
        assert case.acute_sessions_remaining == 2

    def test_ipt_with_ten_beginning_sessions_cannot_be_cut_to_twelve(self) -> None:
        case = beginning_ready("ipt")
        for _ in range(7):
            run(case, deviation("beginning_session_limit"))
        sessions(case, 9)

        rules, unchanged = refusal(case, renegotiation(12))

        assert case.last_session_number == 10
        assert rules == ["contract_below_sessions_owed"]
        assert unchanged

    def test_ipt_with_ten_beginning_sessions_cut_to_thirteen_reaches_conclude(
        self,
    ) -> None:
        case = beginning_ready("ipt")
        for _ in range(7):
            run(case, deviation("beginning_session_limit"))
        sessions(case, 9)

        run(case, renegotiation(13), StartMiddle.parse())
        session(case)
        run(case, StartEnd.parse())
        sessions(case, 2)
        run(case, a_measure(8), Conclude.parse())

        assert case.phase == "concluded"

    def test_agreeing_four_sessions_after_three_names_the_range_and_the_floor(
        self,
    ) -> None:
        case = open_case("ipt")
        sessions(case, 3)

        rules, unchanged = refusal(case, AgreeContract.parse(sessions=4))

        assert rules == ["contract_outside_range", "contract_below_sessions_owed"]
        assert unchanged
        assert case.contract is None

    def test_a_contract_may_be_agreed_at_the_floor(self) -> None:
        case = open_case("ipt-b")
        for _ in range(3):
            run(case, deviation("beginning_session_limit"))
        sessions(case, 5)

        run(case, AgreeContract.parse())

        assert case.contract == {"sessions": 8, "frequency": "weekly"}

    def test_voided_sessions_keep_their_numbers_in_the_floor(self) -> None:
        case = in_middle("ipt")
        sessions(case, 5)
        run(case, void_session(5), void_session(6), deviation())

        rules, unchanged = refusal(case, renegotiation(7))

        assert case.counted_sessions() == 4
        assert rules == ["contract_below_sessions_owed"]
        assert unchanged

    @pytest.mark.parametrize(
        ("beginning", "middle", "lowest"),
        [(3, 0, 6), (2, 1, 5)],
        ids=["no-middle-session-yet", "a-middle-session-held"],
    )
    def test_the_floor_adds_a_middle_session_only_while_none_is_held(
        self, beginning: int, middle: int, lowest: int
    ) -> None:
        case = beginning_ready("ipt")
        sessions(case, beginning - 1)
        run(case, StartMiddle.parse())
        sessions(case, middle)
        run(case, deviation())

        rules, unchanged = refusal(case, renegotiation(lowest - 1))
        run(case, renegotiation(lowest))

        assert case.last_session_number == 3
        assert rules == ["contract_below_sessions_owed"]
        assert unchanged
        assert case.contract is not None and case.contract["sessions"] == lowest

    def test_a_renegotiation_names_every_unmet_rule_at_once(self) -> None:
        case = in_end("ipt")

        rules, unchanged = refusal(case, renegotiation(10))

        assert rules == ["contract_outside_range", "contract_below_sessions_owed"]
        assert unchanged

    def test_a_renegotiation_over_the_range_and_the_end_maximum_names_both(
        self,
    ) -> None:
        case = in_end("ipt")

        rules, unchanged = refusal(case, renegotiation(20))

        assert rules == ["contract_outside_range", "end_phase_over_maximum"]
        assert unchanged


# --- §7 deviations --------------------------------------------------------------------


class TestContractRangeDeviations:
    """§7: a contract_range deviation is used up by the first renegotiation after
    it; a contract already outside the range may change its frequency alone."""

    def test_the_first_renegotiation_after_a_deviation_uses_it_even_within_the_range(
        self,
    ) -> None:
        case = beginning_ready("ipt")
        run(case, deviation())
        new_events(case)

        run(case, renegotiation(14))

        (renegotiated,) = new_events(case)
        assert renegotiated.deviation_used
        assert case.unused_deviations(DeviationRule.contract_range) == 0
        rules, unchanged = refusal(case, renegotiation(20))
        assert rules == ["contract_outside_range"]
        assert unchanged

    def test_a_contract_outside_the_range_changes_its_frequency_without_a_deviation(
        self,
    ) -> None:
        case = beginning_ready("ipt")
        run(case, deviation(), renegotiation(10))
        new_events(case)

        run(case, renegotiation(10, frequency="twice_weekly"))

        (renegotiated,) = new_events(case)
        assert not renegotiated.deviation_used
        assert case.contract == {"sessions": 10, "frequency": "twice_weekly"}

    def test_a_contract_outside_the_range_needs_a_new_deviation_to_change_its_count(
        self,
    ) -> None:
        case = beginning_ready("ipt")
        run(case, deviation(), renegotiation(10))

        rules, unchanged = refusal(case, renegotiation(11))

        assert rules == ["contract_outside_range"]
        assert unchanged

    def test_a_second_deviation_while_one_is_open_is_refused(self) -> None:
        case = beginning_ready("ipt")
        run(case, deviation())

        rules, unchanged = refusal(case, deviation())

        assert rules == ["deviation_already_open"]
        assert unchanged


# --- §7 how a follow-up ends ----------------------------------------------------------


class TestHowAFollowUpEnds:
    """§7: follow_up_completed only when every follow-up session was held or the
    reason is `completed`; otherwise follow_up_ended_early, with the reason
    (defect 6)."""

    def test_one_of_24_maintenance_sessions_closed_as_declined_ends_early(
        self,
    ) -> None:
        case = in_follow_up(follow_up_sessions=24)
        session(case)

        run(case, Close.parse(reason="client_declined_further_sessions"))

        assert case.ending == {
            "disposition": "follow_up_ended_early",
            "reason": "client_declined_further_sessions",
        }

    def test_every_follow_up_session_held_completes_it_without_a_reason(self) -> None:
        case = in_follow_up(follow_up_sessions=2)
        sessions(case, 2)

        run(case, Close.parse())

        assert case.ending == {"disposition": "follow_up_completed", "reason": None}

    def test_the_reason_completed_completes_a_follow_up_early(self) -> None:
        case = in_follow_up(follow_up_sessions=24)
        session(case)

        run(case, Close.parse(reason="completed"))

        assert case.ending == {
            "disposition": "follow_up_completed",
            "reason": "completed",
        }

    @pytest.mark.parametrize("reason", [None, "no_longer_needed", "moved"])
    def test_any_other_close_before_the_contract_is_held_ends_early(
        self, reason: str | None
    ) -> None:
        case = in_follow_up(follow_up_sessions=4)
        session(case)

        run(case, Close.parse(reason=reason))

        assert case.ending == {"disposition": "follow_up_ended_early", "reason": reason}

    def test_a_voided_follow_up_session_is_not_a_session_held(self) -> None:
        case = in_follow_up(follow_up_sessions=2)
        sessions(case, 2)
        run(case, void_session(2, entry="follow_up_session"))

        run(case, Close.parse(reason="no_longer_needed"))

        assert case.ending is not None
        assert case.ending["disposition"] == "follow_up_ended_early"


# --- defect 8: refusal texts ----------------------------------------------------------


class TestRefusalTexts:
    """Defect 8: "not in this phase" names where the command is possible and the
    phase the case is in, in plain words."""

    def test_a_post_group_meeting_in_follow_up_names_the_end_and_concluded_phases(
        self,
    ) -> None:
        case = in_follow_up("ipt-g")

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="individual_post_group")

        (violation,) = refused.value.violations
        assert violation.rule == "wrong_phase"
        assert violation.message == (
            "An individual post-group meeting is possible only in the end or "
            "concluded phase; the case is in the follow-up phase."
        )

    def test_a_group_session_in_the_concluded_phase_names_where_sessions_are_held(
        self,
    ) -> None:
        case = concluded("ipt-g")

        with pytest.raises(GuardFailed) as refused:
            session(case, attendees=("group",))

        (violation,) = refused.value.violations
        assert violation.message == (
            "A session is possible only in the beginning, middle, end or follow-up "
            "phase; the case is in the concluded phase."
        )

    def test_a_command_on_a_closed_case_says_the_case_is_closed(self) -> None:
        case = concluded_in_remission()
        run(case, Close.parse())

        with pytest.raises(GuardFailed) as refused:
            measure(case, 3)

        (violation,) = refused.value.violations
        assert violation.message.endswith("; the case is closed.")


# --- defect 10: malformed lists and values are bad input, never TypeError -------------


SESSION = {
    "held_on": TODAY,
    "minutes": 50,
    "modality": "in_person",
    "attendees": ["client"],
}
INVENTORY = {"relationships": [relationship()]}

MALFORMED: list[tuple[type[Command], dict[str, Any], list[str]]] = [
    (RecordSession, {"attendees": [{"role": "client"}]}, ["attendees[0]"]),
    (RecordSession, {"attendees": {"client": True}}, ["attendees"]),
    (RecordSession, {"attendees": [("client", ["x"])]}, ["attendees[0]"]),
    (RecordSession, {"strategies": [["role_play"]]}, ["strategies[0]"]),
    (RecordSession, {"communication_aspects": [{}]}, ["communication_aspects[0]"]),
    (RecordInventory, {"relationships": [1]}, ["relationships[0]"]),
    (RecordInventory, {"relationships": {"role": "partner"}}, ["relationships"]),
    (
        RecordInventory,
        {"relationships": [{"role": ["partner"], "closeness": {}}]},
        ["relationships[0].role", "relationships[0].closeness"],
    ),
    (RecordInventory, {"support_sources": [{"friend": 1}]}, ["support_sources[0]"]),
    (
        Conclude,
        {"termination_tasks": [["progress_reviewed"]]},
        ["termination_tasks[0]"],
    ),
    (Conclude, {"termination_tasks": "progress_reviewed"}, ["termination_tasks"]),
]
BASE: dict[type[Command], dict[str, Any]] = {
    RecordSession: SESSION,
    RecordInventory: INVENTORY,
}

CODES = sorted(
    {
        "phq9", "bdi2", "hamd17", "cdrsr", "measure", "session", "pre_group",
        "engagement", "therapy", "individual_pre_group", "client", "parent",
        "partner", "mother", "grief", "role_dispute", "impasse", "weekly",
        "monthly", "other", "completed", "crisis", "wrong_details",
        "progress_reviewed", "maintenance_discussed", "no_current_risk",
        "communication_analysis", "tone", "in_person", "continuation",
        "client_cancelled", "clinical_progress", "linked_to_onset", "passive",
        "secure", "ipt", "ipt-b@1", "clinic-1", "contract_range",
    }
)  # fmt: skip
KEYS = ["role", "closeness", "deceased", "current", "score", "measured_on", "x"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 130),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.sampled_from(CODES),
    st.sampled_from(["2026-03-01", "2026-02-30", "2026-03-02T10:00:00"]),
    st.dates(date(1890, 1, 1), TODAY + 3 * DAY),
)
ANYTHING = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=3)), inner, max_size=3
        ),
    ),
    max_leaves=8,
)


def parse_all_of(kind: type[Command], raw: dict[str, Any]) -> list[str]:
    """Parse raw values as `kind` (and as what it stands for, for the commands the
    case decides between): the fields named bad, [] if none."""
    try:
        command = kind.parse(today=TODAY, **raw)
        if isinstance(command, SetContract):
            command.as_agreement()
            command.as_renegotiation()
        if isinstance(command, DecideFollowUp):
            command.as_acceptance()
    except InvalidInput as invalid:
        return fields_of(invalid)
    return []


class TestMalformedInputIsBadInput:
    """Defect 10: the domain names each malformed field itself (InvalidInput),
    whatever shape it comes in; it never raises TypeError."""

    @pytest.mark.parametrize(
        ("kind", "values", "bad"),
        MALFORMED,
        ids=[f"{k.__name__}-{'-'.join(b)}" for k, _, b in MALFORMED],
    )
    def test_a_malformed_list_names_its_field(
        self, kind: type[Command], values: dict[str, Any], bad: list[str]
    ) -> None:
        raw = {**BASE.get(kind, {}), **values}

        with pytest.raises(InvalidInput) as invalid:
            kind.parse(today=TODAY, **raw)

        assert fields_of(invalid.value) == bad

    @pytest.mark.parametrize("kind", Command.__subclasses__(), ids=lambda k: k.__name__)
    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def test_any_value_in_any_field_is_parsed_or_named_as_bad_input(
        self, kind: type[Command], data: st.DataObject
    ) -> None:
        names_of_fields = [f.name for f in dataclasses.fields(kind)]
        raw = data.draw(
            st.fixed_dictionaries(
                {}, optional=dict.fromkeys(names_of_fields, ANYTHING)
            ),
            label="raw",
        )

        bad = parse_all_of(kind, raw)

        assert all(re.split(r"[.\[]", name)[0] in names_of_fields for name in bad)
