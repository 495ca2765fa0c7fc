"""The result table: rows of figures, each judged against the issue's target."""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Criterion:
    """One measured figure against one bound of a target, e.g. p99 <= 25 ms."""

    figure: str
    value: float | None
    op: str
    bound: float

    @property
    def met(self) -> bool:
        return self.value is not None and _OPS[self.op](self.value, self.bound)

    def describe(self) -> str:
        return f"{self.figure} {self.op} {_num(self.bound)}"


@dataclass
class Row:
    """One benchmark of the issue's table, with its baselines from the same run."""

    name: str
    figures: dict[str, Any]
    summary: str
    target: str = "report only"
    criteria: list[Criterion] = field(default_factory=list)
    baselines: dict[str, str] = field(default_factory=dict)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    note: str = ""

    @property
    def verdict(self) -> str:
        if not self.criteria:
            return "—"
        missed = [c for c in self.criteria if not c.met]
        if not missed:
            return "met"
        return "missed: " + ", ".join(c.describe() for c in missed)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["criteria"] = [
            {**asdict(c), "met": c.met, "text": c.describe()} for c in self.criteria
        ]
        data["verdict"] = self.verdict
        return data


def _num(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def machine_load() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def table(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table (it reads as well in a terminal)."""
    header = ["benchmark", "figure", "target", "met?", "baselines", "load 1m"]
    lines = [header]
    for row in rows:
        baselines = "; ".join(f"{k}: {v}" for k, v in row.baselines.items()) or "—"
        lines.append(
            [
                row.name,
                row.summary,
                row.target,
                row.verdict,
                baselines,
                f"{row.load[0]:.2f}",
            ]
        )
    out = []
    for i, cells in enumerate(lines):
        out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        if i == 0:
            out.append("|" + "---|" * len(header))
    return "\n".join(out)


def write(path: Path, rows: Sequence[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "rows": [r.as_json() for r in rows]}
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
