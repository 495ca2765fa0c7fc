"""An API over a real database (both back ends), with a key for every role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ipt_workflow.composition.settings import Settings
from tests.support.api import Api, make_api

TODAY_ISH = "2026-11-01"


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """The API on each back end."""
    yield from make_api(Settings(database_url=database_url, rate_limit_per_second=0))


@pytest.fixture
def sqlite_api(tmp_path: Any) -> Iterator[Api]:
    """The API on SQLite only, for tests whose subject is not storage."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    yield from make_api(Settings(database_url=url, rate_limit_per_second=0))


# Bodies as a clinic system writes them, for the tests of a route's contract; cases
# are brought to a state by command values (tests/support/drivers.py).


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
