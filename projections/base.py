"""The Projection every read model uses: all case events go to its view."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic

from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from projections.store import Batch, ReadModel, ReadModelView

CASE_TOPICS = tuple(
    get_topic(cls)
    for cls in vars(TherapyCase).values()
    if isinstance(cls, type)
    and issubclass(cls, events.CaseEvent)
    and cls is not events.CaseEvent
)


class ReadModelProjection(Projection[ReadModelView]):
    """Feeds a read model's view; its rows and tracking are one transaction."""

    model: ClassVar[ReadModel]
    topics = CASE_TOPICS

    @singledispatchmethod
    def process_event(self, _domain_event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, domain_event: events.CaseEvent, tracking: Tracking) -> None:
        self.view.apply(Batch([domain_event], tracking))
