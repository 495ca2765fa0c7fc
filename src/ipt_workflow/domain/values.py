"""The values commands carry beyond codes and numbers (a relationship of the
inventory, a measure's replacement), the fixed ranges of domain.md §4 that the API
schemas share, and how each is parsed from raw input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from ipt_workflow.domain.codes import (
    CommunicationStyle,
    CorrectedEntry,
    RelationshipRole,
)
from ipt_workflow.domain.inputs import Input, Parsing, past_date
from ipt_workflow.domain.protocols import INSTRUMENTS, Instrument, IntRange

AGE = IntRange(0, 130)
PRIOR_EPISODES = IntRange(0, 99)
CLOSENESS = IntRange(1, 3)
RELATIONSHIPS = IntRange(1, 50)
MINUTES = IntRange(20, 120)
CONTRACT_SESSIONS = IntRange(1, 104)
"""Any contract size a clinic may type; the protocol's own range is a rule."""
FOLLOW_UP_SESSIONS = IntRange(1, 104)
SESSION_NUMBER = IntRange(1, 10_000)
RELATIONSHIP_FLAGS = ("supportive", "conflict", "changed_at_onset", "deceased")


def plain(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Relationship | Replacement):
        return value.as_dict()
    return value


@dataclass(frozen=True)
class Relationship:
    """One relationship of the interpersonal inventory: a role, never a name."""

    role: RelationshipRole
    closeness: int
    supportive: bool = False
    conflict: bool = False
    changed_at_onset: bool = False
    deceased: bool = False
    current: bool = True
    """False: a past relationship (one that ended, or a person who died)."""
    communication_style: CommunicationStyle | None = None

    def as_dict(self) -> dict[str, Any]:
        """As stored and digested; the fields added later only when not default."""
        return {
            f.name: plain(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("current", "communication_style")
            or getattr(self, f.name) != f.default
        }


@dataclass(frozen=True)
class Replacement:
    """The value a measure entered in error should have had."""

    score: int
    measured_on: str

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "measured_on": self.measured_on}


def relationships(p: Parsing, name: str, value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) not in RELATIONSHIPS:
        p.inp.fail(name, f"must list {RELATIONSHIPS} relationships")
        return None
    return tuple(_relationship(p.inp, f"{name}[{i}]", r) for i, r in enumerate(value))


def _relationship(inp: Input, at: str, rel: object) -> Relationship | None:
    if not isinstance(rel, Mapping):
        inp.fail(at, "must be an object")
        return None
    known = {"role", "closeness", "current", "communication_style", *RELATIONSHIP_FLAGS}
    for name in sorted(set(rel) - known, key=str):
        inp.fail(f"{at}.{name}", "is not a field of a relationship")
    role = inp.code(f"{at}.role", rel.get("role"), RelationshipRole)
    closeness = inp.integer(f"{at}.closeness", rel.get("closeness"), CLOSENESS)
    flags = {n: inp.flag(f"{at}.{n}", rel.get(n, False)) for n in RELATIONSHIP_FLAGS}
    current = inp.flag(f"{at}.current", rel.get("current", True))
    style = rel.get("communication_style")
    comms = None
    if style is not None:
        comms = inp.code(f"{at}.communication_style", style, CommunicationStyle)
    if role is None or closeness is None:
        return None
    return Relationship(
        role, closeness, **flags, current=current, communication_style=comms
    )


def replacement(p: Parsing, name: str, value: object) -> object:
    """A measure's replacement: its score on the same instrument, and its date."""
    if value is None:
        return None
    if p.good.get("entry") != CorrectedEntry.measure:
        p.inp.fail(name, "only a measure's correction takes a replacement")
        return None
    if not isinstance(value, Mapping):
        p.inp.fail(name, "must be an object with score and measured_on")
        return None
    for key in sorted(set(value) - {"score", "measured_on"}, key=str):
        p.inp.fail(f"{name}.{key}", "is not a field of a replacement")
    instrument = p.good.get("instrument")
    score = None
    if isinstance(instrument, Instrument):
        score = p.inp.integer(
            f"{name}.score", value.get("score"), INSTRUMENTS[instrument].scores
        )
    day = past_date(p, f"{name}.measured_on", value.get("measured_on"))
    if score is None or not isinstance(day, str):
        return None
    return Replacement(score, day)
