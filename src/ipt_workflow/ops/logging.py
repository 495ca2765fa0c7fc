"""Structured logs: structlog configured once, request ids, access and command lines.

Every line goes through the standard library's logging (so uvicorn's and the
libraries' lines are formatted the same way) to stderr: JSON lines when stderr is not
a terminal or `IPT_LOG_FORMAT=json`, readable console lines on a terminal. Client
data stays out: the lines are written from ids, codes and numbers only, and
`scrub_client_data` removes client fields from every line just before it is
rendered, as a last line of defence.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, TextIO
from uuid import UUID

import structlog
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ipt_workflow.ops import metrics

CLIENT_FIELDS = frozenset(
    {
        "client_ref",
        "client_age",
        "prior_episodes",
        "inventory",
        "relationships",
        "attachment_style",
        "communication_style",
        "note",
        "notes",
        "text",
        "comment",
        "body",
        "data",
        "payload",
        "state",
    }
)
"""Keys whose values are client data or may hold it (free text, bodies, payloads)."""

REDACTED = "[client data removed]"
SECRET_REMOVED = "[secret removed]"
SECRET_FIELDS = frozenset(
    {
        "authorization",
        "token",
        "password",
        "secret",
        "cipher_key",
        "checkpoint_key",
        "reference_key",
        "api_key",
    }
)
"""Keys whose values are secrets, removed wherever they appear in a line."""
_SECRET_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[^\s'\",;]+"), r"\1" + SECRET_REMOVED),
    (re.compile(r"ipt_[0-9a-f]{8}_[A-Za-z0-9_-]{43}"), SECRET_REMOVED),
    (
        re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s'\"]*:)[^@\s'\"]+@"),
        r"\1" + SECRET_REMOVED + "@",
    ),
]
"""Secrets inside text: bearer tokens, issued API tokens, URL passwords."""
_known_secrets: set[str] = set()
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: their successful answers are logged at debug level."""

_configured: tuple[str, str] | None = None

http_log = structlog.get_logger("ipt_workflow.http")
command_log = structlog.get_logger("ipt_workflow.commands")


def register_secrets(*values: str) -> None:
    """Configured secrets (keys, passwords): removed from every line, as text."""
    _known_secrets.update(v for v in values if len(v) >= 8)


def remove_secrets(text: str) -> str:
    """The text with every secret this process knows of, or can recognise, removed."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, SECRET_REMOVED)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and the standard library's logging, once per process.

    `log_format` is `json`, `console`, or `auto` (console on a terminal, else JSON).
    A second call with the same arguments does nothing.
    """
    global _configured
    if _configured == (log_format, level):
        return
    _configured = (log_format, level)
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if console:
        # Never the default formatter: it prints every frame's local variables,
        # tokens and settings among them.
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.plain_traceback
        )
    else:
        renderer = structlog.processors.JSONRenderer()
    # Tracebacks become text before the scrubber, in both formats, so that the
    # scrubber sees them too.
    last: list[Any] = [structlog.processors.format_exc_info]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *last,
            scrub_client_data,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def scrub_client_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Remove client data and secrets from a log line, at any depth.

    Values that are not plain data are reduced to their type's name, so no model's
    repr can carry a client's data into a line either; text (tracebacks included)
    loses bearer tokens, API tokens, URL passwords and the configured keys.
    """
    return {key: _scrub_field(key, value, 0) for key, value in event_dict.items()}


def _scrub_field(key: object, value: Any, depth: int) -> Any:
    name = str(key).lower()
    if name in SECRET_FIELDS:
        return SECRET_REMOVED
    if name in CLIENT_FIELDS:
        return REDACTED
    return _scrub(value, depth)


def _scrub(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return remove_secrets(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, UUID | datetime | date):
        return str(value)
    if isinstance(value, Enum):
        return _scrub(value.value, depth)
    if depth > 8:
        return "[nested too deep]"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _scrub_field(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    return f"<{type(value).__name__}>"


def request_id_from(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID if it is well formed, else a new one."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            try:
                given = value.decode("ascii").strip()
            except UnicodeDecodeError:
                break
            if REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class RequestContext:
    """Binds a request id to every line of a request; one access line and metrics.

    The id is taken from `X-Request-ID` when well formed (1 to 128 characters of
    letters, digits and `._:-`), else generated, and returned in `X-Request-ID`.
    The access line names the route template, never the raw path or query.
    """

    def __init__(
        self, app: ASGIApp, *, pools: metrics.PoolSource | None = None
    ) -> None:
        self.app = app
        self.pools = pools

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", []))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                status = 500
                http_log.exception("unhandled_error")
                raise
            finally:
                self._finished(scope, status, time.perf_counter() - started)

    def _finished(self, scope: Scope, status: int, seconds: float) -> None:
        route = _route_template(scope)
        method = str(scope.get("method", ""))
        metrics.observe_request(method, route, status, seconds)
        if self.pools is not None:
            try:
                metrics.refresh_pools(self.pools)
            except Exception:
                http_log.debug("pool_metrics_unavailable")
        quiet = route in QUIET_ROUTES and status < 400
        level = logging.ERROR if status >= 500 else logging.INFO
        http_log.log(
            logging.DEBUG if quiet else level,
            "request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 1),
        )


def _route_template(scope: Scope) -> str:
    """`/cases/{case_id}/sessions`, never the case id; unknown paths as one label."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class CommandLog:
    """The one place that logs and counts what became of each command (D30).

    The case application calls it (it is the application's `observer`); lines carry
    the case id, the command's name, its outcome and the rule codes of a refusal.
    """

    def retried(self, command: str, attempt: int) -> None:
        metrics.observe_retry(command)
        command_log.debug("command_retried", command=command, attempt=attempt)

    def finished(
        self,
        command: str,
        case_id: UUID | None,
        outcome: str,
        *,
        rules: Sequence[str] = (),
        position: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        metrics.observe_command(command, outcome, rules)
        fields: dict[str, Any] = {
            "command": command,
            "case_id": str(case_id) if case_id else None,
            "result": outcome,
        }
        if rules:
            fields["rules"] = list(rules)
        if position is not None:
            fields["position"] = position
        if error is not None and outcome == "failed":
            # The type only: an exception's message may quote what the client sent.
            fields["error"] = type(error).__name__
        level = logging.WARNING if outcome in ("failed", "busy") else logging.INFO
        command_log.log(level, "command", **fields)
