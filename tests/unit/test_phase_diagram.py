"""The phase diagram in docs/ is generated from the machine and kept current."""

from __future__ import annotations

from pathlib import Path

from ipt_workflow.cli.diagram import DIAGRAM_PATH, phases_markdown
from ipt_workflow.domain.codes import Transition
from ipt_workflow.domain.phases import PhaseMachine

ROOT = Path(__file__).resolve().parents[2]


def test_committed_diagram_matches_the_phase_machine() -> None:
    committed = (ROOT / DIAGRAM_PATH).read_text()

    assert committed == phases_markdown(), (
        "run `make diagram` and commit docs/phases.md"
    )


def test_diagram_names_every_transition_of_the_machine() -> None:
    text = phases_markdown()

    for transition in Transition:
        assert f"`{transition.value}`" in text
    assert {e.id for e in PhaseMachine().events} == {t.value for t in Transition}
