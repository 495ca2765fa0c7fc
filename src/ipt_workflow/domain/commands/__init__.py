"""The commands a case accepts, as values: each parsed once, at the domain's edge.

Every field declares its check (`given(...)`): a fixed range, a code list, a date
format (domain.md §4: bad input). `Command.parse` runs them all, in field order,
and raises one InvalidInput naming every bad field; what it returns holds only
good values, so the rules and the aggregate never look at raw input. A command's
`name` and `params` identify it for idempotency: their digest is stored with its
events and never changes for a command an earlier release accepted.

The commands live by the part of the course they belong to: `beginning`,
`sessions`, `transitions`; `base` is what they share.
"""

from ipt_workflow.domain.commands.base import (
    Command,
    CommandContext,
    CommandResult,
    command_digest,
)
from ipt_workflow.domain.commands.beginning import (
    AgreeContract,
    AgreeFocus,
    ChangeDisputeStage,
    OpenCase,
    RecordDeviation,
    RecordInventory,
    RenegotiateContract,
    SetContract,
)
from ipt_workflow.domain.commands.sessions import (
    MEETINGS,
    SESSIONS,
    CorrectEntry,
    Reassign,
    RecordMeasure,
    RecordMissedSession,
    RecordRiskReview,
    RecordSession,
)
from ipt_workflow.domain.commands.transitions import (
    AcceptFollowUp,
    Close,
    Conclude,
    DecideFollowUp,
    DeclineFollowUp,
    OfferFollowUp,
    StartEnd,
    StartMiddle,
    Withdraw,
)

__all__ = [
    "MEETINGS",
    "SESSIONS",
    "AcceptFollowUp",
    "AgreeContract",
    "AgreeFocus",
    "ChangeDisputeStage",
    "Close",
    "Command",
    "CommandContext",
    "CommandResult",
    "Conclude",
    "CorrectEntry",
    "DecideFollowUp",
    "DeclineFollowUp",
    "OfferFollowUp",
    "OpenCase",
    "Reassign",
    "RecordDeviation",
    "RecordInventory",
    "RecordMeasure",
    "RecordMissedSession",
    "RecordRiskReview",
    "RecordSession",
    "RenegotiateContract",
    "SetContract",
    "StartEnd",
    "StartMiddle",
    "Withdraw",
    "command_digest",
]
