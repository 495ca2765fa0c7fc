"""The phase diagram in docs/, generated from the phase machine."""

from __future__ import annotations

from ipt_workflow.domain.phases import GUARDS, PhaseMachine, sources
from ipt_workflow.domain.protocols import PROTOCOLS

DIAGRAM_PATH = "docs/phases.md"


def phases_markdown() -> str:
    """docs/phases.md: the Mermaid state diagram and the guard of each transition."""
    lines = [
        "# Phases of an IPT case",
        "",
        "Generated from `ipt_workflow.domain.phases.PhaseMachine` by `make diagram`;",
        "a test fails when this file is out of date. Do not edit it by hand.",
        "",
        "```mermaid",
        f"{PhaseMachine:mermaid}".rstrip(),
        "```",
        "",
        "## Transitions and their guards",
        "",
        "Each transition has one guard that returns every unmet rule at once.",
        "",
        "| transition | from | guard |",
        "|---|---|---|",
    ]
    for transition, guard in GUARDS.items():
        doc = " ".join((guard.__doc__ or "").split())
        origin = ", ".join(p.value for p in sources(transition))
        lines.append(f"| `{transition.value}` | {origin} | {doc} |")
    lines += [
        "",
        "## Protocols",
        "",
        "| protocol | age | contract (default) | beginning | end phase | kinds |",
        "|---|---|---|---|---|---|",
    ]
    for p in PROTOCOLS.values():
        kinds = ", ".join(sorted(k.value for k in p.session_kinds))
        lines.append(
            f"| `{p.id}` | {p.age} | {p.contract_sessions} "
            f"({p.default_contract_sessions}) | {p.beginning_sessions} "
            f"| {p.end_sessions} | {kinds} |"
        )
    return "\n".join(lines) + "\n"
