"""An API whose one process also runs the webhook dispatcher, over each back end,
with receivers as real processes on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.bootstrap import Services, bootstrap
from ipt_workflow.composition.settings import Settings
from ipt_workflow.storage.keys import make_key
from tests.support.api import ROLES, Api
from tests.support.receiver import Receiver, receiver

FAST: dict[str, Any] = {
    "rate_limit_per_second": 0,
    "run_webhooks": True,
    "webhook_allow_hosts": "127.0.0.1",
    "webhook_retry_seconds": "0.2",
    "webhook_retry_for_seconds": 3600.0,
    "webhook_timeout_seconds": 1.0,
    "webhook_poll_seconds": 0.05,
}
"""Seconds instead of hours: retries 0.2 s apart, a 1 s timeout."""


PUBLIC_NAME = "hooks.example.org"


class FakeDns:
    """Names the tests resolve, to the addresses they say (no DNS is asked).

    A public address is only ever given where no dispatcher runs: no test sends
    anything beyond loopback.
    """

    def __init__(self, public: bool = False) -> None:
        self.names: dict[str, list[str]] = {
            "receiver.test": ["127.0.0.1"],
            "localhost": ["127.0.0.1", "::1"],
            "internal.example.org": ["10.1.2.3"],
            "mixed.example.org": ["93.184.215.14", "192.168.1.9"],
        }
        if public:
            self.names[PUBLIC_NAME] = ["93.184.215.14"]

    def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.names:
            raise OSError(f"unknown name {host}")
        return list(self.names[host])


@dataclass
class Hooked:
    """The API (tokens of every role), its services and the fake DNS."""

    api: Api
    services: Services
    dns: FakeDns

    def subscribe(self, url: str, *types: str, who: str = "admin", **extra: Any) -> Any:
        body = {"url": url, "event_types": list(types or ["*"]), **extra}
        answer = self.api.post("/subscriptions", body, who=who)
        assert answer.status_code == 201, answer.text
        return answer.json()


@contextmanager
def hooked_api(settings: Settings) -> Iterator[Hooked]:
    dns = FakeDns(public=not settings.run_webhooks)
    services = bootstrap(settings, resolver=dns)
    tokens = {}
    for name, (role, clinics) in ROLES.items():
        key, token = make_key(role, clinics, f"{name}-actor")  # type: ignore[arg-type]
        services.keys.add(key, token)
        tokens[name] = token
    try:
        app = create_app(settings, services=services)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Hooked(Api(client, tokens), services, dns)
    finally:
        services.close()


@pytest.fixture
def hooked(database_url: str) -> Iterator[Hooked]:
    """The API with its dispatcher, on each back end."""
    with hooked_api(Settings(database_url=database_url, **FAST)) as found:
        yield found


@pytest.fixture
def sqlite_hooked(tmp_path: Any) -> Iterator[Hooked]:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    with hooked_api(Settings(database_url=url, **FAST)) as found:
        yield found


@pytest.fixture
def subscriptions(database_url: str) -> Iterator[Hooked]:
    """The API without a dispatcher, on each back end (public names resolve)."""
    settings = Settings(database_url=database_url, **{**FAST, "run_webhooks": False})
    with hooked_api(settings) as found:
        yield found


@pytest.fixture
def sqlite_subscriptions(tmp_path: Any) -> Iterator[Hooked]:
    """The same on SQLite only, for tests whose subject is not storage."""
    url = f"sqlite:///{tmp_path / 'subs.db'}"
    settings = Settings(database_url=url, **{**FAST, "run_webhooks": False})
    with hooked_api(settings) as found:
        yield found


@pytest.fixture
def receiving() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll until `check` holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)
