"""Webhook subscriptions: who may be called, with what, and the addresses allowed.

`Webhooks` is the service the API's subscription routes call (an admin's clinics
only). `UrlPolicy` keeps the service from being turned against its own network
(SSRF): `https` only, every address a name resolves to must be public, unless
development mode allows loopback or `IPT_WEBHOOK_ALLOW_HOSTS` names the host; names
are resolved when subscribing and again before every attempt (DNS rebinding), and
the connection goes to the address that was checked. `envelope` is the CloudEvents
1.0 body of one event: ids, type, position, version and phase, never client data.
"""

from __future__ import annotations

import base64
import concurrent.futures
import ipaddress
import json
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification, StoredEvent

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.domain import events as case_events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.errors import DomainError, FieldError, InvalidInput
from ipt_workflow.storage.audit import AuditRecorder
from ipt_workflow.storage.case_cipher import ErasedEvent
from ipt_workflow.storage.webhook_status import WebhookStatus
from ipt_workflow.storage.webhooks import (
    Claim,
    Delivery,
    Subscription,
    SubscriptionNotFoundError,
    WebhookStore,
    Written,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""A host name and port to the addresses it resolves to (raises OSError if none)."""

ALL_TYPES = "*"
MAX_PER_CLINIC = 25
PENDING_COUNTED = 1000
"""Waiting events counted per subscription for the console, at most."""
STATUS_ROWS = 10_000
"""Subscriptions one status read lists, at most (25 per clinic)."""
MAX_URL_LENGTH = 2048
RESOLVE_SECONDS = 5.0
SECRET_PREFIX = "whsec_"
TYPE_PREFIX = "ipt."


def _event_classes() -> dict[str, type[case_events.CaseEvent]]:
    """The case's concrete event classes by name (bases such as PhaseEvent left out)."""
    found = [
        cls
        for cls in vars(TherapyCase).values()
        if isinstance(cls, type) and issubclass(cls, case_events.CaseEvent)
    ]
    return {
        cls.__name__: cls
        for cls in found
        if not any(other is not cls and issubclass(other, cls) for other in found)
    }


EVENT_CLASSES = _event_classes()
EVENT_TYPES: tuple[str, ...] = tuple(sorted(EVENT_CLASSES))
"""The names a subscription may ask for: every event a case records."""
TOPIC_NAMES = {cls.TOPIC: name for name, cls in EVENT_CLASSES.items()}


def event_name(topic: str) -> str:
    """An event's public name from its stored topic, without decoding it."""
    return TOPIC_NAMES.get(topic) or topic.rsplit(".", 1)[-1]


# --- addresses (SSRF) --------------------------------------------------------------


class UrlRefusedError(DomainError):
    """Raised when a webhook URL or the addresses it resolves to are not allowed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL: where to connect, and what to call the host."""

    url: str
    scheme: str
    host: str
    """Lower case, IDNA-encoded; an IP literal without brackets."""
    port: int
    path: str
    """Path and query, as sent in the request line."""

    @property
    def literal(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """The URL with the checked address in place of the name."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


_resolver_pool = concurrent.futures.ThreadPoolExecutor(
    max_workers=4, thread_name_prefix="webhook-dns"
)


def system_resolver(host: str, port: int) -> list[str]:
    """The system's addresses for a name, waiting at most RESOLVE_SECONDS."""
    future = _resolver_pool.submit(
        socket.getaddrinfo, host, port, type=socket.SOCK_STREAM
    )
    try:
        found = future.result(timeout=RESOLVE_SECONDS)
    except concurrent.futures.TimeoutError:
        raise OSError(f"no answer within {RESOLVE_SECONDS:g} s") from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def parse_allow_hosts(text: str) -> tuple[frozenset[str], tuple[Any, ...]]:
    """`IPT_WEBHOOK_ALLOW_HOSTS`: names, addresses and networks, comma-separated."""
    names: set[str] = set()
    networks: list[Any] = []
    for part in text.replace(" ", ",").split(","):
        item = part.strip().lower().strip("[]")
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
            continue
        except ValueError:
            pass
        try:
            names.add(item.encode("idna").decode("ascii"))
        except UnicodeError:
            raise ValueError(f"not a host name, address or network: {part!r}") from None
    return frozenset(names), tuple(networks)


def _unwrapped(address: IPAddress) -> IPAddress:
    """An IPv4 address carried inside an IPv6 one is judged as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in (address.ipv4_mapped, address.sixtofour):
            if inner is not None:
                return inner
        if address.teredo is not None:
            return address.teredo[1]
    return address


def is_public(address: IPAddress) -> bool:
    """Globally routable: not private, loopback, link-local, shared, reserved,
    documentation, multicast or unspecified."""
    address = _unwrapped(address)
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


class UrlPolicy:
    """Which webhook URLs may be subscribed to and called (api.md, Webhooks)."""

    def __init__(
        self,
        *,
        dev: bool = False,
        allow_hosts: str = "",
        resolver: Resolver = system_resolver,
    ) -> None:
        self.dev = dev
        self.names, self.networks = parse_allow_hosts(allow_hosts)
        self.resolver = resolver

    def target(self, url: str) -> Target:
        """The URL parsed, or UrlRefusedError saying what is wrong with it."""
        if len(url) > MAX_URL_LENGTH:
            raise UrlRefusedError(f"is longer than {MAX_URL_LENGTH} characters")
        if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
            raise UrlRefusedError("contains spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlRefusedError("is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise UrlRefusedError("must be an https URL")
        if parts.username is not None or parts.password is not None:
            raise UrlRefusedError("must not carry a user name or password")
        if parts.fragment:
            raise UrlRefusedError("must not have a fragment")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UrlRefusedError("has no host")
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UrlRefusedError("has a host name that is not valid") from None
        if port == 0:
            raise UrlRefusedError("has port 0")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Target(
            url, scheme, host, port or (443 if scheme == "https" else 80), path
        )

    def _allowed(self, target: Target, address: IPAddress) -> bool:
        return target.host in self.names or any(
            address in network for network in self.networks
        )

    def addresses(self, target: Target) -> list[IPAddress]:
        """Resolve the host now and check every address; the ones to connect to."""
        literal = target.literal
        if literal is not None:
            found: list[IPAddress] = [literal]
        else:
            try:
                found = [
                    ipaddress.ip_address(a.split("%")[0])
                    for a in self.resolver(target.host, target.port)
                ]
            except (OSError, ValueError, UnicodeError) as error:
                raise UrlRefusedError(
                    f"has a host name that does not resolve ({type(error).__name__})"
                ) from None
            if not found:
                raise UrlRefusedError("has a host name that does not resolve")
        for address in found:
            allowed = self._allowed(target, address)
            loopback = self.dev and _unwrapped(address).is_loopback
            if not (allowed or loopback or is_public(address)):
                raise UrlRefusedError(
                    f"resolves to {address}, an address in a private or reserved "
                    "range (IPT_WEBHOOK_ALLOW_HOSTS can allow it)"
                )
            if target.scheme == "http" and not (allowed or loopback):
                raise UrlRefusedError(
                    "must be an https URL (http only on loopback in development "
                    "mode, or for a host in IPT_WEBHOOK_ALLOW_HOSTS)"
                )
        return found

    def check(self, url: str) -> Target:
        target = self.target(url)
        self.addresses(target)
        return target


# --- the envelope --------------------------------------------------------------------


def envelope(
    event: DomainEventProtocol[UUID], position: int, phase: str | None, clinic_id: str
) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON envelope of one case event: no client data.

    An event of an erased case keeps its type, and says the case is gone.
    """
    case_id = str(event.originator_id)
    version = event.originator_version
    name = event.erased_type if isinstance(event, ErasedEvent) else None
    data: dict[str, Any] = {
        "position": position,
        "version": version,
        "phase": phase,
        "case_id": case_id,
        "clinic_id": clinic_id,
    }
    if name is not None or isinstance(event, case_events.CaseErased):
        data["erased"] = True
    return {
        "specversion": "1.0",
        "id": f"{case_id}:{version}",
        "source": f"/cases/{case_id}",
        "type": TYPE_PREFIX + (name or type(event).__name__),
        "time": cast(Any, event).timestamp.isoformat(),
        "subject": case_id,
        "datacontenttype": "application/json",
        "data": data,
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# --- the log, for the dispatcher and the status ---------------------------------------


def _recorder(app: CaseApplication) -> AuditRecorder:
    recorder: Any = app.recorder
    return cast(AuditRecorder, recorder)


@dataclass(frozen=True)
class Pending:
    """A clinic's case events in one stretch of the log, and where the stretch ends.

    A stretch is at most FEED_SCAN positions (D40): no events in it does not mean
    none later. Every position up to `scanned_to` is final, so a reader may go on
    after it.
    """

    events: list[Notification]
    scanned_to: int


def pending(app: CaseApplication, clinic_id: str, after: int, limit: int) -> Pending:
    """A clinic's case events after a log position, in log order (not decoded)."""
    rows = _recorder(app).select_feed(after, limit, [clinic_id])
    return Pending([n for n, _ in rows.events], rows.scanned_to)


def waiting(app: CaseApplication, sub: Subscription, head: int) -> int:
    """The subscribed events of the clinic after the position, up to the head;
    at most PENDING_COUNTED are counted (the console shows the number)."""
    count, after = 0, sub.position
    while after < head and count < PENDING_COUNTED:
        found = pending(app, sub.clinic_id, after, PENDING_COUNTED - count)
        count += sum(
            1 for n in found.events if n.id <= head and subscribed(sub, n.topic)
        )
        if found.scanned_to <= after:
            break
        after = found.scanned_to
    return min(count, PENDING_COUNTED)


def first_pending(
    app: CaseApplication, clinic_id: str, after: int, head: int
) -> Notification | None:
    """The clinic's first case event after `after` and up to `head`, if any."""
    while after < head:
        found = pending(app, clinic_id, after, 1)
        if found.events:
            return found.events[0]
        if found.scanned_to <= after:
            return None
        after = found.scanned_to
    return None


def decode(app: CaseApplication, n: Notification) -> DomainEventProtocol[UUID]:
    stored = StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
    event: DomainEventProtocol[UUID] = app.mapper.to_domain_event(stored)
    return event


def subscribed(sub: Subscription, topic: str) -> bool:
    return ALL_TYPES in sub.event_types or event_name(topic) in sub.event_types


# --- the service ---------------------------------------------------------------------


class TooManySubscriptionsError(DomainError):
    """Raised when a clinic already has the most subscriptions allowed."""


@dataclass(frozen=True)
class Lag:
    """How far a subscription's deliveries are behind the log."""

    head: int
    pending_events: bool
    seconds: float


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def event_types(asked: Iterable[str]) -> tuple[str, ...]:
    """The event types asked for, checked: `*` alone, or known names."""
    wanted = list(dict.fromkeys(asked))
    if not wanted:
        raise InvalidInput([FieldError("event_types", "name at least one, or '*'")])
    if ALL_TYPES in wanted:
        if len(wanted) > 1:
            raise InvalidInput(
                [FieldError("event_types", "'*' stands alone: it means every type")]
            )
        return (ALL_TYPES,)
    errors = [
        FieldError(f"event_types[{i}]", f"{name!r} is not an event type")
        for i, name in enumerate(wanted)
        if name not in EVENT_CLASSES
    ]
    if errors:
        raise InvalidInput(errors)
    return tuple(wanted)


class Webhooks:
    """Subscriptions of the admins' clinics, their deliveries and redeliveries."""

    def __init__(
        self,
        store: WebhookStore,
        cases: CaseApplication,
        policy: UrlPolicy,
        *,
        max_per_clinic: int = MAX_PER_CLINIC,
    ) -> None:
        self.store = store
        self.cases = cases
        self.policy = policy
        self.max_per_clinic = max_per_clinic

    def subscribe(
        self,
        *,
        clinic_id: str,
        url: str,
        types: Sequence[str],
        description: str | None,
        actor: str,
        claim: Claim | None = None,
    ) -> Written:
        """A new subscription of a clinic, delivered every event from now on."""
        if claim is not None and (done := self.store.answered(claim)) is not None:
            return done
        checked = event_types(types)
        try:
            self.policy.check(url)
        except UrlRefusedError as refused:
            raise InvalidInput([FieldError("url", refused.reason)]) from None
        if self.store.count(clinic_id) >= self.max_per_clinic:
            raise TooManySubscriptionsError(
                f"clinic {clinic_id} has {self.max_per_clinic} subscriptions, "
                "the most allowed; delete one first"
            )
        head = self.cases.recorder.max_notification_id() or 0
        sub = Subscription(
            id=str(uuid.uuid4()),
            clinic_id=clinic_id,
            url=url,
            event_types=checked,
            description=description,
            secret=new_secret(),
            created_at=time.time(),
            created_by=actor,
            position=head,
        )
        return self.store.create(sub, claim)

    def get(
        self, sub_id: str, clinics: Collection[str] | None, *, deleted: bool = False
    ) -> Subscription:
        """A subscription of these clinics (None: all); else SubscriptionNotFound."""
        found = self.store.get(sub_id, deleted=deleted)
        if found is None or (clinics is not None and found.clinic_id not in clinics):
            raise SubscriptionNotFoundError(sub_id)
        return found

    def page(
        self, clinics: Collection[str] | None, after: str | None, limit: int
    ) -> list[Subscription]:
        return self.store.page(clinics, after, limit)

    def unsubscribe(
        self, sub_id: str, clinics: Collection[str] | None, claim: Claim | None
    ) -> Written:
        """Delete a subscription: no attempt starts after this returns."""
        if claim is not None and (done := self.store.answered(claim)) is not None:
            return done
        self.get(sub_id, clinics)
        return self.store.delete(sub_id, claim)

    def redeliver(
        self,
        sub_id: str,
        clinics: Collection[str] | None,
        from_position: int,
        claim: Claim | None,
    ) -> Written:
        """Deliver every subscribed event from this position on again, in order."""
        if claim is not None and (done := self.store.answered(claim)) is not None:
            return done
        self.get(sub_id, clinics)
        return self.store.redeliver(sub_id, from_position, claim)

    def deliveries(
        self, sub_id: str, clinics: Collection[str] | None, after: int, limit: int
    ) -> list[Delivery]:
        self.get(sub_id, clinics)
        return self.store.deliveries(sub_id, after, limit)

    def webhook_statuses(self, clinics: Collection[str] | None) -> list[WebhookStatus]:
        """The delivery state of these clinics' subscriptions (the console, D84)."""
        head = self.cases.recorder.max_notification_id() or 0
        rows = []
        for sub in self.store.page(clinics, None, STATUS_ROWS):
            delivered = self.store.last_delivered(sub.id)
            rows.append(
                WebhookStatus(
                    subscription_id=sub.id,
                    clinic_id=sub.clinic_id,
                    status=sub.status,
                    pending_events=waiting(self.cases, sub, head),
                    lag_seconds=self.lag(sub, head).seconds,
                    last_delivered_at=None
                    if delivered is None
                    else datetime.fromtimestamp(delivered, UTC).isoformat(
                        timespec="seconds"
                    ),
                )
            )
        return rows

    def lag(self, sub: Subscription, head: int | None = None) -> Lag:
        """The age of the oldest event the subscription has not handled yet."""
        if head is None:
            head = self.cases.recorder.max_notification_id() or 0
        if head <= sub.position:
            return Lag(head, False, 0.0)
        first = first_pending(self.cases, sub.clinic_id, sub.position, head)
        if first is None:
            return Lag(head, False, 0.0)
        event: Any = decode(self.cases, first)
        age = time.time() - event.timestamp.timestamp()
        return Lag(head, True, round(max(age, 0.0), 3))
