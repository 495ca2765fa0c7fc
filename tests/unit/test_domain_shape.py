"""The domain's shape: one home per rule code, one table of phases, a method per
command. These hold the structure the rules rely on, so they fail when it drifts."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from ipt_workflow import domain
from ipt_workflow.domain import commands as c
from ipt_workflow.domain import erasure
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Transition
from ipt_workflow.domain.phases import ALLOWED_IN, GUARDS, TRANSITIONS

DOMAIN = Path(domain.__file__).parent


def rule_codes_by_module() -> dict[str, set[str]]:
    """Each literal rule code given to `Violation(...)`, and the modules giving it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in DOMAIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Violation"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found[str(node.args[0].value)].add(str(path.relative_to(DOMAIN)))
    return found


def test_each_rule_code_is_raised_in_exactly_one_module() -> None:
    homes = rule_codes_by_module()

    shared = {
        code: sorted(modules) for code, modules in homes.items() if len(modules) > 1
    }

    assert len(homes) > 40
    assert shared == {}


def test_rule_codes_live_in_the_rules_and_the_phase_table_not_in_the_aggregate() -> (
    None
):
    homes = {m for modules in rule_codes_by_module().values() for m in modules}

    assert all(m.startswith("rules/") or m == "phases.py" for m in homes), homes


def test_not_in_this_phase_has_one_wording() -> None:
    assert rule_codes_by_module()["wrong_phase"] == {"phases.py"}


RECORD_KEEPING = {erasure.PlaceLegalHold, erasure.LiftLegalHold, erasure.EraseCase}
"""Commands on the record, not the course: rules/erasure.py says when they may run."""


def test_every_command_on_a_case_runs_through_an_aggregate_method_of_its_name() -> None:
    for kind in set(c.Command.__subclasses__()) - {c.OpenCase}:
        assert callable(getattr(TherapyCase, kind.name, None)), kind.name


def test_every_command_is_a_transition_or_has_the_phases_it_may_run_in() -> None:
    kinds = set(c.Command.__subclasses__()) - {
        c.OpenCase,
        c.SetContract,
        c.DecideFollowUp,
        *RECORD_KEEPING,
    }

    placed = set(ALLOWED_IN) | set(TRANSITIONS) | {c.RecordSession}

    assert kinds == placed
    assert set(TRANSITIONS.values()) == set(Transition) == set(GUARDS)


def test_every_domain_file_is_small_enough_to_hold_in_your_head() -> None:
    """The aggregate at most ~700 lines, every other module at most ~400 (issue 10)."""
    sizes = {
        str(p.relative_to(DOMAIN)): len(p.read_text().splitlines())
        for p in DOMAIN.rglob("*.py")
    }
    limits = {name: 700 if name == "case.py" else 400 for name in sizes}

    assert {n: s for n, s in sizes.items() if s > limits[n]} == {}
    assert len(sizes) > 20
