"""Recording sessions: phase limits, kinds, numbers, missed sessions, corrections
and middle-phase strategies (domain.md §3, §4; decisions D3, D5, D6)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.commands import (
    AgreeContract,
    CorrectEntry,
    RecordDeviation,
    RecordMissedSession,
    RecordSession,
    StartEnd,
    StartMiddle,
)
from ipt_workflow.domain.errors import GuardFailed, InvalidInput
from tests.unit.builders import (
    PROTOCOL_NAMES,
    SPECS,
    TODAY,
    agree_focus,
    closed,
    concluded,
    ctx,
    fields_of,
    in_end,
    in_follow_up,
    in_middle,
    measure,
    names,
    new_events,
    open_case,
    record_inventory,
    recorded,
    rules_of,
    session,
    sessions,
    sessions_until_refused,
)

GROUP_MEETINGS = (
    "individual_pre_group",
    "individual_mid_group",
    "individual_post_group",
)


def ready_for_sessions(protocol: str, contract: int | None = None) -> TherapyCase:
    """A case with inventory, focus, contract and baseline, and no session yet."""
    case = open_case(protocol)
    record_inventory(case)
    agree_focus(case)
    case.agree_contract(ctx(), AgreeContract.parse(sessions=contract))
    measure(case, 20)
    if protocol == "ipt-g":
        session(case, kind="individual_pre_group")
    return case


def numbers(first: int, last: int) -> list[int | None]:
    return list(range(first, last + 1))


class TestSessionNumbersAtTheDefaultContract:
    """Which session numbers each phase accepts, per protocol (domain.md §3, §4)."""

    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_each_phase_accepts_exactly_its_session_numbers(
        self, protocol: str
    ) -> None:
        spec = SPECS[protocol]
        case = ready_for_sessions(protocol)

        beginning, beginning_refusal = sessions_until_refused(
            case, attendees=("client", "parent")
        )
        case.start_middle(ctx(), StartMiddle.parse())
        middle, middle_refusal = sessions_until_refused(case)
        case.start_end(ctx(), StartEnd.parse())
        end, end_refusal = sessions_until_refused(case)

        assert beginning == numbers(1, spec.beginning_max)
        assert beginning_refusal == ["beginning_session_limit"]
        assert middle == numbers(spec.beginning_max + 1, spec.middle_last)
        assert middle_refusal == ["middle_session_limit"]
        assert end == numbers(spec.middle_last + 1, spec.default_contract)
        # At the end minimum the end phase is full too (ipt-b: 2 to 2 end sessions).
        full = ["end_phase_session_limit"] if spec.end_max == spec.end_min else []
        assert end_refusal == ["contract_session_limit", *full]

    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_a_phase_at_its_limit_stays_in_its_phase_and_records_nothing(
        self, protocol: str
    ) -> None:
        case = ready_for_sessions(protocol)
        sessions(case, SPECS[protocol].beginning_max, attendees=("client", "parent"))
        before = recorded(case)

        with pytest.raises(GuardFailed):
            session(case)

        assert case.phase == "beginning"
        assert recorded(case) == before

    def test_ipt_with_sixteen_sessions_ends_the_middle_phase_by_session_14(
        self,
    ) -> None:
        case = in_middle("ipt")
        sessions(case, 14 - case.counted_sessions())

        with pytest.raises(GuardFailed) as refused:
            session(case)

        assert case.last_session_number == 14
        assert rules_of(refused.value) == ["middle_session_limit"]
        assert "14" in refused.value.violations[0].message

    def test_a_smaller_contract_ends_the_middle_phase_earlier(self) -> None:
        case = in_middle("ipt", contract=12)

        accepted, refusal = sessions_until_refused(case)

        assert accepted[-1] == 10
        assert refusal == ["middle_session_limit"]


class TestBeginningSessionLimit:
    def test_a_beginning_session_limit_deviation_allows_one_more_session(
        self,
    ) -> None:
        case = ready_for_sessions("ipt")
        case.record_deviation(
            ctx(),
            RecordDeviation.parse(rule="beginning_session_limit", reason="crisis"),
        )

        accepted, refusal = sessions_until_refused(case)

        assert accepted == [1, 2, 3, 4]
        assert refusal == ["beginning_session_limit"]

    def test_two_deviations_allow_two_more_sessions(self) -> None:
        case = ready_for_sessions("ipt-b")
        case.record_deviation(
            ctx(),
            RecordDeviation.parse(rule="beginning_session_limit", reason="crisis"),
        )
        case.record_deviation(
            ctx(),
            RecordDeviation.parse(
                rule="beginning_session_limit", reason="client_request"
            ),
        )

        accepted, _ = sessions_until_refused(case)

        assert accepted == [1, 2, 3, 4]

    def test_sessions_before_the_contract_count_toward_the_beginning_limit(
        self,
    ) -> None:
        case = open_case("ipt")

        accepted, refusal = sessions_until_refused(case)

        assert accepted == [1, 2, 3]
        assert refusal == ["beginning_session_limit"]


class TestEndAndFollowUpSessionLimits:
    def test_the_end_phase_takes_sessions_up_to_the_contracts_count(self) -> None:
        case = in_end("ipt")

        accepted, refusal = sessions_until_refused(case)

        assert accepted == [15, 16]
        assert refusal == ["contract_session_limit"]

    def test_follow_up_sessions_are_numbered_from_1_up_to_their_contract(
        self,
    ) -> None:
        case = in_follow_up("ipt", follow_up_sessions=3)

        accepted, refusal = sessions_until_refused(case)

        assert accepted == [1, 2, 3]
        assert refusal == ["follow_up_session_limit"]
        assert case.follow_up_sessions_held == 3
        assert case.counted_sessions() == 16

    def test_follow_up_sessions_remaining_count_down_the_follow_up_contract(
        self,
    ) -> None:
        case = in_follow_up("ipt", follow_up_sessions=4)

        session(case)

        assert case.sessions_remaining == 3


class TestSessionKinds:
    @pytest.mark.parametrize("attendees", [("parent",), ("partner",), ("group",)])
    def test_a_therapy_session_counts_whoever_attends(
        self, attendees: tuple[str, ...]
    ) -> None:
        case = open_case("ipt")

        result = session(case, attendees=attendees)

        assert result.session_number == 1
        assert case.counted_sessions() == 1

    def test_a_session_records_its_number_phase_and_details(self) -> None:
        case = in_middle("ipt")
        new_events(case)

        case.record_session(
            ctx(),
            RecordSession.parse(
                held_on=TODAY,
                minutes=45,
                modality="video",
                attendees=["client", "partner"],
                kind="therapy",
                today=TODAY,
            ),
        )

        event = new_events(case)[-1]
        assert isinstance(event, events.SessionHeld)
        assert (event.number, event.phase, event.follow_up) == (2, "middle", False)
        assert (event.held_on, event.minutes, event.modality) == (
            TODAY.isoformat(),
            45,
            "video",
        )
        assert event.attendees == ["client", "partner"]

    def test_ipt_b_takes_one_engagement_session_before_session_1_without_a_number(
        self,
    ) -> None:
        case = open_case("ipt-b")

        engagement = session(case, kind="engagement")
        first = session(case)

        assert engagement.session_number is None
        assert first.session_number == 1
        assert case.counted_sessions() == 1

    def test_ipt_b_refuses_a_second_engagement_session(self) -> None:
        case = open_case("ipt-b")
        session(case, kind="engagement")

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="engagement")

        assert rules_of(refused.value) == ["engagement_already_held"]

    def test_ipt_b_refuses_an_engagement_session_after_session_1(self) -> None:
        case = open_case("ipt-b")
        session(case)
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="engagement")

        assert rules_of(refused.value) == ["engagement_after_first_session"]
        assert recorded(case) == before

    @pytest.mark.parametrize("protocol", ["ipt", "ipt-a", "fb-ipt", "ipt-g"])
    def test_protocols_other_than_ipt_b_have_no_engagement_session(
        self, protocol: str
    ) -> None:
        case = open_case(protocol)

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="engagement")

        assert rules_of(refused.value) == ["session_kind_not_in_protocol"]

    @pytest.mark.parametrize("protocol", ["ipt", "ipt-a", "fb-ipt", "ipt-b"])
    @pytest.mark.parametrize("kind", GROUP_MEETINGS)
    def test_protocols_other_than_ipt_g_have_no_group_meetings(
        self, protocol: str, kind: str
    ) -> None:
        case = open_case(protocol)

        with pytest.raises(GuardFailed) as refused:
            session(case, kind=kind)

        assert rules_of(refused.value) == ["session_kind_not_in_protocol"]

    def test_ipt_g_refuses_a_group_session_before_the_pre_group_meeting(
        self,
    ) -> None:
        case = open_case("ipt-g")
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            session(case, attendees=("group",))

        assert rules_of(refused.value) == ["pre_group_meeting_required"]
        assert recorded(case) == before

    def test_ipt_g_takes_the_first_group_session_after_the_pre_group_meeting(
        self,
    ) -> None:
        case = open_case("ipt-g")

        pre_group = session(case, kind="individual_pre_group")
        first = session(case, attendees=("group",))

        assert pre_group.session_number is None
        assert first.session_number == 1

    def test_ipt_g_refuses_a_pre_group_meeting_after_the_beginning(self) -> None:
        case = in_middle("ipt-g")

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="individual_pre_group")

        assert rules_of(refused.value) == ["wrong_phase"]

    @pytest.mark.parametrize("phase", ["middle", "end"])
    def test_ipt_g_records_a_mid_group_meeting_in_the_middle_and_end(
        self, phase: str
    ) -> None:
        case = in_middle("ipt-g") if phase == "middle" else in_end("ipt-g")
        counted = case.counted_sessions()

        result = session(case, kind="individual_mid_group")

        assert result.session_number is None
        assert case.counted_sessions() == counted
        assert case.sessions[-1]["phase"] == phase

    def test_ipt_g_refuses_a_mid_group_meeting_in_the_beginning(self) -> None:
        case = open_case("ipt-g")

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="individual_mid_group")

        assert rules_of(refused.value) == ["wrong_phase"]

    @pytest.mark.parametrize("phase", ["end", "concluded"])
    def test_ipt_g_records_a_post_group_meeting_in_the_end_and_concluded(
        self, phase: str
    ) -> None:
        case = in_end("ipt-g") if phase == "end" else concluded("ipt-g")
        counted = case.counted_sessions()

        result = session(case, kind="individual_post_group")

        assert result.session_number is None
        assert case.counted_sessions() == counted
        assert case.phase == phase

    def test_ipt_g_refuses_a_post_group_meeting_in_the_middle(self) -> None:
        case = in_middle("ipt-g")

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="individual_post_group")

        assert rules_of(refused.value) == ["wrong_phase"]

    def test_ipt_g_refuses_a_post_group_meeting_once_the_case_is_closed(
        self,
    ) -> None:
        case = closed("ipt-g")

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="individual_post_group")

        assert rules_of(refused.value) == ["wrong_phase"]

    def test_a_therapy_session_in_the_concluded_phase_is_refused(self) -> None:
        case = concluded("ipt-g")
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            session(case, attendees=("group",))

        assert rules_of(refused.value) == ["wrong_phase"]
        assert recorded(case) == before

    @pytest.mark.parametrize("protocol", ["ipt", "ipt-b"])
    def test_a_post_group_meeting_in_a_concluded_individual_case_is_refused(
        self, protocol: str
    ) -> None:
        case = concluded(protocol)

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="individual_post_group")

        assert rules_of(refused.value) == ["session_kind_not_in_protocol"]


class TestRecordMissedSession:
    @pytest.mark.parametrize(
        "build", [open_case, in_middle, in_end, in_follow_up], ids=lambda f: f.__name__
    )
    def test_a_missed_session_is_recorded_and_counts_toward_nothing(
        self, build: Callable[[], TherapyCase]
    ) -> None:
        case = build()
        counted = case.counted_sessions()
        follow_up = case.follow_up_sessions_held

        case.record_missed_session(
            ctx(),
            RecordMissedSession.parse(
                scheduled_on=TODAY, reason="client_cancelled", today=TODAY
            ),
        )

        assert names(new_events(case))[-1] == "SessionMissed"
        assert case.counted_sessions() == counted
        assert case.follow_up_sessions_held == follow_up
        assert case.missed_sessions[-1]["phase"] == case.phase

    def test_a_missed_session_does_not_take_a_session_number(self) -> None:
        case = open_case()
        session(case)
        case.record_missed_session(
            ctx(),
            RecordMissedSession.parse(
                scheduled_on=TODAY, reason="client_did_not_attend", today=TODAY
            ),
        )

        result = session(case)

        assert result.session_number == 2

    def test_missed_sessions_do_not_use_up_the_beginning_limit(self) -> None:
        case = open_case("ipt-b")
        for _ in range(3):
            case.record_missed_session(
                ctx(),
                RecordMissedSession.parse(
                    scheduled_on=TODAY, reason="clinician_cancelled", today=TODAY
                ),
            )

        accepted, _ = sessions_until_refused(case)

        assert accepted == [1, 2]

    def test_a_missed_session_in_the_concluded_phase_is_refused(self) -> None:
        case = concluded()

        with pytest.raises(GuardFailed) as refused:
            case.record_missed_session(
                ctx(),
                RecordMissedSession.parse(
                    scheduled_on=TODAY, reason="client_cancelled", today=TODAY
                ),
            )

        assert rules_of(refused.value) == ["wrong_phase"]


class TestRecordMeasure:
    @pytest.mark.parametrize(
        "build",
        [open_case, in_middle, in_end, concluded, in_follow_up],
        ids=lambda f: f.__name__,
    )
    def test_a_measure_is_recorded_in_every_phase_that_is_not_final(
        self, build: Callable[[], TherapyCase]
    ) -> None:
        case = build()
        new_events(case)

        measure(case, 7, "hamd17")

        event = new_events(case)[-1]
        assert isinstance(event, events.SymptomsMeasured)
        assert (event.instrument, event.score, event.phase) == ("hamd17", 7, case.phase)
        assert case.latest_measure is not None
        assert case.latest_measure["instrument"] == "hamd17"

    def test_the_first_measure_is_the_baseline(self) -> None:
        case = open_case()

        measure(case, 30, "bdi2")
        measure(case, 12, "phq9")

        assert case.baseline is not None
        assert (case.baseline["instrument"], case.baseline["score"]) == ("bdi2", 30)

    def test_a_measure_in_a_final_phase_is_refused(self) -> None:
        case = closed()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            measure(case, 7)

        assert rules_of(refused.value) == ["wrong_phase"]
        assert recorded(case) == before


class TestCorrectEntry:
    def test_a_voided_session_no_longer_counts_and_its_number_is_not_reused(
        self,
    ) -> None:
        case = ready_for_sessions("ipt")
        sessions(case, 3)

        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="session", reason="duplicate_entry", number=2, today=TODAY
            ),
        )
        accepted, refusal = sessions_until_refused(case)

        assert names(new_events(case)).count("SessionEnteredInError") == 1
        assert accepted == [4]
        assert refusal == ["beginning_session_limit"]
        assert [s["number"] for s in case.sessions if not s["voided"]] == [1, 3, 4]

    def test_a_voided_middle_session_keeps_its_number_so_it_gives_back_no_slot(
        self,
    ) -> None:
        case = in_middle("ipt")
        sessions(case, 14 - case.counted_sessions())

        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="session", reason="wrong_case", number=5, today=TODAY
            ),
        )
        accepted, refusal = sessions_until_refused(case)

        assert accepted == []
        assert refusal == ["middle_session_limit"]
        assert case.acute_sessions_remaining == 2

    def test_a_voided_measure_is_no_longer_the_baseline(self) -> None:
        case = open_case()
        measure(case, 20, "phq9")
        measure(case, 30, "bdi2")

        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="measure",
                reason="wrong_details",
                measured_on=TODAY,
                instrument="phq9",
                today=TODAY,
            ),
        )

        assert names(new_events(case))[-1] == "MeasureEnteredInError"
        assert case.baseline is not None
        assert (case.baseline["instrument"], case.baseline["score"]) == ("bdi2", 30)

    def test_voiding_an_already_voided_session_is_refused(self) -> None:
        case = open_case()
        session(case)
        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="session", reason="duplicate_entry", number=1, today=TODAY
            ),
        )
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.correct_entry(
                ctx(),
                CorrectEntry.parse(
                    entry="session", reason="duplicate_entry", number=1, today=TODAY
                ),
            )

        assert rules_of(refused.value) == ["entry_already_voided"]
        assert recorded(case) == before

    def test_voiding_an_already_voided_measure_is_refused(self) -> None:
        case = open_case()
        measure(case, 20)
        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="measure",
                reason="wrong_case",
                measured_on=TODAY,
                instrument="phq9",
                today=TODAY,
            ),
        )

        with pytest.raises(GuardFailed) as refused:
            case.correct_entry(
                ctx(),
                CorrectEntry.parse(
                    entry="measure",
                    reason="wrong_case",
                    measured_on=TODAY,
                    instrument="phq9",
                    today=TODAY,
                ),
            )

        assert rules_of(refused.value) == ["entry_already_voided"]

    def test_voiding_a_session_that_does_not_exist_is_refused(self) -> None:
        case = open_case()
        session(case)

        with pytest.raises(GuardFailed) as refused:
            case.correct_entry(
                ctx(),
                CorrectEntry.parse(
                    entry="session", reason="wrong_case", number=2, today=TODAY
                ),
            )

        assert rules_of(refused.value) == ["entry_not_found"]

    def test_voiding_a_measure_that_does_not_exist_is_refused(self) -> None:
        case = open_case()
        measure(case, 20, "phq9")

        with pytest.raises(GuardFailed) as refused:
            case.correct_entry(
                ctx(),
                CorrectEntry.parse(
                    entry="measure",
                    reason="wrong_case",
                    measured_on=TODAY,
                    instrument="bdi2",
                    today=TODAY,
                ),
            )

        assert rules_of(refused.value) == ["entry_not_found"]

    def test_a_follow_up_session_is_voided_apart_from_the_acute_session_1(
        self,
    ) -> None:
        case = in_follow_up("ipt")
        session(case)

        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="follow_up_session", reason="wrong_details", number=1, today=TODAY
            ),
        )

        assert case.follow_up_sessions_held == 0
        assert case.counted_sessions() == 16
        assert session(case).session_number == 2

    def test_correcting_an_entry_in_a_final_phase_is_refused(self) -> None:
        case = closed()

        with pytest.raises(GuardFailed) as refused:
            case.correct_entry(
                ctx(),
                CorrectEntry.parse(
                    entry="session", reason="wrong_case", number=1, today=TODAY
                ),
            )

        assert rules_of(refused.value) == ["wrong_phase"]


class TestMiddlePhaseStrategies:
    def test_a_middle_session_records_its_strategies_and_aspects(self) -> None:
        case = in_middle()

        session(
            case,
            strategies=("communication_analysis", "role_play"),
            communication_aspects=("tone", "timing"),
        )

        assert case.sessions[-1]["strategies"] == [
            "communication_analysis",
            "role_play",
        ]
        assert case.sessions[-1]["communication_aspects"] == ["tone", "timing"]

    @pytest.mark.parametrize(
        "build", [open_case, in_end, in_follow_up], ids=lambda f: f.__name__
    )
    def test_strategies_on_a_session_outside_the_middle_phase_are_refused(
        self, build: Callable[[], TherapyCase]
    ) -> None:
        case = build()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            session(case, strategies=("decision_analysis",))

        assert rules_of(refused.value) == ["strategies_only_in_middle"]
        assert recorded(case) == before

    def test_communication_aspects_without_communication_analysis_are_refused(
        self,
    ) -> None:
        case = in_middle()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            session(case, strategies=("role_play",), communication_aspects=("tone",))

        assert fields_of(refused.value) == ["communication_aspects"]
        assert recorded(case) == before

    def test_a_mid_group_meeting_in_the_middle_phase_may_record_strategies(
        self,
    ) -> None:
        case = in_middle("ipt-g")

        session(case, kind="individual_mid_group", strategies=("role_play",))

        assert case.sessions[-1]["strategies"] == ["role_play"]

    @pytest.mark.parametrize(
        ("phase", "kind"),
        [
            ("beginning", "individual_pre_group"),
            ("end", "individual_mid_group"),
            ("end", "individual_post_group"),
            ("concluded", "individual_post_group"),
        ],
    )
    def test_strategies_on_a_group_meeting_outside_the_middle_phase_are_refused(
        self, phase: str, kind: str
    ) -> None:
        build: dict[str, Callable[[str], TherapyCase]] = {
            "beginning": open_case,
            "end": in_end,
            "concluded": concluded,
        }
        case = build[phase]("ipt-g")
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            session(case, kind=kind, strategies=("decision_analysis",))

        assert rules_of(refused.value) == ["strategies_only_in_middle"]
        assert recorded(case) == before

    def test_strategies_on_an_engagement_session_are_refused(self) -> None:
        case = open_case("ipt-b")

        with pytest.raises(GuardFailed) as refused:
            session(case, kind="engagement", strategies=("role_play",))

        assert rules_of(refused.value) == ["strategies_only_in_middle"]


class TestDeviationsStayWithinTheContract:
    def test_extra_beginning_sessions_never_crowd_out_the_middle_and_end(self) -> None:
        case = open_case("ipt")
        case.agree_contract(ctx(), AgreeContract.parse(sessions=12))
        for _ in range(10):
            case.record_deviation(
                ctx(),
                RecordDeviation.parse(rule="beginning_session_limit", reason="crisis"),
            )

        numbers, rules = sessions_until_refused(case)

        assert numbers == list(range(1, 10))
        assert rules == ["contract_session_limit"]

    def test_a_contract_smaller_than_the_sessions_already_held_is_refused(self) -> None:
        case = open_case("ipt")
        for _ in range(8):
            case.record_deviation(
                ctx(),
                RecordDeviation.parse(rule="beginning_session_limit", reason="crisis"),
            )
        sessions(case, 10)
        before = (case.version, len(case.pending_events))

        with pytest.raises(GuardFailed) as refused:
            case.agree_contract(ctx(), AgreeContract.parse(sessions=12))

        assert rules_of(refused.value) == ["contract_below_sessions_owed"]
        assert (case.version, len(case.pending_events)) == before
        case.agree_contract(ctx(), AgreeContract.parse(sessions=13))
        assert case.contract == {"sessions": 13, "frequency": "weekly"}
