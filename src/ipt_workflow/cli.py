"""The `ipt-workflow` command line: the composition root for everything but the API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipt_workflow.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `ipt-workflow` command."""
    parser = argparse.ArgumentParser(prog="ipt-workflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="drive a demo course of every protocol")
    commands.add_parser("diagram", help="print docs/phases.md from the phase machine")
    db = commands.add_parser("db", help="database administration")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("init", help="create the tables (also done on first start)")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from ipt_workflow.demo import run_demo

        run_demo(sys.stdout)
    elif args.command == "diagram":
        from ipt_workflow.diagram import phases_markdown

        sys.stdout.write(phases_markdown())
    elif args.command == "db":
        return _db_init()
    return 0


def _settings() -> Settings:
    """The settings from the environment, or exit 2 naming what is wrong."""
    from pydantic import ValidationError

    from ipt_workflow.settings import Settings

    try:
        return Settings()
    except ValidationError as invalid:
        for error in invalid.errors():
            name = "IPT_" + "_".join(str(p) for p in error["loc"]).upper()
            sys.stderr.write(f"configuration error: {name}: {error['msg']}\n")
        raise SystemExit(2) from None


def _db_init() -> int:
    from ipt_workflow.bootstrap import build_application

    settings = _settings()
    app = build_application(settings)
    app.close()
    sys.stdout.write(f"tables ready ({settings.backend})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
