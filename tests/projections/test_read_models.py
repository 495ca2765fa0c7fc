"""Every read model equals a reference fold of the raw history, on both back ends.

The reference is computed here, independently of the projections' own fold: from
each case's events and the domain aggregate replayed from them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.application.erasure import Retention
from ipt_workflow.composition import readmodels
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import CommandContext
from ipt_workflow.domain.erasure import EraseCase, RetentionPolicy
from tests.support.caseload import generate

CASES = 120
CIPHER_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
OVERDUE = {"weekly": 14, "twice_weekly": 7, "fortnightly": 28, "monthly": 60}


class Reference:
    """The expected content of each read model, from raw history."""

    def __init__(self, app: CaseApplication, ids: list[UUID]) -> None:
        self.app = app
        # An erased case is in no read model: it is as if it never was (D107).
        self.cases = {
            str(i): case for i in ids if (case := app.get_case(i)).erased is None
        }
        ids = [i for i in ids if str(i) in self.cases]
        self.events = {str(i): app.case_events(i) for i in ids}

    def _at(self, case_id: str, version: int) -> TherapyCase:
        return self.app.get_case(UUID(case_id), version=version)

    def _versions(self, case_id: str, kind: type[Any]) -> list[int]:
        return [
            e.originator_version for e in self.events[case_id] if isinstance(e, kind)
        ]

    @staticmethod
    def _counted(case: TherapyCase) -> list[Mapping[str, Any]]:
        return [
            s
            for s in case.sessions
            if s["number"] is not None and not s["voided"] and not s["follow_up"]
        ]

    def _last_session_on(self, case: TherapyCase) -> str | None:
        days = [
            s["held_on"]
            for s in case.sessions
            if s["number"] is not None and not s["voided"]
        ]
        return max(days) if days else None

    def caseload(self) -> list[dict[str, Any]]:
        rows = []
        for case_id, case in sorted(self.cases.items()):
            latest = case.latest_measure
            offer = case.follow_up_offer
            rows.append(
                {
                    "case_id": case_id,
                    "clinic_id": case.clinic_id,
                    "clinician_id": case.clinician_id,
                    "protocol": case.protocol_id,
                    "phase": case.phase,
                    "sessions_held": case.counted_sessions(),
                    "sessions_contracted": case.contract["sessions"]
                    if case.contract
                    else None,
                    "follow_up_sessions_held": case.follow_up_sessions_held,
                    "focus": case.focus["primary_area"] if case.focus else None,
                    "last_session_on": self._last_session_on(case),
                    "latest_score": None
                    if latest is None
                    else {k: latest[k] for k in ("instrument", "score", "measured_on")},
                    "open_offer": offer["kind"] if offer else None,
                    "version": case.version,
                }
            )
        return rows

    def phase_board(self) -> dict[tuple[str, ...], dict[str, int]]:
        counts = Counter(
            (c.clinic_id, c.protocol_id, c.phase) for c in self.cases.values()
        )
        return {k: {"cases": n} for k, n in counts.items()}

    def outcomes(self) -> dict[tuple[str, ...], dict[str, int]]:
        cells: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        for case_id, case in self.cases.items():
            area = case.focus["primary_area"] if case.focus else "none_agreed"
            cell = cells[(case.clinic_id, case.protocol_id, area)]
            cell["cases"] += 1
            if case.outcome is not None:
                cell["concluded"] += 1
                cell[case.outcome["classification"]] += 1
                cell["residual"] += int(case.outcome["residual"])
                (concluded_at,) = self._versions(
                    case_id, events.AcuteTreatmentConcluded
                )
                cell["sessions_at_conclusion"] += self._at(
                    case_id, concluded_at
                ).counted_sessions()
            revisions = [
                e
                for e in self.events[case_id]
                if isinstance(e, events.FollowUpOfferRevised) and e.kind is not None
            ]
            offered = self._versions(case_id, events.FollowUpOffered) or revisions
            cell["follow_up_offered"] += int(bool(offered))
            cell["follow_up_accepted"] += int(
                bool(self._versions(case_id, events.FollowUpAccepted))
            )
            cell["withdrawn"] += int(case.phase == "withdrawn")
            revised = bool(self._versions(case_id, events.OutcomeRevised))
            cell["revised"] += int(case.outcome is not None and revised)
        return {k: {m: n for m, n in v.items() if n} for k, v in cells.items()}

    def _since_measure(self, case_id: str, case: TherapyCase) -> int:
        # Interleave sessions and measures by the versions of the events recording them.
        session_versions = self._versions(case_id, events.SessionHeld)
        measure_versions = self._versions(case_id, events.SymptomsMeasured)
        valid = [
            v
            for v, m in zip(measure_versions, case.measures, strict=True)
            if not m["voided"]
        ]
        after = valid[-1] if valid else 0
        return sum(
            1
            for v, s in zip(session_versions, case.sessions, strict=True)
            if v > after
            and s["number"] is not None
            and not s["voided"]
            and not s["follow_up"]
        )

    def alerts(self) -> list[dict[str, Any]]:
        rows = []
        for case_id, case in sorted(self.cases.items()):
            if case.phase == "follow_up" and case.follow_up_contract:
                frequency = case.follow_up_contract["frequency"]
            else:
                frequency = case.contract["frequency"] if case.contract else "weekly"
            offer = case.follow_up_offer
            first: Any = self.events[case_id][0]
            opened = first.timestamp.date().isoformat()
            rows.append(
                {
                    "case_id": case_id,
                    "clinic_id": case.clinic_id,
                    "clinician_id": case.clinician_id,
                    "protocol": case.protocol_id,
                    "phase": case.phase,
                    "last_activity_on": self._last_session_on(case) or opened,
                    "overdue_after_days": OVERDUE[frequency],
                    "sessions_since_measure": self._since_measure(case_id, case),
                    "sessions_left": case.acute_sessions_remaining,
                    "sessions_held": case.counted_sessions(),
                    "parent_sessions": len(
                        [s for s in case.parent_sessions() if s["phase"] == "beginning"]
                    ),
                    "offer_kind": offer["kind"] if offer else None,
                    "offer_on": offer["offered_at"][:10] if offer else None,
                    "risk_flagged_on": self._open_flag_on(case_id),
                    "relapse_suspected": bool(
                        self._versions(case_id, events.RelapseSuspected)
                    ),
                    "outcome_revised_after_decision": (
                        case.outcome_revised_after_decision
                    ),
                }
            )
        return rows

    def _flags(self, case_id: str) -> list[dict[str, Any]]:
        """Each risk flag's day, and the day of the review that followed it."""
        flags: list[dict[str, Any]] = []
        for e in self.events[case_id]:
            day = e.timestamp.date().isoformat()  # type: ignore[attr-defined]
            if isinstance(e, events.RiskFlagged):
                flags.append({"flagged_on": day, "reviewed_on": None})
            elif isinstance(e, events.RiskReviewed):
                flags[-1]["reviewed_on"] = day
        return flags

    def _open_flag_on(self, case_id: str) -> str | None:
        flags = self._flags(case_id)
        if flags and flags[-1]["reviewed_on"] is None:
            found: str = flags[-1]["flagged_on"]
            return found
        return None

    def fidelity(self) -> list[dict[str, Any]]:
        rows = []
        for case_id, case in sorted(self.cases.items()):
            focus = self._versions(case_id, events.FocusAgreed)
            concluded = self._versions(case_id, events.AcuteTreatmentConcluded)
            end_held = (
                self._at(case_id, concluded[0]).counted_sessions(Phase.end)
                if concluded
                else None
            )
            flags = self._flags(case_id)
            sessions = case.counted_sessions()
            measures = len([m for m in case.measures if not m["voided"]])
            rows.append(
                {
                    "case_id": case_id,
                    "clinic_id": case.clinic_id,
                    "clinician_id": case.clinician_id,
                    "protocol": case.protocol_id,
                    "phase": case.phase,
                    "focus_agreed_at_session": self._at(
                        case_id, focus[-1]
                    ).counted_sessions()
                    if focus
                    else None,
                    "sessions_held": sessions,
                    "measures": measures,
                    "measures_per_4_sessions": round(measures * 4 / sessions, 2)
                    if sessions
                    else None,
                    "middle_strategies": sorted(
                        {
                            x
                            for s in self._counted(case)
                            if s["phase"] == "middle"
                            for x in s["strategies"]
                        }
                    ),
                    "termination_tasks": list(case.termination_tasks),
                    "termination_tasks_done": len(case.termination_tasks),
                    "end_phase_sessions": end_held,
                    "maintenance_discussed": case.maintenance_discussed,
                    "deviations": len(case.deviations),
                    "risk_flags": len(flags),
                    "risk_reviews_within_7_days": sum(
                        1
                        for f in flags
                        if f["reviewed_on"] is not None
                        and (
                            date.fromisoformat(f["reviewed_on"])
                            - date.fromisoformat(f["flagged_on"])
                        ).days
                        <= 7
                    ),
                    "outcome_revised_after_decision": (
                        case.outcome_revised_after_decision
                    ),
                }
            )
        return rows


