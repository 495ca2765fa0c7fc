"""The composition root's webhook parts: the store, the URL policy, the service the
API uses and the dispatcher (in the API process or `ipt-workflow webhooks run`)."""

from __future__ import annotations

from pathlib import Path

from eventsourcing.utils import Environment

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.application.dispatcher import Dispatcher, DispatchSettings
from ipt_workflow.application.webhooks import Resolver, UrlPolicy, Webhooks
from ipt_workflow.composition.settings import (
    Settings,
    ensure_sqlite_directory,
    sqlite_path,
)
from ipt_workflow.composition.webhook_settings import retry_schedule
from ipt_workflow.ops.webhooks import WebhookLog
from ipt_workflow.storage.cipher import KeyRingCipher
from ipt_workflow.storage.connections import private_file
from ipt_workflow.storage.webhooks import (
    DispatchLock,
    FileDispatchLock,
    PostgresDispatchLock,
    PostgresWebhookStore,
    SecretCipher,
    SQLiteWebhookStore,
    WebhookStore,
)


def _beside_events(settings: Settings, part: str) -> str:
    events = Path(sqlite_path(settings.database_url))
    return str(events.with_name(f"{events.stem}.{part}{events.suffix or '.db'}"))


def webhooks_path(settings: Settings) -> str:
    """SQLite: the subscriptions and delivery log in a file beside the events'."""
    return _beside_events(settings, "webhooks")


def _cipher(settings: Settings) -> SecretCipher | None:
    if settings.cipher_key is None:
        return None
    key = settings.cipher_key.get_secret_value()
    return KeyRingCipher(Environment(env={"CIPHER_KEY": key}))


def build_webhook_store(settings: Settings, *, connections: int = 4) -> WebhookStore:
    """Subscriptions and the delivery log; secrets under the cipher key if set."""
    ensure_sqlite_directory(settings)
    if settings.backend == "sqlite":
        private_file(webhooks_path(settings))  # URLs and secrets: the owner's only
        return SQLiteWebhookStore(webhooks_path(settings), _cipher(settings))
    return PostgresWebhookStore(
        settings.database_url,
        _cipher(settings),
        max_size=connections,
        create_tables=settings.create_tables,
    )


def build_policy(settings: Settings, resolver: Resolver | None = None) -> UrlPolicy:
    """The SSRF rules: https and public addresses, unless dev or the allow list."""
    if resolver is None:
        return UrlPolicy(dev=settings.dev, allow_hosts=settings.webhook_allow_hosts)
    return UrlPolicy(
        dev=settings.dev, allow_hosts=settings.webhook_allow_hosts, resolver=resolver
    )


def build_webhooks(
    settings: Settings,
    cases: CaseApplication,
    *,
    store: WebhookStore | None = None,
    resolver: Resolver | None = None,
) -> Webhooks:
    """The subscription service of the API."""
    return Webhooks(
        store or build_webhook_store(settings), cases, build_policy(settings, resolver)
    )


def dispatch_settings(settings: Settings) -> DispatchSettings:
    return DispatchSettings(
        retry_seconds=retry_schedule(settings.webhook_retry_seconds),
        retry_for_seconds=settings.webhook_retry_for_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
        workers=settings.webhook_workers,
        poll_seconds=settings.webhook_poll_seconds,
        keep_deliveries_days=settings.webhook_keep_deliveries_days,
    )


def build_lock(settings: Settings) -> DispatchLock:
    """One delivering dispatcher per database: a file lock, or an advisory lock."""
    if settings.backend == "sqlite":
        return FileDispatchLock(_beside_events(settings, "webhooks-lock"))
    return PostgresDispatchLock(settings.database_url)


def build_dispatcher(
    settings: Settings,
    cases: CaseApplication,
    *,
    store: WebhookStore | None = None,
    resolver: Resolver | None = None,
    heartbeat: Path | None = None,
) -> Dispatcher:
    """A dispatcher (not started) over the case log and the webhook store."""
    knobs = dispatch_settings(settings)
    return Dispatcher(
        cases,
        store or build_webhook_store(settings, connections=knobs.workers + 2),
        build_policy(settings, resolver),
        build_lock(settings),
        knobs,
        observer=WebhookLog(),
        heartbeat=heartbeat,
    )
