"""Safety, relapse and what the seed says the clinician records (domain.md §8):
risk items and their reviews, suspected relapse in follow-up, instruments that fit
the client's age, the end phase's termination tasks, the inventory's fields, and
the protocol's parameters a case shows.

Every refusal names its rule codes (or bad fields) exactly and is checked to
record nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from ipt_workflow.api.views import case_view, protocol_view
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Phase, Transition
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    Close,
    Command,
    CommandContext,
    Conclude,
    RecordInventory,
    RecordMeasure,
    RecordRiskReview,
    StartEnd,
    StartMiddle,
)
from ipt_workflow.domain.errors import GuardFailed, InvalidInput
from ipt_workflow.domain.protocols import PROTOCOLS, find_protocol
from tests.unit.builders import (
    PROTOCOL_NAMES,
    TODAY,
    beginning_ready,
    concluded,
    concluded_in_remission,
    ctx,
    fields_of,
    in_end,
    in_follow_up,
    in_middle,
    names,
    new_events,
    open_case,
    ready_to_conclude,
    recorded,
    refusal,
    relationship,
    run,
    sessions,
)

DAY = timedelta(days=1)


def scored(
    score: int,
    instrument: str = "phq9",
    risk_item: int | None = None,
    on: date = TODAY,
) -> RecordMeasure:
    return RecordMeasure.parse(
        instrument=instrument,
        score=score,
        measured_on=on,
        risk_item=risk_item,
        today=TODAY,
    )


def review(outcome: str = "safety_plan_made", note: str | None = None) -> Command:
    return RecordRiskReview.parse(outcome=outcome, note=note)


def followed_up_after_remission(
    protocol: str = "ipt", baseline: int | None = None, final: int = 3
) -> TherapyCase:
    """A case concluded in remission after 3 prior episodes, in maintenance IPT."""
    case = concluded(protocol, baseline=baseline, final=final, prior_episodes=3)
    run(case, AcceptFollowUp.parse(sessions=12, frequency="monthly"))
    return case


# --- risk item ------------------------------------------------------------------------


class TestARiskItemAboveZeroFlagsRisk:
    """§8: a phq9 or bdi2 measure may carry its item 9 (0-3); above 0 it records
    RiskFlagged in the same save and the case shows the flag."""

    @pytest.mark.parametrize(("instrument", "score"), [("phq9", 15), ("bdi2", 30)])
    def test_a_risk_item_above_zero_records_a_flag_in_the_same_save(
        self, instrument: str, score: int
    ) -> None:
        case = in_middle("ipt")
        new_events(case)

        run(case, scored(score, instrument, risk_item=2, on=TODAY - DAY))

        saved = new_events(case)
        assert names(saved) == ["SymptomsMeasured", "RiskFlagged"]
        assert len({e.command_id for e in saved}) == 1
        assert saved[1].item == 2
        assert case.measures[-1]["risk_item"] == 2
        assert case.risk is not None
        assert {k: case.risk[k] for k in ("item", "instrument", "measured_on")} == {
            "item": 2,
            "instrument": instrument,
            "measured_on": (TODAY - DAY).isoformat(),
        }
        assert case.risk["review"] is None

    def test_a_risk_item_of_zero_records_no_flag(self) -> None:
        case = in_middle("ipt")
        new_events(case)

        run(case, scored(15, risk_item=0))

        assert names(new_events(case)) == ["SymptomsMeasured"]
        assert case.measures[-1]["risk_item"] == 0
        assert case.risk is None

    def test_the_case_shows_the_latest_flag_not_yet_followed_up(self) -> None:
        case = in_middle("ipt")
        run(case, scored(15, risk_item=1, on=TODAY - 2 * DAY))

        run(case, scored(18, risk_item=3, on=TODAY - DAY))

        shown = case_view(case, None)["risk"]
        assert (shown["item"], shown["measured_on"], shown["followed_up"]) == (
            3,
            (TODAY - DAY).isoformat(),
            False,
        )

    def test_a_later_measure_with_no_risk_leaves_the_open_flag_open(self) -> None:
        case = in_middle("ipt")
        run(case, scored(15, risk_item=2))

        run(case, scored(9, risk_item=0))

        assert case.risk is not None
        assert (case.risk["item"], case.risk["review"]) == (2, None)

    def test_a_flag_never_blocks_the_course(self) -> None:
        case = ready_to_conclude("ipt")
        run(case, scored(8, risk_item=3))

        why_not = case.why_not()[Transition.conclude]
        run(case, Conclude.parse())

        assert why_not == []
        assert case.phase == "concluded"
        assert case.risk is not None and case.risk["review"] is None

    def test_a_flag_in_the_beginning_does_not_hold_up_the_middle_phase(self) -> None:
        case = beginning_ready("ipt")
        run(case, scored(22, risk_item=1))

        run(case, StartMiddle.parse())

        assert case.phase == "middle"

    @pytest.mark.parametrize("instrument", ["hamd17", "cdrsr"])
    def test_a_risk_item_on_an_instrument_without_one_is_bad_input(
        self, instrument: str
    ) -> None:
        with pytest.raises(InvalidInput) as invalid:
            scored(30, instrument, risk_item=1)

        assert fields_of(invalid.value) == ["risk_item"]
        assert "phq9" in invalid.value.errors[0].message

    @pytest.mark.parametrize("risk_item", [-1, 4, "2", True, 1.5])
    def test_a_risk_item_outside_0_to_3_is_bad_input(self, risk_item: object) -> None:
        with pytest.raises(InvalidInput) as invalid:
            RecordMeasure.parse(
                instrument="phq9",
                score=12,
                measured_on=TODAY,
                risk_item=risk_item,
                today=TODAY,
            )

        assert fields_of(invalid.value) == ["risk_item"]

    def test_a_measure_with_a_bad_risk_item_records_nothing(self) -> None:
        case = in_middle("ipt")
        before = recorded(case)

        with pytest.raises(InvalidInput):
            case.handle(ctx(), scored(12, "hamd17", risk_item=2))

        assert recorded(case) == before


class TestARiskReviewFollowsUpTheFlag:
    """§8: record_risk_review (who, outcome) clears the open flag; there is none to
    clear without a flag."""

    @pytest.mark.parametrize(
        "outcome", ["no_current_risk", "safety_plan_made", "referred_urgent"]
    )
    def test_a_review_records_who_and_the_outcome_and_clears_the_flag(
        self, outcome: str
    ) -> None:
        case = in_middle("ipt")
        run(case, scored(15, risk_item=2))
        new_events(case)

        case.handle(CommandContext(recorded_by="dr-lee", today=TODAY), review(outcome))

        assert names(new_events(case)) == ["RiskReviewed"]
        assert case.risk is not None
        assert case.risk["review"] is not None
        assert (case.risk["review"]["outcome"], case.risk["review"]["by"]) == (
            outcome,
            "dr-lee",
        )
        assert case_view(case, None)["risk"]["followed_up"]

    def test_a_review_entered_for_a_clinician_is_that_clinicians_review(self) -> None:
        case = in_middle("ipt")
        run(case, scored(15, risk_item=2))
        for_dr_lee = CommandContext(
            recorded_by="assistant-3", today=TODAY, on_behalf_of="dr-lee"
        )

        case.handle(for_dr_lee, review())

        assert case.risk is not None and case.risk["review"] is not None
        assert case.risk["review"]["by"] == "dr-lee"

    def test_a_review_with_the_outcome_other_keeps_its_note(self) -> None:
        case = in_middle("ipt")
        run(case, scored(15, risk_item=1))
        new_events(case)

        run(case, review("other", note="seen with the GP"))

        (reviewed,) = new_events(case)
        assert (reviewed.outcome, reviewed.note) == ("other", "seen with the GP")

    def test_a_review_without_a_flag_is_refused(self) -> None:
        case = in_middle("ipt")

        rules, unchanged = refusal(case, review())

        assert rules == ["no_open_risk_flag"]
        assert unchanged

    def test_a_second_review_of_the_same_flag_is_refused(self) -> None:
        case = in_middle("ipt")
        run(case, scored(15, risk_item=2), review())

        rules, unchanged = refusal(case, review())

        assert rules == ["no_open_risk_flag"]
        assert unchanged

    def test_a_new_flag_after_a_review_is_open_again(self) -> None:
        case = in_middle("ipt")
        run(case, scored(15, risk_item=2, on=TODAY - DAY), review())

        run(case, scored(16, risk_item=1))

        assert case.risk is not None
        assert (case.risk["item"], case.risk["review"]) == (1, None)

    @pytest.mark.parametrize(
        ("values", "bad"),
        [
            ({"outcome": "all_fine"}, ["outcome"]),
            ({"outcome": "no_current_risk", "note": "calm"}, ["note"]),
            ({}, ["outcome"]),
        ],
        ids=["unknown-outcome", "note-without-other", "no-outcome"],
    )
    def test_a_malformed_review_is_bad_input(
        self, values: dict[str, Any], bad: list[str]
    ) -> None:
        with pytest.raises(InvalidInput) as invalid:
            RecordRiskReview.parse(**values)

        assert fields_of(invalid.value) == bad

    def test_a_review_on_a_closed_case_is_refused_as_the_wrong_phase(self) -> None:
        case = concluded_in_remission()
        run(case, scored(3, risk_item=1), Close.parse())

        rules, unchanged = refusal(case, review())

        assert rules == ["wrong_phase"]
        assert unchanged


# --- relapse --------------------------------------------------------------------------


class TestSuspectedRelapseInFollowUp:
    """§8: in follow-up, a measure with the baseline's instrument in the residual
    range after a remission, or at or above the baseline, records RelapseSuspected
    (CDRS-R: at 40 or more, research notes R19-R21)."""

    def test_a_residual_score_after_a_remission_suggests_relapse(self) -> None:
        case = followed_up_after_remission(final=3)
        new_events(case)

        run(case, scored(5))

        saved = new_events(case)
        assert names(saved) == ["SymptomsMeasured", "RelapseSuspected"]
        assert saved[1].reason == "residual_after_remission"
        assert case.relapse == {
            "instrument": "phq9",
            "score": 5,
            "measured_on": TODAY.isoformat(),
            "reason": "residual_after_remission",
        }

    def test_a_score_still_in_remission_suggests_nothing(self) -> None:
        case = followed_up_after_remission(final=3)
        new_events(case)

        run(case, scored(4))

        assert names(new_events(case)) == ["SymptomsMeasured"]
        assert case.relapse is None

    @pytest.mark.parametrize(
        ("score", "relapse"), [(20, True), (24, True), (19, False)]
    )
    def test_after_a_response_a_score_at_or_above_the_baseline_suggests_relapse(
        self, score: int, relapse: bool
    ) -> None:
        case = in_follow_up()

        run(case, scored(score))

        assert (case.relapse is not None) == relapse
        if relapse:
            assert case.relapse is not None
            assert case.relapse["reason"] == "at_or_above_baseline"

    def test_a_measure_on_another_instrument_suggests_nothing(self) -> None:
        case = followed_up_after_remission(final=3)

        run(case, scored(40, "hamd17"))

        assert case.relapse is None

    def test_a_measure_before_follow_up_suggests_nothing(self) -> None:
        case = concluded_in_remission()

        run(case, scored(20))

        assert case.phase == "concluded"
        assert case.relapse is None

    @pytest.mark.parametrize(("score", "relapse"), [(39, False), (40, True)])
    def test_cdrs_r_after_a_remission_suggests_relapse_from_40(
        self, score: int, relapse: bool
    ) -> None:
        case = followed_up_after_remission("fb-ipt", baseline=60, final=28)
        assert case.outcome is not None
        assert case.outcome["classification"] == "remission"

        run(case, scored(score, "cdrsr"))

        assert (case.relapse is not None) == relapse

    def test_a_relapse_and_a_risk_flag_are_recorded_in_the_same_save(self) -> None:
        case = followed_up_after_remission(final=3)
        new_events(case)

        run(case, scored(12, risk_item=1))

        assert names(new_events(case)) == [
            "SymptomsMeasured",
            "RiskFlagged",
            "RelapseSuspected",
        ]


# --- instruments by age ---------------------------------------------------------------


AGES = [
    ("fb-ipt", 7, "cdrsr", True),
    ("fb-ipt", 11, "cdrsr", True),
    ("fb-ipt", 11, "phq9", False),
    ("fb-ipt", 11, "bdi2", False),
    ("fb-ipt", 11, "hamd17", False),
    ("fb-ipt", 12, "phq9", True),
    ("ipt-a", 12, "bdi2", True),
    ("ipt-a", 17, "cdrsr", True),
    ("ipt-a", 18, "cdrsr", False),
    ("ipt-a", 18, "hamd17", True),
    ("ipt", 18, "cdrsr", False),
    ("ipt", 80, "hamd17", True),
]
LOWEST_SCORE = {"phq9": 0, "bdi2": 0, "hamd17": 0, "cdrsr": 17}


class TestInstrumentsFitTheAge:
    """§8: cdrsr for ages 6-17; phq9, bdi2 and hamd17 from 12; anything else is
    refused as a rule (it depends on the case)."""

    @pytest.mark.parametrize(
        ("protocol", "age", "instrument", "fits"),
        AGES,
        ids=[f"{p}-{a}-{i}" for p, a, i, _ in AGES],
    )
    def test_a_measure_is_accepted_only_on_an_instrument_for_the_clients_age(
        self, protocol: str, age: int, instrument: str, fits: bool
    ) -> None:
        case = open_case(protocol, age=age)
        command = scored(LOWEST_SCORE[instrument] + 10, instrument)

        if fits:
            run(case, command)
            assert case.baseline is not None
            assert case.baseline["instrument"] == instrument
        else:
            rules, unchanged = refusal(case, command)
            assert rules == ["instrument_not_for_age"]
            assert unchanged

    def test_the_refusal_says_who_the_instrument_is_for(self) -> None:
        case = open_case("fb-ipt", age=9)

        with pytest.raises(GuardFailed) as refused:
            case.handle(ctx(), scored(10))

        assert refused.value.violations[0].message == (
            "PHQ-9 is for clients aged 12 and over; this client was 9 at intake."
        )

    def test_the_age_at_intake_decides_in_follow_up_too(self) -> None:
        case = followed_up_after_remission("fb-ipt", baseline=60, final=28)

        rules, unchanged = refusal(case, scored(10, "phq9"))

        assert rules == ["instrument_not_for_age"]
        assert unchanged


# --- termination tasks ----------------------------------------------------------------


class TestTerminationTasks:
    """§8: conclude accepts termination_tasks, a set of codes; the boolean
    maintenance_discussed stays accepted and means the same code; none is a guard."""

    def test_conclude_records_the_tasks_done_in_the_order_of_their_codes(
        self,
    ) -> None:
        case = ready_to_conclude("ipt")
        new_events(case)

        run(
            case,
            Conclude.parse(
                termination_tasks=["warning_signs_identified", "progress_reviewed"]
            ),
        )

        concluding = new_events(case)[0]
        assert concluding.termination_tasks == [
            "progress_reviewed",
            "warning_signs_identified",
        ]
        assert case.termination_tasks == concluding.termination_tasks

    def test_every_task_code_is_accepted(self) -> None:
        every = [
            "progress_reviewed",
            "warning_signs_identified",
            "contingency_plan_made",
            "feelings_about_ending_discussed",
            "maintenance_discussed",
        ]
        case = ready_to_conclude("ipt")

        run(case, Conclude.parse(termination_tasks=list(reversed(every))))

        assert case.termination_tasks == every
        assert case.maintenance_discussed

    def test_the_maintenance_discussed_flag_counts_as_its_task(self) -> None:
        case = ready_to_conclude("ipt")

        run(case, Conclude.parse(maintenance_discussed=True))

        assert case.termination_tasks == ["maintenance_discussed"]
        assert case.maintenance_discussed

    def test_the_flag_and_the_task_together_count_once(self) -> None:
        case = ready_to_conclude("ipt")

        run(
            case,
            Conclude.parse(
                maintenance_discussed=True, termination_tasks=["maintenance_discussed"]
            ),
        )

        assert case.termination_tasks == ["maintenance_discussed"]

    def test_the_maintenance_task_alone_sets_the_flag_too(self) -> None:
        case = ready_to_conclude("ipt")
        new_events(case)

        run(case, Conclude.parse(termination_tasks=["maintenance_discussed"]))

        assert new_events(case)[0].maintenance_discussed
        assert case.maintenance_discussed

    def test_no_task_is_a_guard(self) -> None:
        case = ready_to_conclude("ipt")

        why_not = case.why_not()[Transition.conclude]
        run(case, Conclude.parse())

        assert why_not == []
        assert case.termination_tasks == []
        assert not case.maintenance_discussed

    @pytest.mark.parametrize(
        ("tasks", "bad"),
        [
            (["said_goodbye"], ["termination_tasks[0]"]),
            (["progress_reviewed", "progress_reviewed"], ["termination_tasks"]),
            ("progress_reviewed", ["termination_tasks"]),
            ([{"task": "progress_reviewed"}], ["termination_tasks[0]"]),
        ],
        ids=["unknown", "repeated", "not-a-list", "not-a-code"],
    )
    def test_a_malformed_set_of_tasks_is_bad_input(
        self, tasks: object, bad: list[str]
    ) -> None:
        with pytest.raises(InvalidInput) as invalid:
            Conclude.parse(termination_tasks=tasks)

        assert fields_of(invalid.value) == bad

    def test_tasks_are_taken_only_by_conclude_so_an_early_conclude_records_nothing(
        self,
    ) -> None:
        case = in_end("ipt")

        rules, unchanged = refusal(
            case, Conclude.parse(termination_tasks=["progress_reviewed"])
        )

        assert rules == ["end_sessions_required", "end_measure_required"]
        assert unchanged
        assert case.termination_tasks == []


# --- the inventory --------------------------------------------------------------------


class TestTheInventoryHoldsWhatTheAssessmentLists:
    """§8: per relationship, current or past and an optional communication style;
    per case, the client's sources of support (codes from the role list)."""

    def test_past_relationships_styles_and_support_sources_are_recorded(
        self,
    ) -> None:
        case = open_case()
        new_events(case)
        command = RecordInventory.parse(
            relationships=[
                relationship("spouse", current=False, communication_style="passive"),
                relationship("sibling", supportive=True),
            ],
            support_sources=["friend", "sibling"],
        )

        run(case, command)

        (saved,) = new_events(case)
        assert saved.support_sources == ["friend", "sibling"]
        assert case.inventory is not None
        rows = case.inventory["relationships"]
        assert [(r["role"], r["current"], r["communication_style"]) for r in rows] == [
            ("spouse", False, "passive"),
            ("sibling", True, None),
        ]
        assert case.inventory["support_sources"] == ["friend", "sibling"]

    def test_a_relationship_is_current_and_support_sources_empty_unless_given(
        self,
    ) -> None:
        case = open_case()

        run(case, RecordInventory.parse(relationships=[relationship()]))

        assert case.inventory is not None
        (row,) = case.inventory["relationships"]
        assert (row["current"], row["communication_style"]) == (True, None)
        assert case.inventory["support_sources"] == []

    def test_the_case_shows_the_inventory_with_its_new_fields(self) -> None:
        case = open_case()
        run(
            case,
            RecordInventory.parse(
                relationships=[relationship("mother", current=False, deceased=True)],
                support_sources=["partner"],
            ),
        )

        shown = case_view(case, None)["inventory"]

        assert shown["relationships"][0]["current"] is False
        assert shown["support_sources"] == ["partner"]

    @pytest.mark.parametrize(
        ("values", "bad"),
        [
            ({"current": "yes"}, ["relationships[0].current"]),
            (
                {"communication_style": "shouting"},
                ["relationships[0].communication_style"],
            ),
            ({"name": "Anna"}, ["relationships[0].name"]),
        ],
        ids=["current", "communication-style", "a-name"],
    )
    def test_a_malformed_relationship_field_is_bad_input(
        self, values: dict[str, Any], bad: list[str]
    ) -> None:
        with pytest.raises(InvalidInput) as invalid:
            RecordInventory.parse(relationships=[relationship(**values)])

        assert fields_of(invalid.value) == bad

    @pytest.mark.parametrize(
        ("sources", "bad"),
        [
            (["neighbour"], ["support_sources[0]"]),
            (["friend", "friend"], ["support_sources"]),
            ("friend", ["support_sources"]),
        ],
        ids=["unknown-role", "repeated", "not-a-list"],
    )
    def test_malformed_support_sources_are_bad_input(
        self, sources: object, bad: list[str]
    ) -> None:
        with pytest.raises(InvalidInput) as invalid:
            RecordInventory.parse(
                relationships=[relationship()], support_sources=sources
            )

        assert fields_of(invalid.value) == bad


