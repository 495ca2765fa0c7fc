"""Bad input: values outside a fixed range or format are refused as InvalidInput
naming every bad field, before any rule is asked, and record nothing
(domain.md §1, §3, §4; decisions D1, D2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    AgreeFocus,
    Close,
    CommandResult,
    CorrectEntry,
    OpenCase,
    Reassign,
    RecordDeviation,
    RecordInventory,
    RecordMeasure,
    RecordMissedSession,
    RecordSession,
    RenegotiateContract,
    Withdraw,
)
from ipt_workflow.domain.errors import InvalidInput
from tests.unit.builders import (
    DAY_AFTER_TOMORROW,
    TODAY,
    TOMORROW,
    concluded,
    ctx,
    fields_of,
    in_follow_up,
    in_middle,
    new_events,
    open_case,
    record_inventory,
    recorded,
    session,
    withdrawn,
)

BAD_IDENTIFIERS = ["", "x" * 65, "a b", "a/b"]
IDENTIFIER_FIELDS = ["clinic_id", "client_ref", "clinician_id"]

SCORES_OUTSIDE = [
    ("phq9", -1),
    ("phq9", 28),
    ("hamd17", -1),
    ("hamd17", 53),
    ("bdi2", -1),
    ("bdi2", 64),
    ("cdrsr", 16),
    ("cdrsr", 114),
]

SCORES_AT_THE_ENDS = [
    ("phq9", 0),
    ("phq9", 27),
    ("hamd17", 0),
    ("hamd17", 52),
    ("bdi2", 0),
    ("bdi2", 63),
    ("cdrsr", 17),
    ("cdrsr", 113),
]


def open_with(**changes: Any) -> TherapyCase:
    details: dict[str, Any] = {
        "clinic_id": "clinic-1",
        "client_ref": "client-1",
        "protocol": "ipt",
        "client_age": 30,
        "clinician_id": "clinician-1",
    }
    return TherapyCase.open(ctx(), OpenCase.parse(**{**details, **changes}))


class TestOpenCase:
    @pytest.mark.parametrize("protocol", ["ipt-x", "ipt@2", "IPT", ""])
    def test_an_unknown_protocol_is_refused(self, protocol: str) -> None:
        with pytest.raises(InvalidInput) as refused:
            open_with(protocol=protocol)

        assert fields_of(refused.value) == ["protocol"]

    @pytest.mark.parametrize("field", IDENTIFIER_FIELDS)
    @pytest.mark.parametrize("value", BAD_IDENTIFIERS, ids=["empty", "65", "sp", "/"])
    def test_an_identifier_breaking_the_format_is_refused(
        self, field: str, value: str
    ) -> None:
        with pytest.raises(InvalidInput) as refused:
            open_with(**{field: value})

        assert fields_of(refused.value) == [field]

    @pytest.mark.parametrize("field", IDENTIFIER_FIELDS)
    @pytest.mark.parametrize("value", ["x" * 64, "a", "A-z_0.9:x"])
    def test_an_identifier_of_1_to_64_allowed_characters_is_accepted(
        self, field: str, value: str
    ) -> None:
        case = open_with(**{field: value})

        assert getattr(case, field) == value

    @pytest.mark.parametrize(
        ("field", "value"), [("client_age", -1), ("client_age", 131)]
    )
    def test_an_age_outside_whole_years_of_a_life_is_bad_input(
        self, field: str, value: int
    ) -> None:
        with pytest.raises(InvalidInput) as refused:
            open_with(**{field: value})

        assert fields_of(refused.value) == [field]

    def test_several_bad_fields_are_named_together(self) -> None:
        with pytest.raises(InvalidInput) as refused:
            open_with(
                client_ref="a/b", protocol="cbt", client_age=-1, prior_episodes=100
            )

        assert sorted(fields_of(refused.value)) == [
            "client_age",
            "client_ref",
            "prior_episodes",
            "protocol",
        ]


class TestRecordSession:
    @pytest.mark.parametrize("minutes", [19, 121])
    def test_minutes_outside_20_to_120_are_refused(self, minutes: int) -> None:
        case = in_middle()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            session(case, minutes=minutes)

        assert fields_of(refused.value) == ["minutes"]
        assert recorded(case) == before

    @pytest.mark.parametrize("minutes", [20, 120])
    def test_minutes_of_20_and_120_are_accepted(self, minutes: int) -> None:
        case = in_middle()

        session(case, minutes=minutes)

        assert case.sessions[-1]["minutes"] == minutes

    def test_a_session_more_than_a_day_ahead_is_refused(self) -> None:
        case = in_middle()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            session(case, held_on=DAY_AFTER_TOMORROW)

        assert fields_of(refused.value) == ["held_on"]
        assert recorded(case) == before

    def test_a_session_dated_tomorrow_is_accepted(self) -> None:
        case = in_middle()

        session(case, held_on=TOMORROW)

        assert case.sessions[-1]["held_on"] == TOMORROW.isoformat()

    @pytest.mark.parametrize("held_on", ["2026-13-01", "yesterday", "02/03/2026"])
    def test_a_malformed_date_is_refused(self, held_on: str) -> None:
        case = in_middle()

        with pytest.raises(InvalidInput) as refused:
            case.record_session(
                ctx(),
                RecordSession.parse(
                    held_on=held_on,
                    minutes=50,
                    modality="in_person",
                    attendees=["client"],
                    today=TODAY,
                ),
            )

        assert fields_of(refused.value) == ["held_on"]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"modality": "zoom"}, "modality"),
            ({"attendees": ["client", "cousin"]}, "attendees[1]"),
            ({"attendees": []}, "attendees"),
            ({"attendees": ["client", "client"]}, "attendees"),
            ({"kind": "group_therapy"}, "kind"),
            ({"strategies": ["homework"]}, "strategies[0]"),
            (
                {
                    "strategies": ["communication_analysis"],
                    "communication_aspects": ["volume"],
                },
                "communication_aspects[0]",
            ),
        ],
    )
    def test_an_unknown_code_is_refused(
        self, changes: dict[str, Any], field: str
    ) -> None:
        case = in_middle()
        details: dict[str, Any] = {
            "held_on": TODAY,
            "minutes": 50,
            "modality": "in_person",
            "attendees": ["client"],
        }

        with pytest.raises(InvalidInput) as refused:
            case.record_session(
                ctx(), RecordSession.parse(**{**details, **changes}, today=TODAY)
            )

        assert fields_of(refused.value) == [field]

    def test_several_bad_fields_are_named_together_and_nothing_is_recorded(
        self,
    ) -> None:
        case = in_middle()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            case.record_session(
                ctx(),
                RecordSession.parse(
                    held_on=DAY_AFTER_TOMORROW,
                    minutes=19,
                    modality="zoom",
                    attendees=["client"],
                    kind="solo",
                    today=TODAY,
                ),
            )

        assert sorted(fields_of(refused.value)) == [
            "held_on",
            "kind",
            "minutes",
            "modality",
        ]
        assert recorded(case) == before

    def test_bad_input_is_refused_before_the_phase_is_asked(self) -> None:
        case = withdrawn()

        with pytest.raises(InvalidInput) as refused:
            session(case, minutes=121)

        assert fields_of(refused.value) == ["minutes"]

    def test_a_date_and_time_instead_of_a_date_is_bad_input(self) -> None:
        case = in_middle()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            session(case, held_on=datetime(2026, 3, 2, 10, 30))

        assert fields_of(refused.value) == ["held_on"]
        assert recorded(case) == before


class TestRecordMeasure:
    def test_an_unknown_instrument_is_refused(self) -> None:
        case = open_case()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            case.record_measure(
                ctx(),
                RecordMeasure.parse(
                    instrument="madrs", score=10, measured_on=TODAY, today=TODAY
                ),
            )

        assert fields_of(refused.value) == ["instrument"]
        assert recorded(case) == before

    @pytest.mark.parametrize(("instrument", "score"), SCORES_OUTSIDE)
    def test_a_score_outside_the_instruments_range_is_refused(
        self, instrument: str, score: int
    ) -> None:
        case = open_case()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            case.record_measure(
                ctx(),
                RecordMeasure.parse(
                    instrument=instrument, score=score, measured_on=TODAY, today=TODAY
                ),
            )

        assert fields_of(refused.value) == ["score"]
        assert recorded(case) == before

    @pytest.mark.parametrize(("instrument", "score"), SCORES_AT_THE_ENDS)
    def test_a_score_at_either_end_of_the_instruments_range_is_accepted(
        self, instrument: str, score: int
    ) -> None:
        # An adolescent: every instrument is validated at 12 to 17 (domain.md §8).
        case = open_case("ipt-a", age=15)

        case.record_measure(
            ctx(),
            RecordMeasure.parse(
                instrument=instrument, score=score, measured_on=TODAY, today=TODAY
            ),
        )

        assert case.baseline is not None
        assert (case.baseline["instrument"], case.baseline["score"]) == (
            instrument,
            score,
        )

    def test_a_measure_more_than_a_day_ahead_is_refused(self) -> None:
        case = open_case()

        with pytest.raises(InvalidInput) as refused:
            case.record_measure(
                ctx(),
                RecordMeasure.parse(
                    instrument="phq9",
                    score=10,
                    measured_on=DAY_AFTER_TOMORROW,
                    today=TODAY,
                ),
            )

        assert fields_of(refused.value) == ["measured_on"]
        assert case.measures == []

    def test_a_measure_dated_tomorrow_is_accepted(self) -> None:
        case = open_case()

        case.record_measure(
            ctx(),
            RecordMeasure.parse(
                instrument="phq9", score=10, measured_on=TOMORROW, today=TODAY
            ),
        )

        assert case.measures[-1]["measured_on"] == TOMORROW.isoformat()

    def test_several_bad_fields_are_named_together(self) -> None:
        case = open_case()

        with pytest.raises(InvalidInput) as refused:
            case.record_measure(
                ctx(),
                RecordMeasure.parse(
                    instrument="phq9", score=99, measured_on="not-a-date", today=TODAY
                ),
            )

        assert sorted(fields_of(refused.value)) == ["measured_on", "score"]


class TestUnknownCodes:
    @pytest.mark.parametrize(
        ("command", "field"),
        [
            (
                lambda c: c.agree_focus(
                    ctx(), AgreeFocus.parse(primary_area="anxiety", client_agreed=True)
                ),
                "primary_area",
            ),
            (
                lambda c: c.agree_focus(
                    ctx(),
                    AgreeFocus.parse(
                        primary_area="role_dispute",
                        client_agreed=True,
                        dispute_stage="war",
                    ),
                ),
                "dispute_stage",
            ),
            (
                lambda c: c.record_inventory(
                    ctx(),
                    RecordInventory.parse(
                        relationships=[{"role": "boss", "closeness": 1}]
                    ),
                ),
                "relationships[0].role",
            ),
            (
                lambda c: c.record_inventory(
                    ctx(),
                    RecordInventory.parse(
                        relationships=[{"role": "friend", "closeness": 4}]
                    ),
                ),
                "relationships[0].closeness",
            ),
            (
                lambda c: c.record_inventory(
                    ctx(),
                    RecordInventory.parse(
                        relationships=[{"role": "friend", "closeness": 1}],
                        attachment_style="clingy",
                    ),
                ),
                "attachment_style",
            ),
            (
                lambda c: c.record_inventory(
                    ctx(), RecordInventory.parse(relationships=[])
                ),
                "relationships",
            ),
            (
                lambda c: c.agree_contract(
                    ctx(), AgreeContract.parse(sessions=14, frequency="daily")
                ),
                "frequency",
            ),
            (
                lambda c: c.record_deviation(
                    ctx(), RecordDeviation.parse(rule="age_limit", reason="crisis")
                ),
                "rule",
            ),
            (
                lambda c: c.record_deviation(
                    ctx(), RecordDeviation.parse(rule="contract_range", reason="whim")
                ),
                "reason",
            ),
            (lambda c: c.withdraw(ctx(), Withdraw.parse(reason="bored")), "reason"),
            (
                lambda c: c.record_missed_session(
                    ctx(),
                    RecordMissedSession.parse(
                        scheduled_on=TODAY, reason="rain", today=TODAY
                    ),
                ),
                "reason",
            ),
            (
                lambda c: c.correct_entry(
                    ctx(),
                    CorrectEntry.parse(
                        entry="note", reason="wrong_case", number=1, today=TODAY
                    ),
                ),
                "entry",
            ),
            (
                lambda c: c.reassign(ctx(), Reassign.parse(clinician_id="a b")),
                "clinician_id",
            ),
        ],
    )
    def test_an_unknown_code_is_refused_naming_its_field(
        self, command: Callable[[TherapyCase], CommandResult], field: str
    ) -> None:
        case = open_case()
        record_inventory(case)
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            command(case)

        assert fields_of(refused.value) == [field]
        assert recorded(case) == before

    @pytest.mark.parametrize(
        ("sessions", "frequency", "field"),
        [
            (0, "monthly", "sessions"),
            (105, "monthly", "sessions"),
            (6, "yearly", "frequency"),
        ],
    )
    def test_a_follow_up_contract_outside_its_range_is_refused(
        self, sessions: int, frequency: str, field: str
    ) -> None:
        case = concluded()
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            case.accept_follow_up(
                ctx(), AcceptFollowUp.parse(sessions=sessions, frequency=frequency)
            )

        assert fields_of(refused.value) == [field]
        assert recorded(case) == before

    @pytest.mark.parametrize(
        ("sessions", "frequency", "field"),
        [(6, None, "frequency"), (None, "monthly", "sessions")],
    )
    def test_half_a_follow_up_contract_is_refused(
        self, sessions: int | None, frequency: str | None, field: str
    ) -> None:
        case = concluded()

        with pytest.raises(InvalidInput) as refused:
            case.accept_follow_up(
                ctx(), AcceptFollowUp.parse(sessions=sessions, frequency=frequency)
            )

        assert fields_of(refused.value) == [field]

    @pytest.mark.parametrize("sessions", [1, 104])
    def test_a_follow_up_contract_of_1_to_104_sessions_is_accepted(
        self, sessions: int
    ) -> None:
        case = concluded()

        case.accept_follow_up(
            ctx(), AcceptFollowUp.parse(sessions=sessions, frequency="weekly")
        )

        assert case.follow_up_contract == {"sessions": sessions, "frequency": "weekly"}


class TestNotes:
    @pytest.mark.parametrize(
        "command",
        [
            lambda c: c.withdraw(
                ctx(), Withdraw.parse(reason="moved", note="left the city")
            ),
            lambda c: c.record_deviation(
                ctx(),
                RecordDeviation.parse(
                    rule="contract_range", reason="crisis", note="a note"
                ),
            ),
            lambda c: c.renegotiate_contract(
                ctx(),
                RenegotiateContract.parse(
                    sessions=14, reason="slow_progress", note="a note"
                ),
            ),
            lambda c: c.record_missed_session(
                ctx(),
                RecordMissedSession.parse(
                    scheduled_on=TODAY,
                    reason="client_cancelled",
                    note="a note",
                    today=TODAY,
                ),
            ),
            lambda c: c.correct_entry(
                ctx(),
                CorrectEntry.parse(
                    entry="session",
                    reason="wrong_case",
                    number=2,
                    note="a note",
                    today=TODAY,
                ),
            ),
        ],
        ids=["withdraw", "deviation", "renegotiate", "missed", "correct"],
    )
    def test_a_note_with_a_reason_other_than_other_is_refused(
        self, command: Callable[[TherapyCase], CommandResult]
    ) -> None:
        case = in_middle()
        session(case)
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            command(case)

        assert fields_of(refused.value) == ["note"]
        assert recorded(case) == before

    def test_a_note_with_the_reason_other_is_kept_in_the_event(self) -> None:
        case = in_middle()
        new_events(case)

        case.withdraw(ctx(), Withdraw.parse(reason="other", note="family reasons"))

        event = new_events(case)[-1]
        assert isinstance(event, events.CaseWithdrawn)
        assert (event.reason, event.note) == ("other", "family reasons")

    @pytest.mark.parametrize("note", ["", "x" * 501])
    def test_a_note_empty_or_over_500_characters_is_refused(self, note: str) -> None:
        case = in_middle()

        with pytest.raises(InvalidInput) as refused:
            case.withdraw(ctx(), Withdraw.parse(reason="other", note=note))

        assert fields_of(refused.value) == ["note"]

    def test_a_note_of_500_characters_is_accepted(self) -> None:
        case = in_middle()

        case.withdraw(ctx(), Withdraw.parse(reason="other", note="x" * 500))

        assert case.phase == "withdrawn"

    def test_closing_with_a_note_but_no_reason_is_refused(self) -> None:
        case = in_follow_up()
        session(case)
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            case.close(ctx(), Close.parse(note="a note"))

        assert fields_of(refused.value) == ["note"]
        assert recorded(case) == before

    def test_a_secondary_reason_other_than_other_with_a_note_is_refused(
        self,
    ) -> None:
        case = open_case()
        record_inventory(case)

        with pytest.raises(InvalidInput) as refused:
            case.agree_focus(
                ctx(),
                AgreeFocus.parse(
                    primary_area="role_transition",
                    client_agreed=True,
                    secondary_area="interpersonal_deficits",
                    secondary_reason="linked_to_onset",
                    note="a note",
                ),
            )

        assert fields_of(refused.value) == ["note"]

    def test_a_focus_note_without_a_secondary_reason_is_refused(self) -> None:
        case = open_case()
        record_inventory(case)
        before = recorded(case)

        with pytest.raises(InvalidInput) as refused:
            case.agree_focus(
                ctx(),
                AgreeFocus.parse(
                    primary_area="role_transition", client_agreed=True, note="free text"
                ),
            )

        assert fields_of(refused.value) == ["note"]
        assert recorded(case) == before
