"""Checks of bad input: fixed ranges and formats, before any rule is asked.

A command collects every bad field first and raises one InvalidInput naming them
all, so a clinic system can fix a form in one round trip. The field checks at the
end are what command fields declare (`given(...)`, see commands/).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import MISSING, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from ipt_workflow.domain.codes import (
    CommunicationAspect,
    CorrectedEntry,
    FollowUpFrequency,
    Strategy,
)
from ipt_workflow.domain.errors import FieldError, InvalidInput
from ipt_workflow.domain.measures import FollowUpKind
from ipt_workflow.domain.protocols import (
    INSTRUMENTS,
    PROTOCOLS,
    Instrument,
    IntRange,
    find_protocol,
)

E = TypeVar("E", bound=StrEnum)

IDENTIFIER_CHARACTERS = "[A-Za-z0-9._:-]"
IDENTIFIER_LENGTH = IntRange(1, 64)
IDENTIFIER = re.compile(
    f"{IDENTIFIER_CHARACTERS}{{{IDENTIFIER_LENGTH.low},{IDENTIFIER_LENGTH.high}}}"
)
NOTE_LENGTH = IntRange(1, 500)
DATE_GRACE = timedelta(days=1)
INTAKE_LOOKBACK = timedelta(days=3653)
"""How far back a course brought in from before this service may begin (10 years)."""
RISK_ITEM = IntRange(0, 3)
RISK_INSTRUMENTS = frozenset({Instrument.phq9, Instrument.bdi2})
"""The instruments whose item 9 asks about thoughts of self-harm (domain.md §8)."""
"""Clinics sit in other time zones than the server: a date may be one day ahead."""


class Input:
    """Collects the field errors of one command."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def check(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)

    def code(self, field: str, value: object, codes: type[E]) -> E | None:
        if isinstance(value, str) and value in codes.__members__:
            return codes(value)
        allowed = ", ".join(codes.__members__)
        self.fail(field, f"{_shown(value)} is not one of: {allowed}")
        return None

    def codes(self, field: str, values: object, codes: type[E]) -> list[E]:
        if not isinstance(values, list | tuple):
            self.fail(field, "must be a list")
            return []
        found = [self.code(f"{field}[{i}]", v, codes) for i, v in enumerate(values)]
        hashable = [v for v in values if _hashable(v)]
        if len(set(hashable)) != len(hashable):
            self.fail(field, "must not repeat a value")
        return [c for c in found if c is not None]

    def integer(self, field: str, value: object, allowed: IntRange) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"{_shown(value)} is not a whole number")
            return None
        if value not in allowed:
            self.fail(field, f"{value} is outside {allowed}")
            return None
        return value

    def flag(self, field: str, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(field, f"{_shown(value)} is not true or false")
            return False
        return value

    def identifier(self, field: str, value: object) -> str | None:
        if isinstance(value, str) and IDENTIFIER.fullmatch(value):
            return value
        self.fail(field, "must be 1–64 characters of A–Z a–z 0–9 . _ : -")
        return None

    def past_date(self, field: str, value: object, today: date) -> str | None:
        """A date no later than tomorrow, returned as `YYYY-MM-DD`."""
        if isinstance(value, datetime):
            self.fail(field, "must be a date without a time (YYYY-MM-DD)")
            return None
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                self.fail(field, f"{_shown(value)} is not a date (YYYY-MM-DD)")
                return None
        if not isinstance(value, date):
            self.fail(field, f"{_shown(value)} is not a date (YYYY-MM-DD)")
            return None
        if value > today + DATE_GRACE:
            self.fail(field, f"{value.isoformat()} is in the future")
            return None
        return value.isoformat()


def _hashable(value: object) -> bool:
    """Can it go in a set? (A tuple holding a list says Hashable, and is not.)"""
    if not isinstance(value, Hashable):
        return False
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- field checks, which command fields declare ---------------------------------


@dataclass
class Parsing:
    """One command being parsed: its raw values, the good ones so far, the errors."""

    inp: Input
    raw: Mapping[str, object]
    good: dict[str, object]
    today: date | None


Check = Callable[[Parsing, str, object], object]


def given(check: Check, default: object = MISSING) -> Any:
    """A command field and the check its raw value must pass."""
    return field(default=default, metadata={"check": check})


def code(codes: type[E]) -> Check:
    return lambda p, name, value: p.inp.code(name, value, codes)


def optional(check: Check) -> Check:
    return lambda p, name, value: None if value is None else check(p, name, value)


def codes_of(codes: type[E], *, at_least_one: bool = False) -> Check:
    def check(p: Parsing, name: str, value: object) -> object:
        found = tuple(p.inp.codes(name, value, codes))
        if at_least_one and isinstance(value, list | tuple) and not value:
            p.inp.fail(name, "must name at least one attendee")
        return found

    return check


def within(allowed: IntRange) -> Check:
    return lambda p, name, value: p.inp.integer(name, value, allowed)


def identifier(p: Parsing, name: str, value: object) -> object:
    return p.inp.identifier(name, value)


def flag(p: Parsing, name: str, value: object) -> object:
    return p.inp.flag(name, value)


def past_date(p: Parsing, name: str, value: object) -> object:
    assert p.today is not None, "a command with dates is parsed with today's date"
    return p.inp.past_date(name, value, p.today)


def raw_value(_p: Parsing, _name: str, value: object) -> object:
    """Kept raw: parsed later as the command it turns out to be."""
    return value


def note_for(reason_field: str, *, reason_optional: bool = False) -> Check:
    """A note: short text, and only beside the reason code `other`."""

    def check(p: Parsing, name: str, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) not in NOTE_LENGTH:
            p.inp.fail(name, f"must be text of {NOTE_LENGTH} characters")
            return None
        reason = p.good.get(reason_field)
        absent = reason_optional and p.raw.get(reason_field) is None
        if absent or (reason is not None and reason != "other"):
            p.inp.fail(name, "a note may be given only with the reason 'other'")
            return None
        return value

    return check


def aspects_problem(
    strategies: Collection[str], aspects: Collection[str]
) -> str | None:
    """Why these communication aspects cannot go with these strategies, if so."""
    if aspects and Strategy.communication_analysis not in strategies:
        return (
            "aspects belong to communication analysis, which is not among the "
            "strategies"
        )
    return None


def known_protocol(p: Parsing, name: str, value: object) -> object:
    if isinstance(value, str) and find_protocol(value) is not None:
        return value
    p.inp.fail(name, f"unknown protocol; known: {', '.join(PROTOCOLS)}")
    return None


def score_of(instrument_field: str) -> Check:
    def check(p: Parsing, name: str, value: object) -> object:
        instrument = p.good.get(instrument_field)
        if not isinstance(instrument, Instrument):
            return None  # the instrument is wrong already: no range to check
        return p.inp.integer(name, value, INSTRUMENTS[instrument].scores)

    return check


def aspects(p: Parsing, name: str, value: object) -> object:
    found = codes_of(CommunicationAspect)(p, name, value)
    strategies = p.good.get("strategies")
    assert isinstance(found, tuple)
    if problem := aspects_problem(
        strategies if isinstance(strategies, tuple) else (), found
    ):
        p.inp.fail(name, problem)
    return found


def required_when(
    entry_field: str, kinds: Collection[CorrectedEntry], check: Check
) -> Check:
    """Required for some kinds of entry; ignored for the others."""

    def run(p: Parsing, name: str, value: object) -> object:
        if p.good.get(entry_field) not in kinds:
            return None
        if value is None:
            p.inp.fail(name, "is required")
            return None
        return check(p, name, value)

    return run


def offered_kind(p: Parsing, name: str, value: object) -> object:
    kind = p.inp.code(name, value, FollowUpKind)
    if kind is FollowUpKind.referral:
        p.inp.fail(name, "only continuation or maintenance can be offered")
        return None
    return kind


def follow_up_frequency(p: Parsing, name: str, value: object) -> object:
    """The follow-up contract's frequency: given with its sessions, or neither."""
    frequency = optional(code(FollowUpFrequency))(p, name, value)
    sessions = p.raw.get("sessions")
    if (sessions is None) != (value is None):
        p.inp.fail("sessions" if sessions is None else name, "is required")
    return frequency


def intake_date(p: Parsing, name: str, value: object) -> object:
    """The day of the first assessment: not in the future, not over 10 years ago."""
    day = past_date(p, name, value)
    assert p.today is not None
    if isinstance(day, str) and date.fromisoformat(day) < p.today - INTAKE_LOOKBACK:
        p.inp.fail(name, f"{day} is more than 10 years ago")
        return None
    return day


def risk_item_of(instrument_field: str) -> Check:
    """Item 9 of the PHQ-9 or BDI-II, 0 to 3; no other instrument has one."""

    def check(p: Parsing, name: str, value: object) -> object:
        instrument = p.good.get(instrument_field)
        if isinstance(instrument, Instrument) and instrument not in RISK_INSTRUMENTS:
            names = " and ".join(sorted(i.value for i in RISK_INSTRUMENTS))
            p.inp.fail(name, f"only {names} have a risk item, not {instrument.value}")
            return None
        return p.inp.integer(name, value, RISK_ITEM)

    return check
