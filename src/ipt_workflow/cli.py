"""The `ipt-workflow` command line: the composition root for everything but the API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `ipt-workflow` command."""
    parser = argparse.ArgumentParser(prog="ipt-workflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="drive a demo course of every protocol")
    commands.add_parser("diagram", help="print docs/phases.md from the phase machine")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from ipt_workflow.demo import run_demo

        run_demo(sys.stdout)
    elif args.command == "diagram":
        from ipt_workflow.diagram import phases_markdown

        sys.stdout.write(phases_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
