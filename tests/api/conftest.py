"""An API over a real database (both back ends), with a key for every role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ipt_workflow.api.app import create_app
from ipt_workflow.bootstrap import build_key_store
from ipt_workflow.settings import Settings
from ipt_workflow.storage.keys import make_key

TODAY_ISH = "2026-11-01"


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

    def open_case(self, client_ref: str = "A-1042", **fields: Any) -> str:
        body = {
            "client_ref": client_ref,
            "protocol": "ipt",
            "client_age": 34,
            "clinician_id": "t-7",
            **fields,
        }
        answer = self.post("/cases", body)
        assert answer.status_code == 201, answer.text
        case_id: str = answer.json()["id"]
        return case_id


ROLES = {
    "clinician": ("clinician", ["clinic-a"]),
    "other_clinician": ("clinician", ["clinic-b"]),
    "auditor": ("auditor", ["clinic-a"]),
    "other_auditor": ("auditor", ["clinic-b"]),
    "ops": ("ops", ["*"]),
}


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


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """The API on each back end."""
    yield from make_api(Settings(database_url=database_url, rate_limit_per_second=0))


@pytest.fixture
def sqlite_api(tmp_path: Any) -> Iterator[Api]:
    """The API on SQLite only, for tests whose subject is not storage."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    yield from make_api(Settings(database_url=url, rate_limit_per_second=0))


def inventory() -> dict[str, Any]:
    return {"relationships": [{"role": "partner", "closeness": 1, "conflict": True}]}


def session(held_on: str = TODAY_ISH, **extra: Any) -> dict[str, Any]:
    return {
        "held_on": held_on,
        "minutes": 50,
        "modality": "in_person",
        "attendees": ["client"],
        **extra,
    }


def drive_to_middle(api: Api, case_id: str) -> None:
    """Inventory, focus, contract, baseline, one session, then start the middle."""
    steps: list[tuple[str, Any]] = [
        ("inventory", inventory()),
        ("focus", {"primary_area": "role_transition", "client_agreed": True}),
        ("contract", {"sessions": 16, "frequency": "weekly"}),
        ("measures", {"instrument": "phq9", "score": 18, "measured_on": "2026-10-01"}),
        ("sessions", session("2026-10-02")),
        ("transitions/start_middle", None),
    ]
    for path, body in steps:
        answer = api.post(f"/cases/{case_id}/{path}", body)
        assert answer.status_code in (200, 201), answer.text
