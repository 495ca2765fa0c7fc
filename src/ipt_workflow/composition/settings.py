"""Configuration: one typed Settings, rendered into eventsourcing's environment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ipt_workflow.composition.retention_settings import RetentionSettings
from ipt_workflow.composition.webhook_settings import WebhookSettings
from ipt_workflow.storage.audit import parse_checkpoint_keys
from ipt_workflow.storage.cipher import parse_keys
from ipt_workflow.storage.connections import private_file

DEV_REFERENCE_KEY = "ipt-workflow-development-reference-key"
MIN_REFERENCE_KEY = 32
_LEVELS = ("debug", "info", "warning", "error")


class Settings(RetentionSettings, WebhookSettings, BaseSettings):
    """Every setting, read from `IPT_*` environment variables (the webhooks' own
    in composition/webhook_settings.py, retention's in retention_settings.py)."""

    model_config = SettingsConfigDict(env_prefix="IPT_", frozen=True, extra="ignore")

    database_url: str = "sqlite:///./var/ipt-workflow.db"
    """`sqlite:///path/to/file.db` or `postgresql://user:password@host:port/dbname`."""

    cipher_key: SecretStr | None = None
    """Base64 AES keys, comma-separated, newest first; unset: payloads in the clear."""

    reference_key: SecretStr = SecretStr(DEV_REFERENCE_KEY)
    """Secret for the keyed hash that turns a client_ref into an index id."""

    dev: bool = False
    """Development mode: three fixed tokens for demo-clinic, no cipher key needed."""

    run_projections: bool = False
    """Run the projection runners inside the API process (one worker only)."""

    rate_limit_per_second: float = 50.0
    """Sustained requests per second per token (0: no limit); shared by the workers
    of one server (D72)."""

    rate_limit_burst: float = 500.0
    """Requests a token may send at once before the sustained rate applies."""

    auth_failures_per_minute: float = Field(default=30.0, ge=0)
    """Failed authentications a client address may make per minute (0: no limit)."""

    auth_failures_burst: float = Field(default=20.0, ge=1)
    """Failed authentications a client address may make at once."""

    key_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    """How long a looked-up API key is remembered: a revoked key works for up to
    this long in each API process (0: every request looks its key up)."""

    create_tables: bool = True
    """Create missing tables when a process starts. `serve` creates them once and
    turns this off for its workers; off, a process needs no DDL rights (D90)."""
    rate_limit_state: str | None = None
    """The SQLite file the workers of one server share their buckets through; `serve`
    sets it for several workers (unset: each process counts alone)."""

    postgres_pool_size: int = 5
    postgres_max_overflow: int = 10
    postgres_lock_timeout: int = 5
    aggregate_cache_size: int = 1000
    command_attempts: int = 30
    """How often a command that lost a race for its case is decided again."""

    checkpoint_key: SecretStr | None = None
    """HMAC keys for signed checkpoints, comma-separated, newest first (32+ chars)."""

    checkpoint_every_events: int = Field(default=1000, ge=1)
    """The server takes a checkpoint once this many events were written..."""

    checkpoint_every_minutes: float = Field(default=10.0, ge=0)
    """...or this long after the last one, if anything was written (0: never)."""

    log_format: Literal["auto", "json", "console"] = "auto"
    """Log lines as JSON, as console text, or `auto`: console on a terminal."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The least severe log lines written (DEBUG adds probes, scrapes, retries)."""

    ready_max_lag_events: int = Field(default=1000, ge=0, le=10_000)
    """/readyz fails when a read model is more case events behind (0: no check)."""

    ready_max_lag_seconds: float = Field(default=60.0, ge=0)
    """/readyz fails when a read model's oldest unprocessed event is older (0: off)."""

    shutdown_grace_seconds: int = Field(default=30, ge=1)
    """On SIGTERM, how long `serve` lets in-flight requests finish."""

    worker_healthcheck_seconds: int = Field(default=30, ge=5)
    """How long a worker of `serve --workers N` may miss its parent's ping before
    the parent kills and replaces it."""
    export_dir: str = "./var/exports"
    """Where FHIR bulk exports keep their files for an hour; every worker (and, with
    several replicas, every replica) must see the same folder."""

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _case_insensitive(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if value.lower() in _LEVELS else value.lower()

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        backend_of(url)
        return url

    @field_validator("checkpoint_key")
    @classmethod
    def _valid_checkpoint_keys(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            parse_checkpoint_keys(key.get_secret_value())
        return key

    @field_validator("reference_key")
    @classmethod
    def _long_reference_key(cls, key: SecretStr) -> SecretStr:
        if len(key.get_secret_value()) < MIN_REFERENCE_KEY:
            raise ValueError(f"must be at least {MIN_REFERENCE_KEY} characters")
        return key

    @field_validator("cipher_key")
    @classmethod
    def _valid_keys(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            parse_keys(key.get_secret_value())
        return key

    def secret_values(self) -> list[str]:
        """Every secret these settings hold, for the logs to remove."""
        found = [self.reference_key.get_secret_value()]
        for key in (self.cipher_key, self.checkpoint_key):
            if key is not None:
                text = key.get_secret_value()
                found += [text, *(part.strip() for part in text.split(","))]
        password = urlsplit(self.database_url).password
        if password:
            found += [password, unquote(password)]
        return [value for value in found if value]

    @property
    def backend(self) -> Literal["sqlite", "postgres"]:
        return backend_of(self.database_url)

    def eventsourcing_env(self) -> dict[str, str]:
        """The library's environment for the case application."""
        env = {
            "AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
            "REFERENCE_KEY": self.reference_key.get_secret_value(),
            # POSTGRES_ENABLE_DB_FUNCTIONS stays off: in 9.5.6 it lets commits land
            # out of order and projections skip events (reference notes §7).
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "CREATE_TABLE": "y" if self.create_tables else "n",
        }
        if self.cipher_key is not None:
            env["CIPHER_TOPIC"] = "ipt_workflow.storage.cipher:KeyRingCipher"
            env["CIPHER_KEY"] = self.cipher_key.get_secret_value()
            # Each new case's data key, wrapped by the ring, beside the events.
            env["CASE_KEYS_URL"] = self.database_url
        if self.backend == "sqlite":
            path = sqlite_path(self.database_url)
            env |= {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "10",
                "APPLICATION_RECORDER_TOPIC": (
                    "ipt_workflow.storage.sqlite:ChainedSQLiteApplicationRecorder"
                ),
            }
        else:
            parts = urlsplit(self.database_url)
            env |= {
                "PERSISTENCE_MODULE": (
                    "ipt_workflow.storage.postgres:ChainedPostgresFactory"
                ),
                "POSTGRES_DBNAME": parts.path.lstrip("/"),
                "POSTGRES_HOST": parts.hostname or "localhost",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username or ""),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_POOL_SIZE": str(self.postgres_pool_size),
                "POSTGRES_MAX_OVERFLOW": str(self.postgres_max_overflow),
                "POSTGRES_LOCK_TIMEOUT": str(self.postgres_lock_timeout),
                "POSTGRES_PRE_PING": "y",
                # Seconds to wait for a pooled connection before a request fails.
                "POSTGRES_CONNECT_TIMEOUT": "2",
                "APPLICATION_RECORDER_TOPIC": (
                    "ipt_workflow.storage.postgres:ChainedPostgresApplicationRecorder"
                ),
            }
        return env


def settings_or_exit() -> Settings:
    """The settings from the environment, or exit 2 naming what is wrong."""
    try:
        return Settings()
    except ValidationError as invalid:
        for error in invalid.errors():
            name = "IPT_" + "_".join(str(p) for p in error["loc"]).upper()
            sys.stderr.write(f"configuration error: {name}: {error['msg']}\n")
        raise SystemExit(2) from None


def backend_of(url: str) -> Literal["sqlite", "postgres"]:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        if not sqlite_path(url):
            raise ValueError("a SQLite URL names a file: sqlite:///path/to/file.db")
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        if not urlsplit(url).path.strip("/"):
            raise ValueError("a PostgreSQL URL names a database: postgresql://…/dbname")
        return "postgres"
    raise ValueError(
        f"IPT_DATABASE_URL must start sqlite:/// or postgresql://, not {scheme!r}"
    )


def sqlite_path(url: str) -> str:
    """`sqlite:///./var/x.db` → `./var/x.db`; `sqlite:////abs/x.db` → `/abs/x.db`."""
    return url.removeprefix("sqlite://").removeprefix("/")


def ensure_sqlite_directory(settings: Settings) -> None:
    """SQLite creates the file, not its folder; the events' file is private."""
    if settings.backend == "sqlite":
        path = Path(sqlite_path(settings.database_url))
        path.parent.mkdir(parents=True, exist_ok=True)
        private_file(path)
