"""Fixtures shared by the storage, API and reliability tests: real back ends only."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipt_workflow.composition.settings import Settings
from tests.support.postgres import Cluster, cluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One throw-away PostgreSQL cluster for the whole run."""
    with cluster() as running:
        yield running


@pytest.fixture
def postgres_url(postgres: Cluster) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with postgres.admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres.url(name)
    with postgres.admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A real, empty database of each back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ipt.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests say what they configure; the developer's shell does not leak in."""
    for name in list(os.environ):
        if name.startswith("IPT_"):
            monkeypatch.delenv(name)
