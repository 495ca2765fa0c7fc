"""Sample courses of IPT as command values: what a clinic sends to bring a case to a
phase, for any protocol. The demo prints them; the tests drive cases with them,
through the aggregate, the application or HTTP, so every test folder builds its
cases the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    AgreeFocus,
    Close,
    Command,
    Conclude,
    OpenCase,
    RecordDeviation,
    RecordInventory,
    RecordMeasure,
    RecordSession,
    RenegotiateContract,
    StartEnd,
    StartMiddle,
    Withdraw,
)
from ipt_workflow.domain.protocols import find_protocol

TYPICAL_AGE = {"ipt": 34, "ipt-a": 15, "fb-ipt": 9, "ipt-g": 41, "ipt-b": 52}
"""An age at intake each protocol is for."""

ORDER = (Phase.beginning, Phase.middle, Phase.end, Phase.concluded, Phase.follow_up)


@dataclass(frozen=True)
class Course:
    """One client's course: the protocol, the scores, the contract, the days.

    With the defaults, phq9 20 → 8 is a response, so concluding offers
    continuation; `final=3` is a remission, `final=18` no response (a referral).
    A child under 12 is measured on the CDRS-R (60 → 32, a response).
    """

    protocol: str = "ipt"
    baseline: int | None = None
    """Default: 20 on the PHQ-9, 60 on the CDRS-R."""
    final: int | None = None
    """Default: 8 on the PHQ-9 (a response), 32 on the CDRS-R (a response)."""
    instrument: str | None = None
    """Default: the CDRS-R for a child under 12 (domain.md §8), else the PHQ-9."""
    prior_episodes: int = 0
    contract: int | None = None
    area: str = "role_transition"
    age: int | None = None
    today: date | None = None
    """The day the commands are given (default: the real today)."""
    weekly_from: date | None = None
    """The day of the first session, the next one a week later; default: all today."""
    intake_on: date | None = None
    """The day of the first assessment; default: the first session's day."""
    brief: bool = False
    """Cut the contract short after one middle session (a contract_range deviation
    and a renegotiation), so the end phase comes quickly: for tests over HTTP."""

    @property
    def day(self) -> date:
        return self.today or datetime.now(UTC).date()

    def with_(self, **changes: object) -> Course:
        return replace(self, **changes)  # type: ignore[arg-type]

    # --- the commands -------------------------------------------------------------

    def opening(
        self,
        clinic_id: str = "clinic-1",
        client_ref: str = "client-1",
        clinician_id: str = "clinician-1",
    ) -> OpenCase:
        return OpenCase.parse(
            clinic_id=clinic_id,
            client_ref=client_ref,
            protocol=self.protocol,
            intake_on=self.intake_on or self.weekly_from or self.day,
            today=self.day,
            client_age=self.client_age,
            clinician_id=clinician_id,
            prior_episodes=self.prior_episodes,
        )

    def inventory(self, deceased: bool = False) -> RecordInventory:
        return RecordInventory.parse(
            relationships=[
                {"role": "partner", "closeness": 1, "conflict": True},
                {"role": "mother", "closeness": 2, "deceased": deceased},
            ]
        )

    def focus(self, area: str | None = None, **details: Any) -> AgreeFocus:
        return AgreeFocus.parse(
            primary_area=area or self.area, client_agreed=True, **details
        )

    @property
    def client_age(self) -> int:
        return (
            TYPICAL_AGE[self.protocol.split("@")[0]] if self.age is None else self.age
        )

    @property
    def scale(self) -> str:
        """The instrument the course is measured on."""
        if self.instrument is not None:
            return self.instrument
        return "cdrsr" if self.client_age < 12 else "phq9"

    @property
    def baseline_score(self) -> int:
        if self.baseline is not None:
            return self.baseline
        return 60 if self.scale == "cdrsr" else 20

    @property
    def final_score(self) -> int:
        if self.final is not None:
            return self.final
        return 32 if self.scale == "cdrsr" else 8

    def measure(
        self, score: int, instrument: str | None = None, on: date | None = None
    ) -> RecordMeasure:
        return RecordMeasure.parse(
            instrument=instrument or self.scale,
            score=score,
            measured_on=on or self.day,
            today=self.day,
        )

    def session(self, n: int = 0, **details: Any) -> RecordSession:
        """A session (the `n`th of the course, for its date), attended by the client."""
        held_on = self.day
        if self.weekly_from is not None:
            held_on = self.weekly_from + timedelta(weeks=n)
        values: dict[str, Any] = {
            "held_on": held_on,
            "minutes": 50,
            "modality": "in_person",
            "attendees": ["client"],
        }
        return RecordSession.parse(today=self.day, **{**values, **details})

    def first_session(self) -> list[Command]:
        """The first counted session, with what the protocol needs around it."""
        name = self.protocol.split("@")[0]
        if name == "ipt-g":
            return [self.session(kind="individual_pre_group"), self.session()]
        if name in ("fb-ipt", "ipt-a"):
            return [self.session(attendees=["client", "parent"])]
        return [self.session()]

    def beginning_ready(self) -> list[Command]:
        """Everything start_middle needs: inventory, focus, contract, a baseline and
        a counted beginning session."""
        return [
            self.inventory(deceased=self.area == "grief"),
            self.focus(),
            AgreeContract.parse(sessions=self.contract),
            self.measure(self.baseline_score),
            *self.first_session(),
        ]

    def commands(self, to: Phase) -> list[Command]:
        """The commands after opening that bring a new case to the phase `to`
        (`follow_up` accepts continuation; `closed` closes in remission, so give
        `final=3`; `withdrawn` withdraws in the middle phase)."""
        if to == Phase.withdrawn:
            return [*self.commands(Phase.middle), Withdraw.parse(reason="moved")]
        if to == Phase.closed:
            return [*self.commands(Phase.concluded), Close.parse()]
        protocol = find_protocol(self.protocol)
        assert protocol is not None, f"unknown protocol {self.protocol}"
        contract = self.contract or protocol.default_contract_sessions
        end_min = protocol.end_sessions.low
        plan: list[Command] = []
        steps = ORDER[: ORDER.index(to) + 1]
        if Phase.middle in steps:
            plan += [*self.beginning_ready(), StartMiddle.parse()]
        if Phase.end in steps and self.brief:
            contract = 2 + end_min
            plan += [
                self.session(1),
                RecordDeviation.parse(rule="contract_range", reason="crisis"),
                RenegotiateContract.parse(
                    sessions=contract, reason="clinical_progress"
                ),
                StartEnd.parse(),
            ]
        elif Phase.end in steps:
            middle = range(1, contract - end_min)
            plan += [*(self.session(n) for n in middle), StartEnd.parse()]
        if Phase.concluded in steps:
            held = contract - end_min
            plan += [self.session(held + n) for n in range(end_min)]
            plan += [self.measure(self.final_score), Conclude.parse()]
        if Phase.follow_up in steps:
            plan.append(AcceptFollowUp.parse(sessions=4, frequency="monthly"))
        return plan
