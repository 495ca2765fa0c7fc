"""Checks of bad input: fixed ranges and formats, before any rule is asked.

A command collects every bad field first and raises one InvalidInput naming them
all, so a clinic system can fix a form in one round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from ipt_workflow.domain.protocols import IntRange
from ipt_workflow.domain.rules import FieldError, InvalidInput

E = TypeVar("E", bound=StrEnum)

IDENTIFIER = re.compile(r"[A-Za-z0-9._:-]{1,64}")
NOTE_MAX = 500
DATE_GRACE = timedelta(days=1)
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

    def optional_code(self, field: str, value: object, codes: type[E]) -> E | None:
        return None if value is None else self.code(field, value, codes)

    def codes(self, field: str, values: object, codes: type[E]) -> list[E]:
        if not isinstance(values, list | tuple):
            self.fail(field, "must be a list")
            return []
        found = [self.code(f"{field}[{i}]", v, codes) for i, v in enumerate(values)]
        if len(set(values)) != len(values):
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

    def reason(
        self, field: str, value: object, codes: type[E], note: object
    ) -> tuple[E | None, str | None]:
        """A reason code and its note; a note goes only with the code `other`."""
        code = self.code(field, value, codes)
        if note is None:
            return code, None
        if not isinstance(note, str) or not 1 <= len(note) <= NOTE_MAX:
            self.fail("note", f"must be text of 1–{NOTE_MAX} characters")
            return code, None
        if code is not None and code != "other":
            self.fail("note", "a note may be given only with the reason 'other'")
            return code, None
        return code, note

    def optional_reason(
        self, field: str, value: object, codes: type[E], note: object
    ) -> tuple[E | None, str | None]:
        """Like `reason`, for a reason that may be left out (with no note then)."""
        if value is not None:
            return self.reason(field, value, codes, note)
        if note is not None:
            self.fail("note", "a note may be given only with the reason 'other'")
        return None, None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def required(inp: Input, given: Iterable[tuple[str, object]]) -> None:
    """Fail each named field whose value is missing."""
    for field, value in given:
        if value is None:
            inp.fail(field, "is required")


def as_list(values: Sequence[E]) -> list[str]:
    return [v.value for v in values]
