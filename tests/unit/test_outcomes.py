"""Outcome classes and follow-up offers at their boundaries, alone and through
the aggregate's conclude (domain.md §5)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ipt_workflow.domain import events
from ipt_workflow.domain.commands import Conclude, CorrectEntry
from ipt_workflow.domain.measures import (
    FollowUpKind,
    Outcome,
    OutcomeClass,
    automatic_offer,
    classify,
    reduction,
)
from ipt_workflow.domain.protocols import Instrument
from tests.unit.builders import (
    TODAY,
    ctx,
    in_end,
    measure,
    names,
    new_events,
    ready_to_conclude,
    sessions,
)

REMISSION_TOPS = [
    (Instrument.phq9, 4),
    (Instrument.hamd17, 7),
    (Instrument.bdi2, 13),
    (Instrument.cdrsr, 28),
]


def outcome_of(
    classification: OutcomeClass, instrument: Instrument = Instrument.phq9
) -> Outcome:
    residual = classification is not OutcomeClass.remission
    return Outcome(classification, instrument, 20, 4 if not residual else 12, residual)


class TestClassify:
    @pytest.mark.parametrize(
        ("instrument", "baseline", "final"),
        [
            (Instrument.phq9, 20, 10),
            (Instrument.hamd17, 30, 15),
            (Instrument.bdi2, 40, 20),
            (Instrument.cdrsr, 57, 37),
        ],
    )
    def test_a_reduction_of_exactly_half_is_a_response(
        self, instrument: Instrument, baseline: int, final: int
    ) -> None:
        outcome = classify(instrument, baseline, final)

        assert reduction(instrument, baseline, final) == Fraction(1, 2)
        assert outcome.classification is OutcomeClass.response
        assert outcome.residual is True

    def test_a_reduction_just_under_half_is_a_partial_response(self) -> None:
        outcome = classify(Instrument.phq9, 20, 11)

        assert outcome.classification is OutcomeClass.partial_response

    @pytest.mark.parametrize(
        ("instrument", "baseline", "final"),
        [
            (Instrument.phq9, 20, 15),
            (Instrument.hamd17, 36, 27),
            (Instrument.bdi2, 40, 30),
            (Instrument.cdrsr, 57, 47),
        ],
    )
    def test_a_reduction_of_exactly_a_quarter_is_a_partial_response(
        self, instrument: Instrument, baseline: int, final: int
    ) -> None:
        outcome = classify(instrument, baseline, final)

        assert reduction(instrument, baseline, final) == Fraction(1, 4)
        assert outcome.classification is OutcomeClass.partial_response

    def test_a_reduction_just_under_a_quarter_is_no_response(self) -> None:
        outcome = classify(Instrument.phq9, 20, 16)

        assert outcome.classification is OutcomeClass.no_response

    @pytest.mark.parametrize(("instrument", "top"), REMISSION_TOPS)
    def test_a_final_score_at_the_top_of_the_remission_range_is_remission(
        self, instrument: Instrument, top: int
    ) -> None:
        outcome = classify(instrument, top + 20, top)

        assert outcome.classification is OutcomeClass.remission
        assert outcome.residual is False

    @pytest.mark.parametrize(("instrument", "top"), REMISSION_TOPS)
    def test_a_final_score_one_above_the_remission_range_leaves_residual_symptoms(
        self, instrument: Instrument, top: int
    ) -> None:
        outcome = classify(instrument, top + 20, top + 1)

        assert outcome.classification is not OutcomeClass.remission
        assert outcome.residual is True

    def test_a_remission_score_is_remission_whatever_the_reduction(self) -> None:
        outcome = classify(Instrument.phq9, 5, 4)

        assert reduction(Instrument.phq9, 5, 4) == Fraction(1, 5)
        assert outcome.classification is OutcomeClass.remission

    def test_the_cdrsr_reduction_is_measured_from_its_floor_of_17(self) -> None:
        measured_from_floor = reduction(Instrument.cdrsr, 57, 37)

        outcome = classify(Instrument.cdrsr, 57, 37)

        assert measured_from_floor == Fraction(20, 40)
        assert outcome.classification is OutcomeClass.response

    @pytest.mark.parametrize(
        ("instrument", "floor", "final"),
        [(Instrument.phq9, 0, 10), (Instrument.cdrsr, 17, 40)],
    )
    def test_a_baseline_at_the_floor_gives_a_reduction_of_zero(
        self, instrument: Instrument, floor: int, final: int
    ) -> None:
        outcome = classify(instrument, floor, final)

        assert reduction(instrument, floor, floor) == 0
        assert reduction(instrument, floor, final) == 0
        assert outcome.classification is OutcomeClass.no_response

    def test_a_worse_final_score_is_no_response(self) -> None:
        outcome = classify(Instrument.hamd17, 20, 25)

        assert reduction(Instrument.hamd17, 20, 25) < 0
        assert outcome.classification is OutcomeClass.no_response

    def test_the_outcome_keeps_its_instrument_baseline_and_final(self) -> None:
        outcome = classify(Instrument.bdi2, 40, 20)

        assert outcome.as_dict() == {
            "classification": "response",
            "instrument": "bdi2",
            "baseline": 40,
            "final": 20,
            "residual": True,
        }


class TestAutomaticOffer:
    @pytest.mark.parametrize(
        "classification", [OutcomeClass.response, OutcomeClass.partial_response]
    )
    @pytest.mark.parametrize("prior_episodes", [0, 3])
    def test_residual_symptoms_with_a_response_are_offered_continuation(
        self, classification: OutcomeClass, prior_episodes: int
    ) -> None:
        offer = automatic_offer(outcome_of(classification), prior_episodes)

        assert offer is FollowUpKind.continuation

    @pytest.mark.parametrize("prior_episodes", [0, 3])
    def test_residual_symptoms_with_no_response_are_offered_a_referral(
        self, prior_episodes: int
    ) -> None:
        offer = automatic_offer(outcome_of(OutcomeClass.no_response), prior_episodes)

        assert offer is FollowUpKind.referral

    @pytest.mark.parametrize("prior_episodes", [3, 4, 12])
    def test_remission_after_3_or_more_prior_episodes_is_offered_maintenance(
        self, prior_episodes: int
    ) -> None:
        offer = automatic_offer(outcome_of(OutcomeClass.remission), prior_episodes)

        assert offer is FollowUpKind.maintenance

    @pytest.mark.parametrize("prior_episodes", [0, 2])
    def test_remission_after_fewer_than_3_prior_episodes_is_offered_nothing(
        self, prior_episodes: int
    ) -> None:
        offer = automatic_offer(outcome_of(OutcomeClass.remission), prior_episodes)

        assert offer is None


# (protocol, instrument, baseline, final, prior episodes, class, offer)
CONCLUSIONS = [
    ("ipt", "phq9", 20, 10, 0, "response", "continuation"),
    ("ipt", "phq9", 20, 11, 0, "partial_response", "continuation"),
    ("ipt", "phq9", 20, 15, 0, "partial_response", "continuation"),
    ("ipt", "phq9", 20, 16, 0, "no_response", "referral"),
    ("ipt", "phq9", 20, 4, 3, "remission", "maintenance"),
    ("ipt", "phq9", 20, 4, 2, "remission", None),
    ("ipt", "phq9", 20, 5, 3, "response", "continuation"),
    ("ipt-g", "hamd17", 30, 7, 0, "remission", None),
    ("ipt-g", "hamd17", 30, 8, 0, "response", "continuation"),
    ("ipt-b", "bdi2", 40, 13, 0, "remission", None),
    ("ipt-b", "bdi2", 40, 14, 0, "response", "continuation"),
    ("ipt-a", "cdrsr", 57, 28, 0, "remission", None),
    ("ipt-a", "cdrsr", 57, 37, 0, "response", "continuation"),
    ("fb-ipt", "cdrsr", 57, 47, 0, "partial_response", "continuation"),
    ("fb-ipt", "cdrsr", 17, 29, 0, "no_response", "referral"),
]


class TestConcludeClassifiesTheOutcome:
    @pytest.mark.parametrize(
        (
            "protocol",
            "instrument",
            "baseline",
            "final",
            "prior_episodes",
            "expected",
            "offer",
        ),
        CONCLUSIONS,
    )
    def test_conclude_stores_the_outcome_and_offers_follow_up_in_the_same_save(
        self,
        protocol: str,
        instrument: str,
        baseline: int,
        final: int,
        prior_episodes: int,
        expected: str,
        offer: str | None,
    ) -> None:
        case = ready_to_conclude(
            protocol, baseline, final, instrument, prior_episodes=prior_episodes
        )
        new_events(case)

        case.conclude(ctx(), Conclude.parse())

        saved = new_events(case)
        assert case.outcome is not None
        assert case.outcome["classification"] == expected
        assert (case.outcome["baseline"], case.outcome["final"]) == (baseline, final)
        if offer is None:
            assert names(saved) == ["AcuteTreatmentConcluded"]
            assert case.follow_up_offer is None
        else:
            assert names(saved) == ["AcuteTreatmentConcluded", "FollowUpOffered"]
            offered = saved[1]
            assert isinstance(offered, events.FollowUpOffered)
            assert (offered.kind, offered.automatic) == (offer, True)
            assert case.follow_up_offer is not None
            assert case.follow_up_offer["kind"] == offer

    def test_the_concluded_event_carries_the_outcome(self) -> None:
        case = ready_to_conclude("ipt", 20, 10)
        new_events(case)

        case.conclude(ctx(), Conclude.parse())

        event = new_events(case)[0]
        assert isinstance(event, events.AcuteTreatmentConcluded)
        assert event.outcome == {
            "classification": "response",
            "instrument": "phq9",
            "baseline": 20,
            "final": 10,
            "residual": True,
        }

    def test_the_final_score_is_the_last_end_measure_on_the_baselines_instrument(
        self,
    ) -> None:
        case = in_end("ipt", baseline=20)
        sessions(case, 2)
        measure(case, 16)
        measure(case, 4)
        measure(case, 30, "bdi2")

        case.conclude(ctx(), Conclude.parse())

        assert case.outcome is not None
        assert case.outcome["final"] == 4
        assert case.outcome["classification"] == "remission"

    def test_a_voided_final_measure_gives_way_to_the_one_before(self) -> None:
        case = in_end("ipt", baseline=20)
        sessions(case, 2)
        measure(case, 10)
        measure(case, 3, on=TODAY.replace(day=1))
        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="measure",
                reason="wrong_details",
                measured_on=TODAY.replace(day=1),
                instrument="phq9",
                today=TODAY,
            ),
        )

        case.conclude(ctx(), Conclude.parse())

        assert case.outcome is not None
        assert case.outcome["final"] == 10
        assert case.outcome["classification"] == "response"

    def test_a_baseline_corrected_with_a_replacement_is_the_baseline_of_the_outcome(
        self,
    ) -> None:
        case = in_end("ipt", baseline=27)
        case.correct_entry(
            ctx(),
            CorrectEntry.parse(
                entry="measure",
                reason="wrong_details",
                measured_on=TODAY,
                instrument="phq9",
                replacement={"score": 20, "measured_on": TODAY},
                today=TODAY,
            ),
        )
        sessions(case, 2)
        measure(case, 10)

        case.conclude(ctx(), Conclude.parse())

        assert case.outcome is not None
        assert case.outcome["baseline"] == 20
        assert case.outcome["classification"] == "response"
        assert case.baseline is not None and case.baseline["phase"] == "beginning"
