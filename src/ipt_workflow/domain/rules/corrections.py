"""Correcting an entry made in error (domain.md §4: correct an entry)."""

from __future__ import annotations

from ipt_workflow.domain.codes import CorrectedEntry
from ipt_workflow.domain.commands import CorrectEntry
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts


def correct_entry(facts: CaseFacts, command: CorrectEntry) -> list[Violation]:
    """The entry exists and is not voided already."""
    if command.entry is CorrectedEntry.measure:
        return _measure(facts, command)
    return _session(facts, command)


def _measure(facts: CaseFacts, command: CorrectEntry) -> list[Violation]:
    assert command.instrument is not None and command.measured_on is not None
    if facts.measure_index(command.instrument, command.measured_on) is not None:
        return []
    if any(
        m["instrument"] == command.instrument
        and m["measured_on"] == command.measured_on
        for m in facts.measures
    ):
        return [_already_voided("That measure is already voided.")]
    return [
        _not_found(
            f"No {command.instrument.value} measure was recorded on "
            f"{command.measured_on}."
        )
    ]


def _session(facts: CaseFacts, command: CorrectEntry) -> list[Violation]:
    assert command.number is not None
    follow_up = command.entry is CorrectedEntry.follow_up_session
    course = "follow-up session" if follow_up else "session"
    found = facts.session(command.number, follow_up)
    if found is None:
        return [_not_found(f"There is no {course} number {command.number}.")]
    if found["voided"]:
        return [
            _already_voided(
                f"{course.capitalize()} {command.number} is already voided."
            )
        ]
    return []


def _not_found(message: str) -> Violation:
    return Violation("entry_not_found", message)


def _already_voided(message: str) -> Violation:
    return Violation("entry_already_voided", message)
