"""What a case knows, and what follows from it: the view every rule decides on.

The aggregate folds its events into these attributes; this class adds the
questions the rules ask of them (how many sessions count, which measure is the
baseline, is an offer open). Its attributes are typed read-only, so a rule that
is given a `CaseFacts` can read a case but not change it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ipt_workflow.domain.codes import FINAL_PHASES, Attendee, DeviationRule, Phase
from ipt_workflow.domain.protocols import PROTOCOLS, Protocol, SessionKind

Row = Mapping[str, Any]


class CaseFacts:
    """The state of a case and the queries over it; the aggregate is one."""

    clinic_id: str
    client_ref: str
    protocol_id: str
    client_age: int
    prior_episodes: int
    clinician_id: str
    phase: str
    inventory: Row | None
    focus: Row | None
    contract: Row | None
    deviations: Sequence[Row]
    sessions: Sequence[Row]
    missed_sessions: Sequence[Row]
    measures: Sequence[Row]
    last_session_number: int
    last_follow_up_number: int
    outcome: Row | None
    maintenance_discussed: bool
    offers: Sequence[Row]
    follow_up_contract: Row | None
    ending: Row | None
    intake_on: str
    termination_tasks: Sequence[str]
    risk: Row | None
    """The latest risk flag: item, instrument, measured_on, flagged_at, review."""
    relapse: Row | None
    outcome_revised_after_decision: bool

    @property
    def protocol(self) -> Protocol:
        return PROTOCOLS[self.protocol_id]

    @property
    def current_phase(self) -> Phase:
        return Phase(self.phase)

    @property
    def is_final(self) -> bool:
        return self.phase in FINAL_PHASES

    # --- sessions ---------------------------------------------------------------

    def _counted(self, follow_up: bool = False) -> list[Row]:
        return [
            s
            for s in self.sessions
            if s["number"] is not None
            and not s["voided"]
            and s["follow_up"] == follow_up
        ]

    def counted_sessions(self, phase: Phase | None = None) -> int:
        """Counted acute sessions, in one phase or in all."""
        return sum(1 for s in self._counted() if phase is None or s["phase"] == phase)

    @property
    def follow_up_sessions_held(self) -> int:
        return len(self._counted(follow_up=True))

    def parent_sessions(self) -> list[Row]:
        """Counted acute sessions attended by a parent."""
        return [s for s in self._counted() if Attendee.parent in s["attendees"]]

    def meetings(self, kind: SessionKind) -> list[Row]:
        """Sessions of a kind that counts toward nothing, not voided."""
        return [s for s in self.sessions if s["kind"] == kind and not s["voided"]]

    def session(self, number: int, follow_up: bool) -> Row | None:
        """The session with this number (voided or not), if there is one."""
        return next(
            (
                s
                for s in self.sessions
                if s["number"] == number and s["follow_up"] == follow_up
            ),
            None,
        )

    @property
    def acute_sessions_remaining(self) -> int | None:
        """Sessions the contract still has numbers for: a voided session's number is
        never given again, so it does not come back (domain.md §7)."""
        if self.contract is None:
            return None
        return int(self.contract["sessions"]) - self.last_session_number

    @property
    def sessions_remaining(self) -> int | None:
        if self.phase == Phase.follow_up and self.follow_up_contract is not None:
            return (
                int(self.follow_up_contract["sessions"]) - self.follow_up_sessions_held
            )
        return self.acute_sessions_remaining

    @property
    def beginning_session_limit(self) -> int:
        extra = sum(
            1
            for d in self.deviations
            if d["rule"] == DeviationRule.beginning_session_limit
        )
        return self.protocol.beginning_sessions.high + extra

    def unused_deviations(self, rule: DeviationRule) -> int:
        return sum(1 for d in self.deviations if d["rule"] == rule and not d["used"])

    # --- measures -----------------------------------------------------------------

    def valid_measures(self) -> list[Row]:
        return [m for m in self.measures if not m["voided"]]

    def dated_measures(self, phase: Phase | None = None) -> list[Row]:
        """The measures not voided (of one phase, or all), in date order; ties in
        recording order."""
        return dated(self.measures, phase)

    def measure_index(self, instrument: str, measured_on: str) -> int | None:
        """The latest measure not voided with this instrument and date, if any."""
        live = [
            i
            for i, m in enumerate(self.measures)
            if m["instrument"] == instrument
            and m["measured_on"] == measured_on
            and not m["voided"]
        ]
        return live[-1] if live else None

    @property
    def baseline(self) -> Row | None:
        """The earliest-dated measure of the beginning phase (else of the case)."""
        return baseline_of(self.measures)

    @property
    def latest_measure(self) -> Row | None:
        found = self.dated_measures()
        return found[-1] if found else None

    @property
    def final_measure(self) -> Row | None:
        """The latest-dated measure of the end phase with the baseline's instrument;
        never the baseline itself (D17)."""
        return final_of(self.measures)

    @property
    def concluded(self) -> bool:
        """Has acute treatment concluded (whatever happened since)?"""
        return self.outcome is not None

    # --- follow-up ------------------------------------------------------------------

    @property
    def follow_up_offer(self) -> dict[str, Any] | None:
        """The open offer, awaiting the client's decision (none once the case ends)."""
        if self.offers and self.offers[-1]["decision"] is None and not self.is_final:
            return {k: self.offers[-1][k] for k in ("kind", "offered_at", "automatic")}
        return None

    @property
    def offer_declined(self) -> bool:
        return bool(self.offers) and self.offers[-1]["decision"] == "declined"


# --- baseline and final over any list of measures (a correction asks what they
# would be after it) ---------------------------------------------------------------


def dated(measures: Sequence[Row], phase: Phase | None = None) -> list[Row]:
    """The measures not voided (of one phase, or all), in date order; ties in
    recording order (domain.md §7)."""
    found = [
        (m["measured_on"], i, m)
        for i, m in enumerate(measures)
        if not m["voided"] and (phase is None or m["phase"] == phase)
    ]
    return [m for _, _, m in sorted(found, key=lambda t: (t[0], t[1]))]


def baseline_of(measures: Sequence[Row]) -> Row | None:
    """The earliest-dated measure of the beginning phase (else of all of them)."""
    found = dated(measures, Phase.beginning) or dated(measures)
    return found[0] if found else None


def final_of(measures: Sequence[Row]) -> Row | None:
    """The latest-dated measure of the end phase with the baseline's instrument,
    never the baseline itself (D17)."""
    baseline = baseline_of(measures)
    if baseline is None:
        return None
    in_end = [
        m
        for m in dated(measures, Phase.end)
        if m["instrument"] == baseline["instrument"] and m is not baseline
    ]
    return in_end[-1] if in_end else None
