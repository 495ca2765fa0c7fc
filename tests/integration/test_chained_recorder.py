"""The chain PostgreSQL stores: computed where it is stored, and intact under races.

Each hash is computed by the statement that stores it, from the previous hash it
reads under the table lock (D115), and must be the hash `chain.link` computes.
Two application instances racing on few cases abort some of those pipelines; each
must end as the library's IntegrityError (retried), never as a "prepared statement
does not exist" or "pipeline aborted" error (D96), and every chain must stay intact.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import date
from uuid import UUID

from ipt_workflow.application.cases import CaseApplication, IdempotencyClaim
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import CommandContext, OpenCase, RecordMeasure
from ipt_workflow.domain.courses import Course
from ipt_workflow.storage.chain import link

CLINIC = "race-clinic"
CASES = 4
THREADS = 8
COMMANDS_EACH = 60


def open_case(app: CaseApplication, ref: str) -> UUID:
    ctx = CommandContext(recorded_by="t", today=date.today())
    opening = OpenCase.parse(
        clinic_id=CLINIC,
        client_ref=ref,
        protocol="ipt",
        client_age=35,
        clinician_id="t-1",
        today=ctx.today,
    )
    return app.open_case(opening, ctx).case.id


def record_measure(app: CaseApplication, case_id: UUID, score: int) -> None:
    key = uuid.uuid4().hex
    ctx = CommandContext(recorded_by="t", today=date.today(), command_id=key)
    digest = hashlib.sha256(f"{case_id}:{score}".encode()).hexdigest()
    command = RecordMeasure.parse(
        instrument="phq9", score=score, measured_on=date.today(), today=ctx.today
    )
    app.execute(
        case_id,
        command,
        ctx,
        clinics={CLINIC},
        idempotency=IdempotencyClaim(CLINIC, key, digest, 200),
    )


def test_the_hashes_postgresql_computes_are_the_ones_the_chain_defines(
    postgres_url: str,
) -> None:
    app = build_application(Settings(database_url=postgres_url))
    try:
        # Several events of one case in one insert, then single events after it.
        ctx = CommandContext(recorded_by="t", today=date.today())
        plan = Course(baseline=18, contract=12, age=40, today=ctx.today)
        case = TherapyCase.open(ctx, plan.opening(CLINIC, "chain-1", "t-1"))
        for command in plan.commands(Phase.middle):
            case.handle(CommandContext(recorded_by="t", today=ctx.today), command)
        assert len(case.pending_events) > 3
        app.save(case)
        for n in range(3):
            record_measure(app, case.id, 10 + n)
        stored = list(app.recorder.select_events(case.id))
        hashes = app.recorder.select_hashes(case.id)  # type: ignore[attr-defined]
    finally:
        app.close()

    expected = link(stored, lambda _id, _version: None)
    assert hashes == {x.originator_version: x.hash for x in expected}
    assert len(hashes) == len(stored) > 6


def test_racing_commands_are_all_recorded_with_intact_chains(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url)
    setup = build_application(settings)
    ids = [open_case(setup, f"race-{n}") for n in range(CASES)]
    # Two instances stand for two server processes: their races reach the database.
    apps = [build_application(settings) for _ in range(2)]
    errors: list[str] = []

    def run(i: int) -> None:
        for n in range(COMMANDS_EACH):
            try:
                record_measure(apps[i % 2], ids[(n + i) % CASES], n % 27)
            except Exception as error:  # collected, asserted below
                errors.append(repr(error))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        versions = [setup.get_case(case_id).version for case_id in ids]
        chains = [setup.verify_chain(case_id) for case_id in ids]
    finally:
        for app in [setup, *apps]:
            app.close()

    assert errors == []
    assert sum(versions) == CASES + THREADS * COMMANDS_EACH
    assert all(chain.intact for chain in chains), chains
