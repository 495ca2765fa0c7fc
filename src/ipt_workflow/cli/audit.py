"""`ipt-workflow audit ...`: checkpoints, integrity checks and offline exports.

Exit codes: 0 intact (or done), 1 something is broken, 2 a usage or configuration
error. Nothing printed here holds client data: ids, versions, positions, hashes.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO
from uuid import UUID

if TYPE_CHECKING:
    from ipt_workflow.application.auditing import CaseCheck
    from ipt_workflow.application.cases import CaseApplication
    from ipt_workflow.composition.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `audit` command and its subcommands."""
    audit = commands.add_parser("audit", help="tamper evidence: checkpoints, checks")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    checkpoint = sub.add_parser(
        "checkpoint", help="sign the log's head and the heads of the cases that moved"
    )
    checkpoint.add_argument(
        "--if-due",
        action="store_true",
        help="only when IPT_CHECKPOINT_EVERY_EVENTS or _MINUTES have passed",
    )
    verify = sub.add_parser(
        "verify", help="recompute chains, compare snapshots, check the checkpoints"
    )
    which = verify.add_mutually_exclusive_group()
    which.add_argument("--case", type=UUID, help="one case (or other aggregate) id")
    which.add_argument("--all", action="store_true", help="everything (the default)")
    which.add_argument("--file", help="an export written by `audit export`, offline")
    export = sub.add_parser("export", help="a case's stored history as JSON lines")
    export.add_argument("--case", type=UUID, required=True)
    export.add_argument("--output", help="a file to write (default: standard output)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one `audit` subcommand."""
    from ipt_workflow.storage.audit import parse_checkpoint_keys

    keys = (
        []
        if settings.checkpoint_key is None
        else parse_checkpoint_keys(settings.checkpoint_key.get_secret_value())
    )
    if args.audit_command == "verify" and args.file:
        return _verify_file(args.file, keys)
    from ipt_workflow.composition.builders import build_application

    app = build_application(settings)
    try:
        if args.audit_command == "checkpoint":
            return _checkpoint(app, keys, settings, if_due=args.if_due)
        if args.audit_command == "export":
            return _export(app, args.case, keys, args.output)
        if args.case is not None:
            return _verify_case(app, args.case, keys)
        return _verify_all(app, keys)
    finally:
        app.close()


def _checkpoint(
    app: CaseApplication, keys: list[bytes], settings: Settings, *, if_due: bool
) -> int:
    from ipt_workflow.application import auditing as audit

    if not keys:
        sys.stderr.write("IPT_CHECKPOINT_KEY is not set: cannot sign a checkpoint\n")
        return 2
    if if_due and not audit.checkpoint_due(
        app,
        every_events=settings.checkpoint_every_events,
        every_seconds=settings.checkpoint_every_minutes * 60 or float("inf"),
    ):
        sys.stdout.write("no checkpoint due\n")
        return 0
    taken = audit.take_checkpoint(app, keys[0])
    if taken is None:
        sys.stdout.write("nothing new since the last checkpoint\n")
        return 0
    sys.stdout.write(
        f"checkpoint #{taken.seq} at position {taken.log_head}: "
        f"{taken.range_events} events since position {taken.range_start}, "
        f"mac {taken.mac}\n"
    )
    return 0


def _report(check: CaseCheck, out: TextIO) -> None:
    state = "intact" if check.intact else "BROKEN"
    where = (
        ""
        if check.first_broken_version is None
        else f", first broken version {check.first_broken_version}"
    )
    erased = " (erased)" if check.erased else ""
    out.write(
        f"{check.aggregate_id} {state}{erased}: {check.events_checked} events{where}\n"
    )
    for problem in check.problems:
        out.write(f"  {problem}\n")


def _verify_case(app: CaseApplication, case_id: UUID, keys: list[bytes]) -> int:
    from ipt_workflow.application import auditing as audit

    check = audit.verify_case(app, case_id, keys)
    if check.events_checked == 0 and check.intact:
        sys.stderr.write(f"no events of {case_id} are stored\n")
        return 1
    _report(check, sys.stdout)
    return 0 if check.intact else 1


def _verify_all(app: CaseApplication, keys: list[bytes]) -> int:
    from ipt_workflow.application import auditing as audit
    from ipt_workflow.ops.progress import Stages

    with Stages("verify", unit="checked") as stages:
        result = audit.verify_log(app, keys, on_progress=stages)
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    for problem in result.problems:
        sys.stdout.write(f"log BROKEN: {problem}\n")
    broken = [c for c in result.cases if not c.intact]
    for check in broken:
        _report(check, sys.stdout)
    for check in result.cases:
        if check.erased and check.intact:
            _report(check, sys.stdout)
    events = sum(c.events_checked for c in result.cases)
    erased = sum(1 for c in result.cases if c.erased)
    verdict = "intact" if result.intact else "BROKEN"
    sys.stdout.write(
        f"{verdict}: {len(result.cases)} aggregates, {events} events, "
        f"{result.checkpoints} checkpoints; {len(broken)} aggregates broken, "
        f"{erased} erased\n"
    )
    return 0 if result.intact else 1


def _export(
    app: CaseApplication, case_id: UUID, keys: list[bytes], output: str | None
) -> int:
    from ipt_workflow.application import auditing as audit
    from ipt_workflow.application.cases import CaseNotFoundError

    try:
        lines = audit.export_case(app, case_id, keys)
    except CaseNotFoundError:
        sys.stderr.write(f"no events of {case_id} are stored\n")
        return 1
    if output is None:
        sys.stdout.writelines(lines)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.writelines(lines)
        sys.stderr.write(f"{len(lines)} lines written to {output}\n")
    return 0


def _verify_file(path: str, keys: list[bytes]) -> int:
    from ipt_workflow.application import auditing as audit

    try:
        with open(path, encoding="utf-8") as f:
            check = audit.verify_export(f, keys)
    except (OSError, audit.ExportFormatError) as error:
        sys.stderr.write(f"cannot check {path}: {error}\n")
        return 2
    if not keys:
        sys.stderr.write(
            "note: IPT_CHECKPOINT_KEY is not set: only the chain is checked\n"
        )
    _report(check, sys.stdout)
    return 0 if check.intact else 1
