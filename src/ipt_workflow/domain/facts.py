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
        if self.contract is None:
            return None
        return int(self.contract["sessions"]) - self.counted_sessions()

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
        valid = self.valid_measures()
        return valid[0] if valid else None

    @property
    def latest_measure(self) -> Row | None:
        valid = self.valid_measures()
        return valid[-1] if valid else None

    @property
    def final_measure(self) -> Row | None:
        """The last measure taken in the end phase with the baseline's instrument."""
        baseline = self.baseline
        if baseline is None:
            return None
        in_end = [
            m
            for m in self.valid_measures()[1:]
            if m["phase"] == Phase.end and m["instrument"] == baseline["instrument"]
        ]
        return in_end[-1] if in_end else None

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
