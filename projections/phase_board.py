"""phase_board: how many cases stand in each phase, per clinic and protocol (ops)."""

from __future__ import annotations

from projections.base import ReadModelProjection
from projections.facts import Facts
from projections.store import (
    Counts,
    PostgresReadModelView,
    ReadModel,
    SQLiteReadModelView,
)


class PhaseBoard(ReadModel):
    name = "phase_board"
    per_case = False

    def counts(self, facts: Facts) -> Counts:
        return {(facts["clinic_id"], facts["protocol"], facts["phase"]): {"cases": 1}}


class PhaseBoardProjection(ReadModelProjection):
    name = "phase_board"
    model = PhaseBoard()


class SQLitePhaseBoardView(SQLiteReadModelView):
    model = PhaseBoard()


class PostgresPhaseBoardView(PostgresReadModelView):
    model = PhaseBoard()
