"""The events of a case: every fact about it, as stored and as auditors read it.

Each event's `apply` only assigns (it runs again on every replay). The events are the
aggregate's (`TherapyCase.CaseOpened` ...): they are named, and stored under topics,
as if nested in it (`ipt_workflow.domain.case:TherapyCase.<Name>`), which is where
the first release declared them; their names are the public event types of the
history and must never change (evolve them by upcasting). Which module declares an
event is not part of its topic: `course` (§1-§6), `clinical` (§7-§8), `records`
(legal hold and erasure).
"""

from ipt_workflow.domain.events.base import TOPIC_PREFIX, CaseEvent
from ipt_workflow.domain.events.clinical import (
    FollowUpOfferRevised,
    OutcomeRevised,
    RelapseSuspected,
    RiskFlagged,
    RiskReviewed,
)
from ipt_workflow.domain.events.course import (
    AcuteTreatmentConcluded,
    CaseClosed,
    CaseOpened,
    CaseReassigned,
    CaseWithdrawn,
    ContractAgreed,
    ContractRenegotiated,
    DisputeStageChanged,
    EndPhaseStarted,
    FocusAgreed,
    FollowUpAccepted,
    FollowUpDeclined,
    FollowUpOffered,
    InterpersonalInventoryRecorded,
    MeasureEnteredInError,
    MiddlePhaseStarted,
    PhaseEvent,
    ProtocolDeviationRecorded,
    SessionEnteredInError,
    SessionHeld,
    SessionMissed,
    SymptomsMeasured,
)
from ipt_workflow.domain.events.records import (
    CaseErased,
    LegalHoldLifted,
    LegalHoldPlaced,
)

__all__ = [
    "TOPIC_PREFIX",
    "AcuteTreatmentConcluded",
    "CaseClosed",
    "CaseErased",
    "CaseEvent",
    "CaseOpened",
    "CaseReassigned",
    "CaseWithdrawn",
    "ContractAgreed",
    "ContractRenegotiated",
    "DisputeStageChanged",
    "EndPhaseStarted",
    "FocusAgreed",
    "FollowUpAccepted",
    "FollowUpDeclined",
    "FollowUpOfferRevised",
    "FollowUpOffered",
    "InterpersonalInventoryRecorded",
    "LegalHoldLifted",
    "LegalHoldPlaced",
    "MeasureEnteredInError",
    "MiddlePhaseStarted",
    "OutcomeRevised",
    "PhaseEvent",
    "ProtocolDeviationRecorded",
    "RelapseSuspected",
    "RiskFlagged",
    "RiskReviewed",
    "SessionEnteredInError",
    "SessionHeld",
    "SessionMissed",
    "SymptomsMeasured",
]
