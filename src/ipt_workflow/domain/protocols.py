"""The IPT protocols (variants) and the symptom instruments, as versioned data.

A case is opened under one protocol version and keeps its parameters for life:
replaying an old case uses the rules it was opened under (domain.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

ProblemArea = StrEnum(
    "ProblemArea",
    "grief role_dispute role_transition interpersonal_deficits",
)


SessionKind = StrEnum(
    "SessionKind",
    "therapy engagement individual_pre_group individual_mid_group "
    "individual_post_group",
)


COUNTED_KINDS = frozenset({SessionKind.therapy})


@dataclass(frozen=True)
class IntRange:
    """An inclusive range of whole numbers."""

    low: int
    high: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"


@dataclass(frozen=True)
class Protocol:
    """One version of one IPT variant: every rule that differs between variants."""

    name: str
    version: int
    title: str
    age: IntRange
    contract_sessions: IntRange
    default_contract_sessions: int
    beginning_sessions: IntRange
    end_sessions: IntRange
    session_kinds: frozenset[SessionKind]
    problem_areas: frozenset[ProblemArea]
    parent_session_required_before_middle: bool = False
    parent_session_expected_in_beginning: bool = False
    pre_group_meeting_required: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"


ALL_AREAS = frozenset(ProblemArea)
THERAPY_ONLY = frozenset({SessionKind.therapy})

IPT = Protocol(
    name="ipt",
    version=1,
    title="Individual IPT for depression",
    age=IntRange(18, 120),
    contract_sessions=IntRange(12, 16),
    default_contract_sessions=16,
    beginning_sessions=IntRange(1, 3),
    end_sessions=IntRange(2, 3),
    session_kinds=THERAPY_ONLY,
    problem_areas=ALL_AREAS,
)
"""Individual IPT; each variant below says only how it differs."""

_PROTOCOLS = (
    IPT,
    replace(
        IPT,
        name="ipt-a",
        title="IPT for depressed adolescents (IPT-A)",
        age=IntRange(12, 18),
        default_contract_sessions=12,
        beginning_sessions=IntRange(1, 4),
        parent_session_expected_in_beginning=True,
    ),
    replace(
        IPT,
        name="fb-ipt",
        title="Family-based IPT for preadolescents (FB-IPT)",
        age=IntRange(7, 12),
        default_contract_sessions=14,
        beginning_sessions=IntRange(1, 5),
        parent_session_required_before_middle=True,
    ),
    replace(
        IPT,
        name="ipt-g",
        title="Group IPT (IPT-G)",
        contract_sessions=IntRange(16, 20),
        default_contract_sessions=20,
        beginning_sessions=IntRange(1, 5),
        end_sessions=IntRange(2, 5),
        session_kinds=frozenset(SessionKind) - {SessionKind.engagement},
        pre_group_meeting_required=True,
    ),
    replace(
        IPT,
        name="ipt-b",
        title="Brief IPT (IPT-B)",
        contract_sessions=IntRange(8, 8),
        default_contract_sessions=8,
        beginning_sessions=IntRange(1, 2),
        end_sessions=IntRange(2, 2),
        session_kinds=frozenset({SessionKind.therapy, SessionKind.engagement}),
    ),
)

PROTOCOLS: Mapping[str, Protocol] = MappingProxyType({p.id: p for p in _PROTOCOLS})
"""Every protocol version by its id (`ipt@1`)."""

LATEST: Mapping[str, Protocol] = MappingProxyType(
    {
        p.name: max(
            (q for q in _PROTOCOLS if q.name == p.name), key=lambda q: q.version
        )
        for p in _PROTOCOLS
    }
)
"""The latest version of each protocol by its bare name (`ipt`)."""

DEVIATION_CONTRACT_RANGE = IntRange(4, 30)
"""The contract sizes a `contract_range` deviation permits."""


def find_protocol(ref: str) -> Protocol | None:
    """The protocol named `ipt@1`, or the latest one named `ipt`; None if unknown."""
    return PROTOCOLS.get(ref) or LATEST.get(ref)


Instrument = StrEnum("Instrument", "phq9 hamd17 bdi2 cdrsr")


@dataclass(frozen=True)
class InstrumentSpec:
    """A symptom scale: its score range and the top of its remission range."""

    instrument: Instrument
    title: str
    scores: IntRange
    remission_max: int

    @property
    def floor(self) -> int:
        return self.scores.low

    def in_remission(self, score: int) -> bool:
        return score <= self.remission_max


INSTRUMENTS: Mapping[Instrument, InstrumentSpec] = MappingProxyType(
    {
        spec.instrument: spec
        for spec in (
            InstrumentSpec(Instrument.phq9, "PHQ-9", IntRange(0, 27), 4),
            InstrumentSpec(Instrument.hamd17, "HAM-D 17", IntRange(0, 52), 7),
            InstrumentSpec(Instrument.bdi2, "BDI-II", IntRange(0, 63), 13),
            InstrumentSpec(Instrument.cdrsr, "CDRS-R", IntRange(17, 113), 28),
        )
    }
)
