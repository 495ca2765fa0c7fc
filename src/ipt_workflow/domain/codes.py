"""The coded vocabularies of domain.md and api.md: every value a client may send."""

from __future__ import annotations

from enum import StrEnum


class RelationshipRole(StrEnum):
    partner = "partner"
    spouse = "spouse"
    mother = "mother"
    father = "father"
    parent = "parent"
    child = "child"
    sibling = "sibling"
    grandparent = "grandparent"
    other_family = "other_family"
    friend = "friend"
    colleague = "colleague"
    manager = "manager"
    teacher = "teacher"
    peer = "peer"
    other = "other"


class AttachmentStyle(StrEnum):
    secure = "secure"
    anxious = "anxious"
    avoidant = "avoidant"
    disorganised = "disorganised"


class CommunicationStyle(StrEnum):
    assertive = "assertive"
    passive = "passive"
    aggressive = "aggressive"
    passive_aggressive = "passive_aggressive"


class DisputeStage(StrEnum):
    renegotiation = "renegotiation"
    impasse = "impasse"
    dissolution = "dissolution"


class Frequency(StrEnum):
    weekly = "weekly"
    twice_weekly = "twice_weekly"


class FollowUpFrequency(StrEnum):
    weekly = "weekly"
    fortnightly = "fortnightly"
    monthly = "monthly"


class Modality(StrEnum):
    in_person = "in_person"
    video = "video"
    telephone = "telephone"


class Attendee(StrEnum):
    client = "client"
    parent = "parent"
    partner = "partner"
    group = "group"


class Strategy(StrEnum):
    communication_analysis = "communication_analysis"
    decision_analysis = "decision_analysis"
    role_play = "role_play"


class CommunicationAspect(StrEnum):
    nonverbal = "nonverbal"
    tone = "tone"
    timing = "timing"
    emotional_charge = "emotional_charge"


class DeviationRule(StrEnum):
    beginning_session_limit = "beginning_session_limit"
    contract_range = "contract_range"


class CorrectedEntry(StrEnum):
    session = "session"
    follow_up_session = "follow_up_session"
    measure = "measure"


class WithdrawalReason(StrEnum):
    dropped_out = "dropped_out"
    moved = "moved"
    referred_elsewhere = "referred_elsewhere"
    declined_treatment = "declined_treatment"
    other = "other"


# Reason codes that domain.md asks for without listing them (docs/decisions.md).
class SecondaryAreaReason(StrEnum):
    linked_to_onset = "linked_to_onset"
    comorbid_problem = "comorbid_problem"
    client_preference = "client_preference"
    other = "other"


class RenegotiationReason(StrEnum):
    clinical_progress = "clinical_progress"
    slow_progress = "slow_progress"
    client_request = "client_request"
    scheduling = "scheduling"
    other = "other"


class DeviationReason(StrEnum):
    clinical_judgement = "clinical_judgement"
    crisis = "crisis"
    client_request = "client_request"
    scheduling = "scheduling"
    other = "other"


class CorrectionReason(StrEnum):
    wrong_case = "wrong_case"
    wrong_details = "wrong_details"
    duplicate_entry = "duplicate_entry"
    did_not_take_place = "did_not_take_place"
    other = "other"


class MissedReason(StrEnum):
    client_cancelled = "client_cancelled"
    client_did_not_attend = "client_did_not_attend"
    clinician_cancelled = "clinician_cancelled"
    other = "other"


class CloseReason(StrEnum):
    client_declined_further_sessions = "client_declined_further_sessions"
    no_longer_needed = "no_longer_needed"
    moved = "moved"
    referred_elsewhere = "referred_elsewhere"
    other = "other"


class Disposition(StrEnum):
    completed = "completed"
    follow_up_declined = "follow_up_declined"
    follow_up_completed = "follow_up_completed"
    follow_up_ended_early = "follow_up_ended_early"
    referred = "referred"
