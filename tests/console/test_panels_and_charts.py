"""What the board computes and the charts draw, and the palette's contrast."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from ipt_workflow.api.console import charts, panels
from ipt_workflow.api.console.panels import Count, OutcomeRow
from ipt_workflow.api.deps import Principal

CSS = (
    Path(__file__).resolve().parents[2]
    / "src/ipt_workflow/api/console/static/console.css"
)


def principal(role: str) -> Principal:
    return Principal("someone", role, frozenset({"c"}), "k")  # type: ignore[arg-type]


class TestSmallCells:
    @pytest.mark.parametrize(
        ("n", "hidden"), [(0, False), (1, True), (4, True), (5, False)]
    )
    def test_ops_see_one_to_four_cases_as_a_range(self, n: int, hidden: bool) -> None:
        shown = panels.count_for(principal("ops"), n)

        assert shown.hidden is hidden
        assert shown.label == ("1–4" if hidden else str(n))

    @pytest.mark.parametrize("role", ["auditor", "clinician"])
    def test_other_roles_see_every_count(self, role: str) -> None:
        assert panels.count_for(principal(role), 3).label == "3"


class TestAlertAge:
    ROW = {"overdue_after_days": 14, "last_activity_on": "2026-11-01"}

    def test_an_overdue_session_is_as_old_as_the_days_past_its_due_date(self) -> None:
        alert = {"alert": "session_overdue", "days_since_last_session": 50}

        assert panels.alert_age_days(alert, self.ROW, date(2026, 12, 21)) == 36

    def test_an_offer_is_as_old_as_the_days_past_its_decision_window(self) -> None:
        alert = {"alert": "offer_awaiting_decision", "days_waiting": 20}

        assert panels.alert_age_days(alert, self.ROW, date(2026, 12, 1)) == 6

    def test_other_alerts_are_as_old_as_the_cases_last_activity(self) -> None:
        alert = {"alert": "measure_due", "sessions_since_measure": 4}

        assert panels.alert_age_days(alert, self.ROW, date(2026, 11, 9)) == 8

    @pytest.mark.parametrize(
        ("days", "bucket"), [(0, 0), (7, 0), (8, 1), (30, 1), (31, 2), (90, 2), (91, 3)]
    )
    def test_ages_fall_into_their_buckets_at_the_edges(
        self, days: int, bucket: int
    ) -> None:
        assert panels.bucket_of(days) == bucket


def outcome(
    concluded: int, remission: int, response: int, hidden: bool = False
) -> OutcomeRow:
    rest = concluded - remission - response
    return OutcomeRow(
        "c",
        "ipt@1",
        Count(concluded + 2),
        Count(concluded),
        remission,
        response,
        rest,
        0,
        hidden,
    )


class TestOutcomes:
    def test_responded_counts_remission_and_response(self) -> None:
        row = outcome(10, remission=4, response=3)

        assert row.remission_rate == 0.4
        assert row.response_rate == 0.7

    def test_withheld_rows_have_no_rates_and_no_bar(self) -> None:
        row = outcome(3, remission=3, response=0, hidden=True)

        chart = charts.outcome_chart([row])

        assert row.remission_rate is None
        assert chart.bars[0].segments == []
        assert chart.bars[0].note == "too few cases to show"

    def test_the_stacked_bar_splits_its_length_by_class(self) -> None:
        chart = charts.outcome_chart([outcome(10, remission=5, response=5)])

        segments = chart.bars[0].segments
        assert [s.css for s in segments] == ["o-remission", "o-response"]
        assert segments[0].width == segments[1].width == chart.area / 2
        assert segments[1].x == segments[0].width
        assert chart.bars[0].note == "remission 50% · responded 100% · n=10"


class TestTrajectory:
    MEASURES = [
        {
            "instrument": "phq9",
            "score": 20,
            "measured_on": "2026-09-01",
            "phase": "beginning",
        },
        {
            "instrument": "phq9",
            "score": 27,
            "measured_on": "2026-09-08",
            "phase": "middle",
            "voided": True,
        },
        {
            "instrument": "phq9",
            "score": 10,
            "measured_on": "2026-10-01",
            "phase": "middle",
        },
        {"instrument": "phq9", "score": 0, "measured_on": "2026-11-30", "phase": "end"},
    ]

    def test_voided_measures_are_left_out_and_time_runs_left_to_right(self) -> None:
        (chart,) = charts.trajectories(self.MEASURES)

        xs = [p.x for p in chart.points]
        assert [p.score for p in chart.points] == [20, 10, 0]
        assert xs == sorted(xs)
        assert xs[0] == chart.left
        assert xs[-1] == chart.width - chart.right

    def test_the_remission_line_is_at_the_instruments_remission_top(self) -> None:
        (chart,) = charts.trajectories(self.MEASURES)

        zero = next(p for p in chart.points if p.score == 0)
        plot_height = chart.height - chart.top - chart.bottom
        assert chart.remission_max == 4
        assert zero.y == chart.height - chart.bottom
        assert chart.remission_y == pytest.approx(
            zero.y - plot_height * 4 / 27, abs=0.1
        )
        assert chart.path.startswith("M") and chart.path.count("L") == 2

    def test_each_instrument_gets_its_own_chart_and_range(self) -> None:
        found = charts.trajectories(
            [
                *self.MEASURES,
                {
                    "instrument": "cdrsr",
                    "score": 60,
                    "measured_on": "2026-09-02",
                    "phase": "beginning",
                },
            ]
        )

        assert [(c.instrument, c.low, c.high) for c in found] == [
            ("phq9", 0, 27),
            ("cdrsr", 17, 113),
        ]


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [
        c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(
    ("text", "background"),
    [
        ("--ink", "--paper"),
        ("--muted", "--paper"),
        ("--muted", "--wash"),
        ("--accent", "--paper"),
        ("--bad", "--paper"),
        ("--ok", "--paper"),
        ("#ffffff", "--ok"),
        ("#ffffff", "--bad"),
        ("#ffffff", "--accent"),
        ("#ffffff", "--ink"),
    ],
)
def test_text_colours_meet_wcag_aa_contrast(text: str, background: str) -> None:
    palette = dict(re.findall(r"(--[a-z]+):\s*(#[0-9a-f]{6});", CSS.read_text()))

    ratio = contrast(palette.get(text, text), palette.get(background, background))

    assert ratio >= 4.5, f"{text} on {background}: {ratio:.2f}"
