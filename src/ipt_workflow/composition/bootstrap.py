"""The composition root: settings in, every service built and wired.

The entry points (the API's app factory and the command line) call these; no other
code turns `Settings` into objects. Each builder takes what it needs as parameters,
and `bootstrap` takes any part already built, so a test can pass its own
(cosmicpython's bootstrap).
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from typing import cast

from cachetools import TTLCache

from ipt_workflow.application.auditing import Checkpointer
from ipt_workflow.application.cases import CaseApplication, CommandObserver
from ipt_workflow.application.dispatcher import Dispatcher
from ipt_workflow.application.erasure import Retention
from ipt_workflow.application.webhooks import Resolver, Webhooks
from ipt_workflow.composition.builders import (
    build_access_log,
    build_application,
    build_checkpointer,
    build_exports,
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
from ipt_workflow.ops.ratelimit import FailureLimiter, RateLimiter
from ipt_workflow.ops.supervisor import ProjectionSupervisor
from ipt_workflow.storage.access_log import AccessLog
from ipt_workflow.storage.exports import ExportJobs
from ipt_workflow.storage.keys import (
    DEV_KEYS,
    TOKEN_FORMAT,
    ApiKey,
    KeyStore,
    token_hash,
)
from ipt_workflow.storage.webhook_status import WebhookStatusSource

KEY_CACHE_ENTRIES = 4096
GOOD_SECONDS = 600.0
"""A client address over its failure budget still gets lookups for tokens that
authenticated within this long: an attacker behind the same proxy or NAT cannot lock
the clinic systems out."""
_MISSING = object()


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
    auth_failures: FailureLimiter = field(default_factory=lambda: FailureLimiter(0, 0))
    """Failed authentications per client address (per_second 0: no limit)."""
    exports: ExportJobs | None = None
    """FHIR bulk export jobs (None: exports are not offered)."""
    webhooks: Webhooks | None = None
    """Webhook subscriptions (None: the subscription routes answer 503)."""
    webhook_status: WebhookStatusSource | None = None
    """The subscriptions' delivery state, once webhooks exist (None: not configured)."""
    retention: Retention | None = None
    """Legal holds and erasure (None: built from the settings on first use)."""
    _cache: TTLCache[str, ApiKey | None] | None = field(init=False, default=None)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)
    _recently_good: TTLCache[str, bool] = field(
        default_factory=lambda: TTLCache(maxsize=KEY_CACHE_ENTRIES, ttl=GOOD_SECONDS)
    )
    """Hashes of tokens that authenticated lately: not locked out with an address."""

    def __post_init__(self) -> None:
        seconds = self.settings.key_cache_seconds
        if seconds > 0:
            self._cache = TTLCache(maxsize=KEY_CACHE_ENTRIES, ttl=seconds)

    def cached_key(self, token: str) -> tuple[bool, ApiKey | None]:
        """(known, key) from memory alone: dev tokens and recent lookups."""
        if self.settings.dev and token in DEV_KEYS:
            return True, DEV_KEYS[token]
        if self._cache is None:
            return False, None
        with self._cache_lock:
            # One lookup: an entry can expire between a membership test and a read.
            found = self._cache.get(token_hash(token), _MISSING)
        if found is _MISSING:
            return False, None
        return True, cast(ApiKey | None, found)

    def find_key(self, token: str) -> ApiKey | None:
        """The key of a token; only tokens of the issued format are looked up.

        The cache is keyed by the token's hash, never the token, and holds at most
        KEY_CACHE_ENTRIES keys for `key_cache_seconds` (the revocation delay).
        """
        known, key = self.cached_key(token)
        if known:
            return key
        if not TOKEN_FORMAT.fullmatch(token):
            return None
        key = self.keys.find(token)
        digest = token_hash(token)
        with self._cache_lock:
            if self._cache is not None:
                self._cache[digest] = key
            if key is not None:
                self._recently_good[digest] = True
        return key

    def recently_good(self, token: str) -> bool:
        """Did this token authenticate in the last GOOD_SECONDS?"""
        digest = token_hash(token)
        with self._cache_lock:
            return digest in self._recently_good

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
    exports: ExportJobs | None = None,
) -> Services:
    """Every service the API needs, built from the settings unless given.

    `resolver` stands in for DNS in the webhook URL checks (tests).
    """
    cases = cases or build_application(settings)
    cases.observer = observer or CommandLog()
    webhooks = webhooks or build_webhooks(settings, cases, resolver=resolver)
    return Services(
        settings=settings,
        cases=cases,
        keys=keys or build_key_store(settings),
        limiter=limiter
        or RateLimiter(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            settings.rate_limit_state,
        ),
        read_models=read_models or ReadModels(settings, cases),
        access=access or build_access_log(settings),
        auth_failures=FailureLimiter(
            settings.auth_failures_per_minute / 60,
            settings.auth_failures_burst,
        ),
        webhooks=webhooks,
        webhook_status=webhooks,  # the console's panel reads it (D84)
        exports=exports or build_exports(settings),
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
    every worker when one fails to start. The tables are created whatever
    `create_tables` says: this is the step that creates them.
    """
    settings = settings.model_copy(update={"create_tables": True})
    cases = build_application(settings)
    try:
        ReadModels(settings, cases).close()
    finally:
        cases.close()
    build_key_store(settings).close()
    build_access_log(settings).close()
    build_webhook_store(settings).close()


DEV_FLAG = "IPT_SERVE_DEV_FLAG"
"""Set to 1 by `serve --dev` for its workers: IPT_DEV alone does not make dev mode."""
SERVE_PID = "IPT_SERVE_PID"
"""The `serve` process whose workers these are: they exit when it is gone."""


def is_loopback(host: str) -> bool:
    """Is this a loopback address (or `localhost`)?"""
    if host == "localhost":
        return True
    try:
        return bool(ipaddress.ip_address(host.strip("[]")).is_loopback)
    except ValueError:
        return False


def production_problems(
    settings: Settings, *, dev_flag: bool | None = None
) -> list[str]:
    """Why the service may not serve with these settings (empty: it may).

    Development mode needs the settings' `dev` and the `--dev` flag together
    (`dev_flag`; None: take the settings' word for it). Outside it, the keys must be
    set and long enough, and an API key must exist.
    """
    if settings.dev:
        if dev_flag is False:
            return [
                "IPT_DEV is set, but development mode needs `ipt-workflow serve --dev`"
            ]
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
