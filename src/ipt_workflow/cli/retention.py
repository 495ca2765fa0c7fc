"""`ipt-workflow retention run`: find the cases whose retention ended, and erase them.

A dry run (the default) lists what is due and changes nothing; `--apply` erases
each due case with the basis `retention_expired`. Run it daily (docker-compose
shows one way); a case under a legal hold is never due.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipt_workflow.application.erasure import DueCase, Retention
    from ipt_workflow.composition.settings import Settings
    from ipt_workflow.ops.retention import RetentionRunReport

ACTOR = "retention-run"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = commands.add_parser("retention", help="retention and erasure")
    sub = retention.add_subparsers(dest="retention_command", required=True)
    run = sub.add_parser("run", help="list the cases due for erasure; --apply erases")
    run.add_argument(
        "--apply", action="store_true", help="erase what is due (default: a dry run)"
    )
    run.add_argument(
        "--clinic", action="append", help="only this clinic; repeat for several"
    )
    run.add_argument(
        "--metrics-file",
        metavar="FILE",
        help="write the run's counters here (node_exporter textfile format)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ipt_workflow.application.erasure import Retention
    from ipt_workflow.composition.builders import build_application
    from ipt_workflow.ops.logging import CommandLog
    from ipt_workflow.ops.progress import progress
    from ipt_workflow.ops.retention import RetentionRunReport

    today = datetime.now(UTC).date()
    app = build_application(settings)
    app.observer = CommandLog()
    report = RetentionRunReport(apply=args.apply)
    try:
        retention = Retention(app, settings.retention_policy)
        due = list(retention.due(today, clinics=args.clinic))
        with progress("retention run", len(due), unit="cases") as bar:
            report.bar = bar
            _each(args, retention, due, today, report)
    finally:
        app.close()
        if args.metrics_file:
            report.write_metrics(args.metrics_file)
    _summary(report.counts, apply=args.apply, today=today)
    return 0


def _each(
    args: argparse.Namespace,
    retention: Retention,
    due: list[DueCase],
    today: date,
    report: RetentionRunReport,
) -> None:
    """Erase (or, in a dry run, list) each due case, reporting what became of it."""
    from ipt_workflow.application.erasure import ErasureUnsupportedError
    from ipt_workflow.domain.commands import CommandContext
    from ipt_workflow.domain.erasure import EraseCase
    from ipt_workflow.domain.errors import DomainError

    command = EraseCase.parse(
        basis="retention_expired", reason=f"retention-run:{today.isoformat()}"
    )
    for case in due:
        until = case.retention_until.isoformat()
        if not case.erasure_supported:
            report.case(case.case_id, case.clinic_id, until, "unsupported")
            continue
        if not args.apply:
            report.case(case.case_id, case.clinic_id, until, "due")
            continue
        try:
            retention.erase(
                case.case_id,
                command,
                CommandContext(recorded_by=ACTOR, today=today),
                clinics=None,
            )
        except ErasureUnsupportedError:
            report.case(case.case_id, case.clinic_id, until, "unsupported")
        except DomainError as refused:
            # A hold placed since the list was made, for instance.
            report.case(
                case.case_id, case.clinic_id, until, "refused", why=str(refused)
            )
        else:
            report.case(case.case_id, case.clinic_id, until, "erased")


def _summary(counts: dict[str, int], *, apply: bool, today: date) -> None:
    if apply:
        sys.stdout.write(
            f"retention run {today.isoformat()}: erased {counts['erased']}, "
            f"erasure_unsupported {counts['unsupported']}, "
            f"refused {counts['refused']}\n"
        )
        return
    sys.stdout.write(
        f"dry run {today.isoformat()}: {counts['due']} cases due for erasure, "
        f"{counts['unsupported']} due but erasure_unsupported; nothing was erased "
        "(add --apply)\n"
    )
