"""The coded vocabularies of domain.md and api.md: every value a client may send."""

from __future__ import annotations

from enum import StrEnum

Phase = StrEnum("Phase", "beginning middle end concluded follow_up closed withdrawn")


FINAL_PHASES = frozenset({Phase.closed, Phase.withdrawn})
ACUTE_PHASES = (Phase.beginning, Phase.middle, Phase.end)
NON_FINAL_PHASES = frozenset(Phase) - FINAL_PHASES

Transition = StrEnum(
    "Transition",
    "start_middle start_end conclude accept_follow_up decline_follow_up close withdraw",
)

RelationshipRole = StrEnum(
    "RelationshipRole",
    "partner spouse mother father parent child sibling grandparent other_family "
    "friend colleague manager teacher peer other",
)

AttachmentStyle = StrEnum("AttachmentStyle", "secure anxious avoidant disorganised")

CommunicationStyle = StrEnum(
    "CommunicationStyle",
    "assertive passive aggressive passive_aggressive",
)

DisputeStage = StrEnum("DisputeStage", "renegotiation impasse dissolution")

Frequency = StrEnum("Frequency", "weekly twice_weekly")

FollowUpFrequency = StrEnum("FollowUpFrequency", "weekly fortnightly monthly")

Modality = StrEnum("Modality", "in_person video telephone")

Attendee = StrEnum("Attendee", "client parent partner group")

Strategy = StrEnum("Strategy", "communication_analysis decision_analysis role_play")

CommunicationAspect = StrEnum(
    "CommunicationAspect",
    "nonverbal tone timing emotional_charge",
)

DeviationRule = StrEnum("DeviationRule", "beginning_session_limit contract_range")

CorrectedEntry = StrEnum(
    "CorrectedEntry",
    "session follow_up_session measure engagement pre_group mid_group post_group",
)

WithdrawalReason = StrEnum(
    "WithdrawalReason",
    "dropped_out moved referred_elsewhere declined_treatment other",
)


# Reason codes that domain.md asks for without listing them (docs/decisions.md).
SecondaryAreaReason = StrEnum(
    "SecondaryAreaReason",
    "linked_to_onset comorbid_problem client_preference other",
)

RenegotiationReason = StrEnum(
    "RenegotiationReason",
    "clinical_progress slow_progress client_request scheduling other",
)

DeviationReason = StrEnum(
    "DeviationReason",
    "clinical_judgement crisis client_request scheduling other",
)

CorrectionReason = StrEnum(
    "CorrectionReason",
    "wrong_case wrong_details duplicate_entry did_not_take_place other",
)

MissedReason = StrEnum(
    "MissedReason",
    "client_cancelled client_did_not_attend clinician_cancelled other",
)

CloseReason = StrEnum(
    "CloseReason",
    "completed client_declined_further_sessions no_longer_needed moved "
    "referred_elsewhere other",
)

Disposition = StrEnum(
    "Disposition",
    "completed follow_up_declined follow_up_completed follow_up_ended_early referred",
)

TerminationTask = StrEnum(
    "TerminationTask",
    "progress_reviewed warning_signs_identified contingency_plan_made "
    "feelings_about_ending_discussed maintenance_discussed",
)

RiskReviewOutcome = StrEnum(
    "RiskReviewOutcome", "no_current_risk safety_plan_made referred_urgent other"
)
