"""The retention settings (IPT_RETENTION_*), kept apart from the rest.

`Settings` inherits them; this module owns their names, defaults and checks.
"""

from __future__ import annotations

import json

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from ipt_workflow.domain.erasure import RetentionPolicy

POLICY_FIELDS = {"years_after_end", "minor_below_age", "minor_until_age"}


class RetentionSettings(BaseSettings):
    """How long each clinic keeps a case's record after it ended."""

    retention_years_after_end: int = Field(default=7, ge=0, le=100)
    """Years a record is kept after the case ended."""

    retention_minor_below_age: int = Field(default=18, ge=0, le=30)
    """A client younger than this at intake is a minor..."""

    retention_minor_until_age: int = Field(default=25, ge=0, le=130)
    """...whose record is kept at least until this birthday."""

    retention_clinics: str = ""
    """Per-clinic overrides as JSON: `{"clinic-a": {"years_after_end": 10}}`."""

    @field_validator("retention_clinics")
    @classmethod
    def _valid_overrides(cls, text: str) -> str:
        _overrides(text)
        return text

    def retention_policy(self, clinic_id: str) -> RetentionPolicy:
        """The policy of one clinic: the defaults, with its overrides."""
        values = {
            "years_after_end": self.retention_years_after_end,
            "minor_below_age": self.retention_minor_below_age,
            "minor_until_age": self.retention_minor_until_age,
            **_overrides(self.retention_clinics).get(clinic_id, {}),
        }
        return RetentionPolicy(**values)


def _overrides(text: str) -> dict[str, dict[str, int]]:
    if not text.strip():
        return {}
    try:
        found = json.loads(text)
    except ValueError as e:
        raise ValueError(f"IPT_RETENTION_CLINICS is not JSON: {e}") from None
    if not isinstance(found, dict):
        raise ValueError("IPT_RETENTION_CLINICS maps clinic ids to policies")
    for clinic, policy in found.items():
        if not isinstance(policy, dict) or not set(policy) <= POLICY_FIELDS:
            raise ValueError(
                f"the retention policy of {clinic!r} may set only "
                f"{', '.join(sorted(POLICY_FIELDS))}"
            )
        for name, value in policy.items():
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not (0 <= value <= 130)
            ):
                raise ValueError(f"{clinic}.{name} must be a whole number 0–130")
    return found