ERASED = 12
"""Ended cases erased while the runners run: they leave every read model."""


def erase_some(app: CaseApplication, ids: list[UUID]) -> int:
    retention = Retention(app, lambda _clinic: RetentionPolicy())
    ctx = CommandContext(recorded_by="admin-1", today=date.today())
    ended = [i for i in ids if app.get_case(i).is_final][:ERASED]
    for case_id in ended:
        command = EraseCase.parse(basis="data_subject_request", reason="DSR-1")
        retention.erase(case_id, command, ctx, clinics=None)
    return len(ended)


@pytest.fixture
def generated(
    settings: Settings,
) -> Iterator[tuple[readmodels.ReadModels, Reference, Settings]]:
    """A caseload written while the projection runners run live; some ended cases
    erased."""
    settings = settings.model_copy(update={"cipher_key": SecretStr(CIPHER_KEY)})
    runners = readmodels.start_runners(settings)
    app = build_application(settings)
    try:
        ids = generate(app, CASES, seed=20261125)
        assert erase_some(app, ids) == ERASED
        models = readmodels.ReadModels(settings, app)
        assert models.wait(app.recorder.max_notification_id() or 0)
    finally:
        readmodels.stop_runners(runners)
    yield models, Reference(app, ids), settings
    models.close()
    app.close()


