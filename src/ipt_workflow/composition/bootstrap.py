"""The composition root: settings in, every service built and wired.

The entry points (the API's app factory and the command line) call these; no other
code turns `Settings` into objects. Each builder takes what it needs as parameters,
and `bootstrap` takes any part already built, so a test can pass its own
(cosmicpython's bootstrap).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ipt_workflow.application.auditing import Checkpointer
from ipt_workflow.application.cases import CaseApplication, CommandObserver
from ipt_workflow.application.dispatcher import Dispatcher
from ipt_workflow.application.erasure import Retention
from ipt_workflow.application.webhooks import Resolver, Webhooks
from ipt_workflow.composition.builders import (
    build_access_log,
    build_application,
    build_checkpointer,
    build_key_store,
)
from ipt_workflow.composition.readmodels import ReadModels, supervised_projections
from ipt_workflow.composition.settings import DEV_REFERENCE_KEY, Settings
from ipt_workflow.composition.webhooks import (
    build_dispatcher,
    build_webhook_store,
    build_webhooks,
)
from ipt_workflow.ops.logging import CommandLog
from ipt_workflow.ops.ratelimit import RateLimiter
from ipt_workflow.ops.supervisor import ProjectionSupervisor
from ipt_workflow.storage.access_log import AccessLog
from ipt_workflow.storage.keys import DEV_KEYS, ApiKey, KeyStore

KEY_CACHE_SECONDS = 5.0


@dataclass
class Services:
    """What the composition root built, shared by every request of the API."""

    settings: Settings
    cases: CaseApplication
    keys: KeyStore
    limiter: RateLimiter
    read_models: ReadModels | None = None
    access: AccessLog | None = None
    """Where reads of cases are recorded (None: nowhere, so case reads fail)."""
    webhooks: Webhooks | None = None
    """Webhook subscriptions (None: the subscription routes answer 503)."""
    retention: Retention | None = None
    """Legal holds and erasure (None: built from the settings on first use)."""
    _cache: dict[str, tuple[float, ApiKey | None]] = field(default_factory=dict)

    def find_key(self, token: str) -> ApiKey | None:
        if self.settings.dev and token in DEV_KEYS:
            return DEV_KEYS[token]
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        key = self.keys.find(token)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (now, key)
        return key

    def close(self) -> None:
        self.cases.close()
        self.keys.close()
        if self.read_models is not None:
            self.read_models.close()
        if self.access is not None:
            self.access.close()
        if self.webhooks is not None:
            self.webhooks.store.close()


def bootstrap(
    settings: Settings,
    *,
    cases: CaseApplication | None = None,
    keys: KeyStore | None = None,
    limiter: RateLimiter | None = None,
    read_models: ReadModels | None = None,
    access: AccessLog | None = None,
    observer: CommandObserver | None = None,
    webhooks: Webhooks | None = None,
    resolver: Resolver | None = None,
) -> Services:
    """Every service the API needs, built from the settings unless given.

    `resolver` stands in for DNS in the webhook URL checks (tests).
    """
    cases = cases or build_application(settings)
    cases.observer = observer or CommandLog()
    return Services(
        settings=settings,
        cases=cases,
        keys=keys or build_key_store(settings),
        limiter=limiter
        or RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        read_models=read_models or ReadModels(settings, cases),
        access=access or build_access_log(settings),
        webhooks=webhooks or build_webhooks(settings, cases, resolver=resolver),
        retention=Retention(cases, settings.retention_policy),
    )


@dataclass
class Background:
    """The threads a server process runs beside its requests."""

    checkpointer: Checkpointer | None
    projections: ProjectionSupervisor | None
    webhooks: Dispatcher | None = None

    def stop(self) -> None:
        """Stop after the current checkpoint and, for each read model, event;
        webhook attempts in flight finish (at most their timeout)."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        if self.projections is not None:
            self.projections.stop()
        if self.webhooks is not None:
            self.webhooks.stop()


def start_background(settings: Settings, services: Services) -> Background:
    """Signed checkpoints, and with one worker the read models' runners and the
    webhook dispatcher."""
    projections = None
    if settings.run_projections:
        projections = supervised_projections(settings).start()
    checkpointer = build_checkpointer(settings, services.cases)
    if checkpointer is not None:
        checkpointer.start()
    dispatcher = None
    if settings.run_webhooks:
        # Its own store (and pool, sized for its lanes); the same DNS as the API.
        policy = services.webhooks.policy if services.webhooks is not None else None
        resolver = policy.resolver if policy is not None else None
        dispatcher = build_dispatcher(
            settings, services.cases, resolver=resolver
        ).start()
    return Background(checkpointer, projections, dispatcher)


def prepare_storage(settings: Settings) -> None:
    """Every table, once, before any worker starts.

    Workers starting together on a fresh PostgreSQL database would race on
    `CREATE TABLE IF NOT EXISTS` (a unique violation in pg_type), and uvicorn stops
    every worker when one fails to start.
    """
    cases = build_application(settings)
    try:
        ReadModels(settings, cases).close()
    finally:
        cases.close()
    build_key_store(settings).close()
    build_access_log(settings).close()
    build_webhook_store(settings).close()


def production_problems(settings: Settings) -> list[str]:
    """Why the service may not serve real clients with these settings."""
    if settings.dev:
        return []
    problems = []
    if settings.cipher_key is None:
        problems.append(
            "IPT_CIPHER_KEY is not set: client data would be stored in clear"
        )
    if settings.reference_key.get_secret_value() == DEV_REFERENCE_KEY:
        problems.append("IPT_REFERENCE_KEY is not set: the client index key is public")
    if settings.checkpoint_key is None:
        problems.append(
            "IPT_CHECKPOINT_KEY is not set: no signed checkpoints would be taken"
        )
    store = build_key_store(settings)
    try:
        if not store.any_active():
            problems.append(
                "no API key exists: create one with `ipt-workflow keys add`"
            )
    finally:
        store.close()
    return problems
