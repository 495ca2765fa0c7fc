"""Correcting an entry made in error (domain.md §4: correct an entry; §7: corrections
never leave the case in a state its rules forbid)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipt_workflow.domain.codes import Attendee, CorrectedEntry, Phase
from ipt_workflow.domain.commands import CorrectEntry
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts, baseline_of, final_of
from ipt_workflow.domain.protocols import DEVIATION_CONTRACT_RANGE, SessionKind
from ipt_workflow.domain.rules.opening import dated_from_intake


def correct_entry(facts: CaseFacts, command: CorrectEntry) -> list[Violation]:
    """The entry exists and is not voided already; voiding it keeps what the middle
    phase required, and after conclude a measure the outcome used is replaced."""
    if command.entry is CorrectedEntry.measure:
        return _measure(facts, command)
    if command.meeting_kind is not None:
        return _meeting(facts, command)
    return _session(facts, command)


def entry_index(facts: CaseFacts, command: CorrectEntry) -> int | None:
    """Where the entry to void is among the case's sessions or measures."""
    if command.instrument is not None and command.measured_on is not None:
        return facts.measure_index(command.instrument, command.measured_on)
    if command.meeting_kind is not None and command.held_on is not None:
        live = _meetings_on(facts, command.meeting_kind, command.held_on)
        return live[-1] if live else None
    return None


def _measure(facts: CaseFacts, command: CorrectEntry) -> list[Violation]:
    assert command.instrument is not None and command.measured_on is not None
    index = facts.measure_index(command.instrument, command.measured_on)
    if index is None:
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
    measure = facts.measures[index]
    v = []
    if command.replacement is not None:
        v += dated_from_intake(
            facts, command.replacement.measured_on, "The replacement"
        )
    used = measure is facts.baseline or measure is facts.final_measure
    if facts.concluded and used and command.replacement is None:
        v.append(
            Violation(
                "replacement_required",
                "The outcome was classified on this measure: correct it with a "
                "replacement (its right score and date), so the outcome can be "
                "revised.",
            )
        )
    elif _after_middle(facts) and command.replacement is None:
        v += _keeps_baseline(facts, measure)
    if facts.concluded and not v:
        v += _keeps_outcome(facts, index, command)
    return v


def _keeps_outcome(
    facts: CaseFacts, index: int, command: CorrectEntry
) -> list[Violation]:
    """After conclude the outcome must stay computable: a correction (a replacement
    dated after another beginning measure, say) may not leave a baseline on an
    instrument the end phase never measured (domain.md §7)."""
    after = [
        {**m, "voided": True} if i == index else m for i, m in enumerate(facts.measures)
    ]
    if command.replacement is not None:
        replaced = facts.measures[index]
        after.append(
            {
                **replaced,
                "score": command.replacement.score,
                "measured_on": command.replacement.measured_on,
                "voided": False,
            }
        )
    if final_of(after) is not None:
        return []
    baseline = baseline_of(after)
    assert baseline is not None
    return [
        Violation(
            "final_measure_still_required",
            f"After this correction the baseline would be the {baseline['instrument']} "
            f"measure of {baseline['measured_on']}, and the end phase has no "
            f"{baseline['instrument']} measure to classify the outcome against: date "
            "the replacement so that it stays the baseline, or correct the other "
            "measure first.",
        )
    ]


def _keeps_baseline(facts: CaseFacts, measure: Mapping[str, Any]) -> list[Violation]:
    others = [m for m in facts.dated_measures(Phase.beginning) if m is not measure]
    if measure is not facts.baseline or others:
        return []
    return [
        Violation(
            "baseline_still_required",
            "This is the baseline the middle phase started on, and no other "
            "beginning measure can take its place: correct it with a replacement.",
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
    if follow_up:
        return []
    v = _leaves_room(facts, found)
    if found["phase"] != Phase.beginning or not _after_middle(facts):
        return v
    return _keeps_beginning(facts, found) + v


def _leaves_room(facts: CaseFacts, session: Mapping[str, Any]) -> list[Violation]:
    """Voiding a counted session does not give its number back: the course must
    still fit in the largest contract a deviation allows (domain.md §7: never a
    state the rules forbid, always a way forward)."""
    phase = facts.current_phase
    if phase not in (Phase.beginning, Phase.middle, Phase.end):
        return []
    left = [
        s
        for s in facts.sessions
        if s["number"] is not None
        and not s["voided"]
        and not s["follow_up"]
        and s is not session
    ]

    def held(p: Phase) -> int:
        return sum(1 for s in left if s["phase"] == p)

    end_min = facts.protocol.end_sessions.low
    last = facts.last_session_number
    if phase == Phase.end:
        needed = last + max(0, end_min - held(Phase.end))
    elif phase == Phase.middle:
        needed = last + (0 if held(Phase.middle) else 1) + end_min
    else:
        needed = last + (0 if held(Phase.beginning) else 1) + 1 + end_min
    largest = max(DEVIATION_CONTRACT_RANGE.high, facts.protocol.contract_sessions.high)
    if needed <= largest:
        return []
    return [
        Violation(
            "correction_leaves_no_way_forward",
            f"Voiding this session would leave the course needing session numbers "
            f"up to {needed} (a voided number is never given again), more than any "
            f"contract may have ({largest}): the course could not go on, so the "
            "session stays.",
        )
    ]


def _keeps_beginning(facts: CaseFacts, session: Mapping[str, Any]) -> list[Violation]:
    """The middle phase started on a counted beginning session (and for fb-ipt, one
    with a parent): voiding the last such one is refused."""
    beginning = [
        s
        for s in facts.sessions
        if s["phase"] == Phase.beginning
        and s["number"] is not None
        and not s["voided"]
        and s is not session
    ]
    v = []
    if not beginning:
        v.append(
            Violation(
                "beginning_session_still_required",
                "This is the only counted beginning session the middle phase "
                "started on: record the right beginning session before voiding it.",
            )
        )
    needs_parent = facts.protocol.parent_session_required_before_middle
    if needs_parent and not any(Attendee.parent in s["attendees"] for s in beginning):
        v.append(
            Violation(
                "parent_session_still_required",
                f"{facts.protocol.title} started its middle phase on this session "
                "with a parent: it is the only one, so it cannot be voided.",
            )
        )
    return v


def _meeting(facts: CaseFacts, command: CorrectEntry) -> list[Violation]:
    kind, day = command.meeting_kind, command.held_on
    assert kind is not None and day is not None
    if not _meetings_on(facts, kind, day):
        if any(s["kind"] == kind and s["held_on"] == day for s in facts.sessions):
            return [_already_voided("That meeting is already voided.")]
        return [_not_found(f"No {kind.value} meeting was recorded on {day}.")]
    others = len(facts.meetings(kind)) > 1
    needed = facts.protocol.pre_group_meeting_required and facts.counted_sessions()
    if kind == SessionKind.individual_pre_group and needed and not others:
        return [
            Violation(
                "pre_group_meeting_still_required",
                "Group sessions were held after this pre-group meeting, and it is the "
                "only one: record the right pre-group meeting before voiding it.",
            )
        ]
    return []


def _meetings_on(facts: CaseFacts, kind: SessionKind, day: str) -> list[int]:
    return [
        i
        for i, s in enumerate(facts.sessions)
        if s["kind"] == kind and s["held_on"] == day and not s["voided"]
    ]


def _after_middle(facts: CaseFacts) -> bool:
    return facts.phase != Phase.beginning


def _not_found(message: str) -> Violation:
    return Violation("entry_not_found", message)


def _already_voided(message: str) -> Violation:
    return Violation("entry_already_voided", message)
