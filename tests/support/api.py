"""The API in process over a real database, with a key for every role, and the
course the API and audit tests bring their cases to the middle phase with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.builders import build_key_store
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.courses import Course
from ipt_workflow.storage.keys import make_key
from tests.support.drivers import OverHttp, opening_body

MIDDLE = Course(baseline=18, contract=16, today=date(2026, 10, 1))
"""An adult's course with a 16-session contract and a phq9 baseline of 18 measured
on 2026-10-01, the day of every command."""


@dataclass(frozen=True)
class Api:
    """A test client and a token per role; `clinician` works for clinic-a."""

    client: TestClient
    tokens: dict[str, str]

    def headers(self, who: str = "clinician", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def post(
        self, path: str, body: Any = None, who: str = "clinician", **headers: str
    ) -> Any:
        return self.client.post(path, json=body, headers=self.headers(who, **headers))

    def get(self, path: str, who: str = "clinician", **params: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), params=params)

    def open_case(
        self,
        client_ref: str = "A-1042",
        protocol: str = "ipt",
        client_age: int = 34,
        prior_episodes: int = 0,
        clinician_id: str = "t-7",
    ) -> str:
        """A new case of clinic-a (201), for an adult under ipt by default."""
        # The tests' courses are dated from October 2026: their cases begin before.
        course = Course(
            protocol,
            age=client_age,
            prior_episodes=prior_episodes,
            intake_on=INTAKE_ON,
        )
        opening = course.opening("clinic-a", client_ref, clinician_id)
        answer = self.post("/cases", opening_body(opening))
        assert answer.status_code == 201, answer.text
        case_id: str = answer.json()["id"]
        return case_id


ROLES = {
    "clinician": ("clinician", ["clinic-a"]),
    "other_clinician": ("clinician", ["clinic-b"]),
    "auditor": ("auditor", ["clinic-a"]),
    "other_auditor": ("auditor", ["clinic-b"]),
    "ops": ("ops", ["*"]),
    "admin": ("admin", ["clinic-a"]),
    "other_admin": ("admin", ["clinic-b"]),
}


INTAKE_ON = date(2026, 8, 1)
"""When the cases these tests open began (intake_on): before every date they use."""


def make_api(settings: Settings) -> Iterator[Api]:
    # These tests send refused tokens from one client on purpose; the per-address
    # limit on failed authentication has tests of its own (tests/reliability).
    settings = settings.model_copy(update={"auth_failures_per_minute": 0})
    store = build_key_store(settings)
    tokens = {}
    for name, (role, clinics) in ROLES.items():
        key, token = make_key(role, clinics, f"{name}-actor")  # type: ignore[arg-type]
        store.add(key, token)
        tokens[name] = token
    store.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, tokens)


def drive_to_middle(api: Api, case_id: str) -> None:
    """Inventory, focus, contract, baseline, one session, then start the middle:
    the case is at version 7."""
    OverHttp(api.post).run(case_id, *MIDDLE.commands(Phase.middle))