def test_every_read_model_equals_the_reference_fold_and_survives_a_rebuild(
    generated: tuple[readmodels.ReadModels, Reference, Settings],
) -> None:
    models, reference, settings = generated
    assert len(reference.cases) == CASES - ERASED
    phases = Counter(c.phase for c in reference.cases.values())
    assert {
        "beginning",
        "middle",
        "end",
        "concluded",
        "follow_up",
        "closed",
        "withdrawn",
    } <= set(phases)

    def check() -> None:
        assert models.views["caseload"].rows(None) == reference.caseload()
        assert models.views["phase_board"].counters(None) == reference.phase_board()
        assert models.views["outcomes"].counters(None) == reference.outcomes()
        assert models.views["alerts"].rows(None) == reference.alerts()
        assert models.views["fidelity"].rows(None) == reference.fidelity()

    check()
    check_filters_and_pages(models, reference)
    readmodels.rebuild(settings)
    models.close()
    models.__init__(settings, reference.app)  # type: ignore[misc]
    check()


def check_filters_and_pages(
    models: readmodels.ReadModels, reference: Reference
) -> None:
    """Filters and pages are answered in SQL, the same on both back ends."""
    view = models.views["caseload"]
    expected = reference.caseload()

    middle = view.rows(["clinic-a", "clinic-b"], equals={"phase": ["middle"]})
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = view.rows(None, after=after, limit=7)
        pages += page
        if len(page) < 7:
            break
        after = page[-1]["case_id"]

    assert middle == [
        r for r in expected if r["phase"] == "middle" and r["clinic_id"] != "clinic-c"
    ]
    assert pages == expected
