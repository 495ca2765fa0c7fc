"""How the domain says no: violations of rules, and bad input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One unmet rule: a stable code and a sentence a clinician understands."""

    rule: str
    message: str


@dataclass(frozen=True)
class FieldError:
    """One bad input value: the field it came in and what is wrong with it."""

    field: str
    message: str


class DomainError(Exception):
    """Raised when the domain refuses a command; nothing is recorded."""


class GuardFailed(DomainError):
    """Raised when one or more rules of the protocol refuse a command."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        assert violations, "a refusal names at least one rule"
        self.violations = tuple(violations)
        super().__init__("; ".join(v.message for v in self.violations))


class InvalidInput(DomainError):
    """Raised when a value is outside a fixed range or format."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        assert errors, "bad input names at least one field"
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))


class CommandIdReused(DomainError):
    """Raised when a command id the case applied comes with another command."""

    def __init__(self, command_id: str) -> None:
        self.command_id = command_id
        super().__init__(
            "this command id was already used for a different command on this case"
        )
