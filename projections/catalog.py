"""Every read model with its projection and its view on each back end."""

from __future__ import annotations

from dataclasses import dataclass

from projections.alerts import AlertsProjection, PostgresAlertsView, SQLiteAlertsView
from projections.base import ReadModelProjection
from projections.case_list import (
    CaseListProjection,
    PostgresCaseListView,
    SQLiteCaseListView,
)
from projections.caseload import (
    CaseloadProjection,
    PostgresCaseloadView,
    SQLiteCaseloadView,
)
from projections.fidelity import (
    FidelityProjection,
    PostgresFidelityView,
    SQLiteFidelityView,
)
from projections.outcomes import (
    OutcomesProjection,
    PostgresOutcomesView,
    SQLiteOutcomesView,
)
from projections.phase_board import (
    PhaseBoardProjection,
    PostgresPhaseBoardView,
    SQLitePhaseBoardView,
)
from projections.store import PostgresReadModelView, SQLiteReadModelView


@dataclass(frozen=True)
class Entry:
    projection: type[ReadModelProjection]
    sqlite_view: type[SQLiteReadModelView]
    postgres_view: type[PostgresReadModelView]

    @property
    def name(self) -> str:
        return self.projection.name


CATALOG: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(CaseloadProjection, SQLiteCaseloadView, PostgresCaseloadView),
        Entry(PhaseBoardProjection, SQLitePhaseBoardView, PostgresPhaseBoardView),
        Entry(OutcomesProjection, SQLiteOutcomesView, PostgresOutcomesView),
        Entry(AlertsProjection, SQLiteAlertsView, PostgresAlertsView),
        Entry(FidelityProjection, SQLiteFidelityView, PostgresFidelityView),
        Entry(CaseListProjection, SQLiteCaseListView, PostgresCaseListView),
    )
}