# --- the protocol's parameters --------------------------------------------------------


TABLE = {
    # domain.md §3, version 1: age, contract range and default, beginning, end.
    "ipt": ((18, 120), (12, 16, 16), (1, 3), (2, 3), []),
    "ipt-a": ((12, 18), (12, 16, 12), (1, 4), (2, 3), []),
    "fb-ipt": ((7, 12), (12, 16, 14), (1, 5), (2, 3), []),
    "ipt-g": (
        (18, 120),
        (16, 20, 20),
        (1, 5),
        (2, 5),
        ["individual_pre_group", "individual_mid_group", "individual_post_group"],
    ),
    "ipt-b": ((18, 120), (8, 8, 8), (1, 2), (2, 2), ["engagement"]),
}


class TestTheCaseShowsItsProtocolsParameters:
    """§8 (and §3, §6): the parameters a clinic system needs no copy of."""

    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_each_protocol_has_the_parameters_of_the_table(self, protocol: str) -> None:
        age, contract, beginning, end, uncounted = TABLE[protocol]

        shown = protocol_view(PROTOCOLS[f"{protocol}@1"])

        assert (shown["age"]["low"], shown["age"]["high"]) == age
        assert (
            shown["contract_sessions"]["low"],
            shown["contract_sessions"]["high"],
            shown["contract_sessions"]["default"],
        ) == contract
        assert tuple(shown["beginning_sessions"].values()) == beginning
        assert tuple(shown["end_sessions"].values()) == end
        assert shown["counted_session_kinds"] == ["therapy"]
        assert shown["uncounted_session_kinds"] == uncounted
        assert shown["follow_up_frequencies"] == ["weekly", "fortnightly", "monthly"]
        assert shown["frequencies"] == ["weekly", "twice_weekly"]

    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_a_case_shows_the_parameters_of_the_version_it_was_opened_under(
        self, protocol: str
    ) -> None:
        case = open_case(protocol)

        shown = case_view(case, None)

        assert shown["protocol"] == f"{protocol}@1"
        assert shown["protocol_parameters"] == protocol_view(PROTOCOLS[f"{protocol}@1"])
        assert find_protocol(protocol) is PROTOCOLS[f"{protocol}@1"]

    def test_the_protocol_rules_a_case_follows_are_its_parameters(self) -> None:
        case = in_middle("ipt-b")
        parameters = case_view(case, None)["protocol_parameters"]

        sessions(case, parameters["contract_sessions"]["default"] - 2 - 1)
        run(case, StartEnd.parse())

        assert case.phase == Phase.end
        assert case.acute_sessions_remaining == parameters["end_sessions"]["low"]
