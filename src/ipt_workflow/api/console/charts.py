"""The geometry of the console's charts, drawn as SVG by the templates.

No chart library: each chart is a few rectangles, lines and labels whose positions
are computed here, so the page is complete as the server sends it (and readable
without JavaScript). Every chart is also given as a table beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ipt_workflow.api.console.panels import AlertRow, OutcomeRow
from ipt_workflow.domain.protocols import INSTRUMENTS, Instrument

WIDTH = 760
BAR_HEIGHT = 22
BAR_GAP = 12
LABEL_WIDTH = 190
NOTE_WIDTH = 290
OUTCOME_CLASSES = ("remission", "response", "partial_response", "no_response")


@dataclass(frozen=True)
class Segment:
    css: str
    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    segments: list[Segment]
    note: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]
    area: float


def _bar_area() -> float:
    return WIDTH - LABEL_WIDTH - NOTE_WIDTH


def outcome_chart(rows: list[OutcomeRow]) -> BarChart:
    """One stacked bar per clinic and protocol: the share of each outcome class."""
    bars = []
    area = _bar_area()
    for i, row in enumerate(rows):
        y = i * (BAR_HEIGHT + BAR_GAP)
        label = f"{row.clinic_id} · {row.protocol}"
        if row.hidden or row.concluded.n == 0:
            why = "too few cases to show" if row.hidden else "none concluded yet"
            bars.append(Bar(label, y, [], why))
            continue
        x = 0.0
        segments = []
        for css in OUTCOME_CLASSES:
            n = getattr(row, css)
            width = area * n / row.concluded.n
            if n:
                name = css.replace("_", " ")
                segments.append(
                    Segment(f"o-{css}", x, width, f"{name}: {n} of {row.concluded.n}")
                )
            x += width
        remission = row.remission_rate or 0.0
        responded = row.response_rate or 0.0
        note = (
            f"remission {remission:.0%} · responded {responded:.0%} · "
            f"n={row.concluded.n}"
        )
        bars.append(Bar(label, y, segments, note))
    return BarChart(WIDTH, _height(len(bars)), LABEL_WIDTH, BAR_HEIGHT, bars, area)


def alert_chart(rows: list[AlertRow]) -> BarChart:
    """One bar per kind of alert: how many are open."""
    most = max((r.total for r in rows), default=0) or 1
    area = _bar_area()
    bars = []
    for i, row in enumerate(rows):
        width = area * row.total / most
        segments = (
            [Segment("a-open", 0.0, width, f"{row.total} open")] if row.total else []
        )
        bars.append(
            Bar(
                row.kind.replace("_", " "),
                i * (BAR_HEIGHT + BAR_GAP),
                segments,
                f"{row.total} open",
            )
        )
    return BarChart(WIDTH, _height(len(bars)), LABEL_WIDTH, BAR_HEIGHT, bars, area)


def _height(bars: int) -> int:
    return max(bars, 1) * (BAR_HEIGHT + BAR_GAP)


# --- a symptom trajectory -----------------------------------------------------------

PLOT = {"left": 48, "right": 16, "top": 16, "bottom": 40, "width": 640, "height": 260}


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    score: int
    measured_on: str
    phase: str


@dataclass(frozen=True)
class Tick:
    at: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Trajectory:
    instrument: str
    title: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: list[Point]
    path: str
    remission_y: float
    remission_max: int
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    low: int
    high: int


def trajectories(measures: list[dict[str, Any]]) -> list[Trajectory]:
    """A chart per instrument of the case's valid measures, in the order measured."""
    by_instrument: dict[str, list[dict[str, Any]]] = {}
    for m in measures:
        if not m.get("voided"):
            by_instrument.setdefault(m["instrument"], []).append(m)
    return [
        _trajectory(name, sorted(found, key=lambda m: m["measured_on"]))
        for name, found in by_instrument.items()
    ]


def _trajectory(instrument: str, measures: list[dict[str, Any]]) -> Trajectory:
    spec = INSTRUMENTS[Instrument(instrument)]
    low, high = spec.scores.low, spec.scores.high
    left, top = PLOT["left"], PLOT["top"]
    inner_w = PLOT["width"] - left - PLOT["right"]
    inner_h = PLOT["height"] - top - PLOT["bottom"]

    def y_of(score: float) -> float:
        return round(top + inner_h * (high - score) / (high - low), 1)

    days = [date.fromisoformat(m["measured_on"]) for m in measures]
    span = (days[-1] - days[0]).days

    def x_of(i: int) -> float:
        if len(days) == 1:
            return round(left + inner_w / 2, 1)
        share = i / (len(days) - 1) if span == 0 else (days[i] - days[0]).days / span
        return round(left + inner_w * share, 1)

    points = [
        Point(x_of(i), y_of(m["score"]), m["score"], m["measured_on"], m["phase"])
        for i, m in enumerate(measures)
    ]
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{p.x},{p.y}" for i, p in enumerate(points)
    )
    marks = sorted({low, spec.remission_max, (low + high) // 2, high})
    x_ticks = [Tick(p.x, p.measured_on) for p in points]
    if len(x_ticks) > 6:  # keep the first, the last and a few between
        step = -(-len(x_ticks) // 5)
        x_ticks = [*x_ticks[:-1:step], x_ticks[-1]]
    if len(x_ticks) > 1:  # the outer labels stay inside the picture
        x_ticks[0] = Tick(x_ticks[0].at, x_ticks[0].label, "start")
        x_ticks[-1] = Tick(x_ticks[-1].at, x_ticks[-1].label, "end")
    return Trajectory(
        instrument=instrument,
        title=spec.title,
        width=PLOT["width"],
        height=PLOT["height"],
        left=left,
        right=PLOT["right"],
        top=top,
        bottom=PLOT["bottom"],
        points=points,
        path=path,
        remission_y=y_of(spec.remission_max),
        remission_max=spec.remission_max,
        y_ticks=[Tick(y_of(v), str(v)) for v in marks],
        x_ticks=x_ticks,
        low=low,
        high=high,
    )
