"""The console's part of the composition root: its secrets and cookie policy."""

from __future__ import annotations

from dataclasses import dataclass

from ipt_workflow.composition.settings import Settings
from ipt_workflow.ops.console_sessions import SessionSealer
from ipt_workflow.storage.audit import parse_checkpoint_keys

REFRESH_SECONDS = 5


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console's pages need beside the services."""

    sealer: SessionSealer
    secure_cookies: bool
    """`Secure` cookies (and the `__Host-` prefix) everywhere but `--dev`."""
    checkpoint_keys: tuple[bytes, ...]
    refresh_seconds: int = REFRESH_SECONDS
    """How often the ops panels refresh themselves."""


def build_console(settings: Settings) -> ConsoleConfig:
    """Session keys derived from the reference key, which production requires (D80)."""
    checkpoint = settings.checkpoint_key
    return ConsoleConfig(
        sealer=SessionSealer.from_secret(
            settings.reference_key.get_secret_value().encode()
        ),
        secure_cookies=not settings.dev,
        checkpoint_keys=tuple(
            []
            if checkpoint is None
            else parse_checkpoint_keys(checkpoint.get_secret_value())
        ),
    )
