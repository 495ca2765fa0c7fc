"""What every event of a case records (who, for whom, which command) and the topic
it is stored under."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

TOPIC_PREFIX = "ipt_workflow.domain.case:TherapyCase."


class CaseEvent(Aggregate.Event):
    """Every fact about a case records who, for whom, and which command."""

    TOPIC: ClassVar[str]
    """Where the library stores it: as nested in the aggregate (see above)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TOPIC = TOPIC_PREFIX + cls.__name__

    recorded_by: str
    on_behalf_of: str | None
    command_id: str
    command_digest: str

    def mutate(self, aggregate: Any) -> Any:
        case = super().mutate(aggregate)
        assert case is not None
        case.applied_commands[self.command_id] = {
            "digest": self.command_digest,
            "version": self.originator_version,
            "session_number": self.session_number(),
        }
        return case

    def session_number(self) -> int | None:
        return None

    def pick(self, *names: str) -> dict[str, Any]:
        """These facts of the event, as a row of the case's state (lists copied)."""
        return {
            n: list(v) if isinstance(v := getattr(self, n), list) else v for n in names
        }
