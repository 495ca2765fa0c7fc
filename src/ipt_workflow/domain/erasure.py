"""Retention, legal holds and erasure: when a case's record may be destroyed.

A clinic keeps a record for a legal period after the case ended (7 years by
default); for a client under 18 at intake, not before the client's 25th birthday
(both configurable per clinic). A legal hold suspends that. The refusals are
rules/erasure.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from ipt_workflow.domain.commands import Command
from ipt_workflow.domain.inputs import code, given, identifier


class ErasureBasis(StrEnum):
    retention_expired = "retention_expired"
    data_subject_request = "data_subject_request"


@dataclass(frozen=True, kw_only=True)
class PlaceLegalHold(Command):
    label = "legal_hold_placed"
    reason: str = given(identifier)
    """A reference (a matter or ticket id): the receipt must hold no client data."""


@dataclass(frozen=True, kw_only=True)
class LiftLegalHold(Command):
    label = "legal_hold_lifted"
    reason: str = given(identifier)


@dataclass(frozen=True, kw_only=True)
class EraseCase(Command):
    label = "erasure"
    basis: ErasureBasis = given(code(ErasureBasis))
    reason: str = given(identifier)
    """A reference to the request or the retention run, never prose."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How long one clinic keeps a record."""

    years_after_end: int = 7
    minor_below_age: int = 18
    minor_until_age: int = 25


def add_years(day: date, years: int) -> date:
    """The same day `years` later (29 February becomes 1 March)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def retention_until(
    policy: RetentionPolicy, *, intake_on: date, ended_on: date, age_at_intake: int
) -> date:
    """The first day the record may be destroyed.

    Only the age at intake is known, not the birthday: a client aged `a` on the
    intake day turns `until_age` at the latest `until_age - a` years after it, so
    that day is the earliest safe one.
    """
    until = add_years(ended_on, policy.years_after_end)
    if age_at_intake < policy.minor_below_age:
        birthday = add_years(intake_on, policy.minor_until_age - age_at_intake)
        until = max(until, birthday)
    return until
