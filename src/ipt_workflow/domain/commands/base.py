"""What every command shares: its context, its result, its parsing and its digest
(the package's docstring says how)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import date
from typing import Any, ClassVar, Self
from uuid import uuid4

from ipt_workflow.domain.inputs import Input, Parsing
from ipt_workflow.domain.values import plain


@dataclass(frozen=True)
class CommandContext:
    """Who issues a command, on whose behalf, under which id, and what day it is."""

    recorded_by: str
    today: date
    command_id: str = field(default_factory=lambda: uuid4().hex)
    on_behalf_of: str | None = None


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the case version after it, and its session number."""

    version: int
    replayed: bool = False
    session_number: int | None = None


def command_digest(name: str, params: Mapping[str, Any]) -> str:
    """A fingerprint of a command, to tell a retry from another command."""
    text = json.dumps({"command": name, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Command:
    """A request to a case, named as a verb; its fields are already checked."""

    name: ClassVar[str]
    """The aggregate method that runs it, and its name in the idempotency digest."""
    label: ClassVar[str]
    """What logs and metrics call it (the first release's route names)."""
    added: ClassVar[tuple[str, ...]] = ()
    """Fields added after the first release: digested only when given (not at their
    default), so a command an earlier release digested keeps its digest."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        cls.label = cls.__dict__.get("label", cls.name)

    @classmethod
    def parse(cls, *, today: date | None = None, **raw: object) -> Self:
        """The command from raw values, or InvalidInput naming every bad one."""
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
        p = Parsing(Input(), raw, {}, today)
        for f in fields(cls):
            value = raw.get(f.name, None if f.default is MISSING else f.default)
            p.good[f.name] = f.metadata["check"](p, f.name, value)
        p.inp.check()
        return cls(**p.good)

    def params(self) -> dict[str, Any]:
        """The command's values as its digest has always seen them."""
        return {
            f.name: plain(getattr(self, f.name))
            for f in fields(self)
            if f.name not in self.added or getattr(self, f.name) != f.default
        }

    def digest(self) -> str:
        return command_digest(self.name, self.params())
