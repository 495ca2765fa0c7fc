"""The webhook dispatcher: drives deliveries from the event log, at least once and in
log order per subscription.

Each subscription is worked by one lane at a time (a thread of a bounded pool): it
reads the clinic's events after the subscription's position, skips types it did not
subscribe to, signs and posts the first one, and writes the attempt's outcome and
the new position in one transaction (storage/webhooks.py). A failure schedules the
next attempt by the backoff; later events wait behind it. A dispatcher that dies
between a receiver's answer and the write sends that event again: a duplicate, only
after a failure, never a gap. A slow receiver holds only its own lane, for at most
the timeout; the API never waits for any of this.

One dispatcher delivers per database (a lock); a second one waits as a standby.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import httpx
from eventsourcing.persistence import Notification
from standardwebhooks import Webhook

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.application.webhooks import (
    IPAddress,
    Target,
    UrlPolicy,
    UrlRefusedError,
    decode,
    encode,
    envelope,
    pending,
    subscribed,
)
from ipt_workflow.storage.webhooks import (
    Delivery,
    DispatchLock,
    DispatchState,
    Subscription,
    WebhookStore,
)


def _version() -> str:
    try:
        return version("ipt-workflow")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0"


USER_AGENT = f"ipt-workflow-webhooks/{_version()}"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
BODY_READ_LIMIT = 64 * 1024
BATCH = 100
SLICE_SECONDS = 5.0
"""A lane gives its thread back after this long, so every subscription gets a turn."""
BEAT_SECONDS = 2.0
PRUNE_SECONDS = 3600.0
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
JITTER = 0.1


@dataclass(frozen=True)
class DispatchSettings:
    """The dispatcher's knobs (IPT_WEBHOOK_*; docs/operations.md)."""

    retry_seconds: tuple[float, ...] = (5, 60, 600, 3600, 21600, 43200)
    """The wait after the 1st, 2nd, ... failed attempt; the last repeats."""
    retry_for_seconds: float = 3 * 24 * 3600
    """How long an event is retried before its subscription is `failing`."""
    timeout_seconds: float = 10.0
    """A 2xx within this long acknowledges an event."""
    workers: int = 16
    """Subscriptions worked at once (a hanging receiver holds one)."""
    poll_seconds: float = 0.25
    keep_deliveries_days: float = 30.0


@dataclass(frozen=True)
class Sent:
    """What became of one POST."""

    outcome: str
    """`delivered`, `http_error`, `timeout`, `network_error` or `refused`."""
    status_code: int | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"


class Sender(Protocol):
    def send(
        self,
        target: Target,
        addresses: Sequence[IPAddress],
        body: bytes,
        headers: dict[str, str],
    ) -> Sent: ...

    def close(self) -> None: ...


class DeliveryObserver(Protocol):
    """Told about attempts and state changes: logs and metrics hang on this."""

    def attempted(
        self, sub: Subscription, delivery: Delivery, lag_seconds: float | None
    ) -> None: ...
    def failing(self, sub: Subscription, event_id: str) -> None: ...
    def recovered(self, sub: Subscription) -> None: ...
    def dispatch_failed(self, error: BaseException, retry_in: float) -> None: ...
    def leading(self, leader: bool) -> None: ...


class _Unobserved:
    def attempted(
        self, sub: Subscription, delivery: Delivery, lag_seconds: float | None
    ) -> None:
        pass

    def failing(self, sub: Subscription, event_id: str) -> None:
        pass

    def recovered(self, sub: Subscription) -> None:
        pass

    def dispatch_failed(self, error: BaseException, retry_in: float) -> None:
        pass

    def leading(self, leader: bool) -> None:
        pass


class HttpSender:
    """POSTs with httpx to an address checked by the policy, never re-resolved.

    The request goes to the address; `Host` and TLS (SNI and the certificate
    check) use the name. One client per host, so a TLS connection is never reused
    for another name. Redirects are not followed; proxies from the environment
    are not used (they would bypass the address check).
    """

    MAX_CLIENTS = 256

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout = timeout_seconds
        self._clients: OrderedDict[tuple[str, str, int], httpx.Client] = OrderedDict()
        self._lock = threading.Lock()

    def _client(self, target: Target) -> httpx.Client:
        key = (target.scheme, target.host, target.port)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    follow_redirects=False,
                    trust_env=False,
                    transport=httpx.HTTPTransport(
                        limits=httpx.Limits(
                            max_connections=4, max_keepalive_connections=2
                        ),
                        # Headers and body go out as two writes: without this,
                        # Nagle and a delayed ACK add 40 ms to every delivery.
                        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                        trust_env=False,
                    ),
                )
                self._clients[key] = client
                while len(self._clients) > self.MAX_CLIENTS:
                    _, old = self._clients.popitem(last=False)
                    old.close()
            self._clients.move_to_end(key)
            return client

    def send(
        self,
        target: Target,
        addresses: Sequence[IPAddress],
        body: bytes,
        headers: dict[str, str],
    ) -> Sent:
        started = time.monotonic()
        client = self._client(target)
        extensions = {}
        if target.scheme == "https" and target.literal is None:
            extensions["sni_hostname"] = target.host
        request_headers = {**headers, "host": target.host_header}
        last: Sent | None = None
        for address in addresses:
            left = self.timeout - (time.monotonic() - started)
            if left <= 0:
                break
            try:
                with client.stream(
                    "POST",
                    target.url_for(address),
                    content=body,
                    headers=request_headers,
                    extensions=extensions,
                    timeout=httpx.Timeout(left),
                ) as response:
                    status = response.status_code
                    read = 0
                    for chunk in response.iter_raw():
                        read += len(chunk)
                        if read > BODY_READ_LIMIT:
                            break
            except httpx.TimeoutException:
                return Sent(
                    "timeout",
                    error=f"no answer within {self.timeout:g} s",
                    seconds=time.monotonic() - started,
                )
            except httpx.ConnectError as error:
                last = Sent(
                    "network_error",
                    error=_describe(error),
                    seconds=time.monotonic() - started,
                )
                continue  # the next address of the name, if any
            except httpx.HTTPError as error:
                return Sent(
                    "network_error",
                    error=_describe(error),
                    seconds=time.monotonic() - started,
                )
            seconds = time.monotonic() - started
            if 200 <= status < 300 and seconds > self.timeout:
                return Sent(
                    "timeout", status, f"answered after {seconds:.1f} s", seconds
                )
            if 200 <= status < 300:
                return Sent("delivered", status, None, seconds)
            note = " (redirects are not followed)" if 300 <= status < 400 else ""
            return Sent("http_error", status, f"HTTP {status}{note}", seconds)
        return last or Sent("timeout", error=f"no answer within {self.timeout:g} s")

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _describe(error: httpx.HTTPError) -> str:
    text = str(error).strip() or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]


class PhaseOf:
    """The phase of a case after each of its events (webhook `data.phase`).

    Events that move the case or are recorded in a phase carry it; for the others
    it is the phase after the case's previous event. Found by reading the case's
    events once and remembered (bounded).
    """

    SIZE = 50_000

    def __init__(self, app: CaseApplication) -> None:
        self.app = app
        self._known: OrderedDict[tuple[UUID, int], str | None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> str | None:
        case_id, version = event.originator_id, event.originator_version
        own = getattr(event, "phase", None)
        if isinstance(own, str):
            self._remember(case_id, version, own)
            return own
        with self._lock:
            if (case_id, version) in self._known:
                return self._known[(case_id, version)]
            before = self._known.get((case_id, version - 1))
        if before is not None:
            self._remember(case_id, version, before)
            return before
        phase: str | None = None
        for earlier in self.app.case_events(case_id):
            if earlier.originator_version > version:
                break
            found = getattr(earlier, "phase", None)
            if isinstance(found, str):
                phase = found
            self._remember(case_id, earlier.originator_version, phase)
        return phase

    def _remember(self, case_id: UUID, version: int, phase: str | None) -> None:
        with self._lock:
            self._known[(case_id, version)] = phase
            self._known.move_to_end((case_id, version))
            while len(self._known) > self.SIZE:
                self._known.popitem(last=False)


def backoff(settings: DispatchSettings, attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt, with up to 10 % jitter."""
    schedule = settings.retry_seconds
    base = schedule[min(attempts, len(schedule)) - 1]
    return base * (1 + JITTER * random.random())


class Dispatcher:
    """Delivers every subscription's events; `start` runs it in threads."""

    def __init__(
        self,
        app: CaseApplication,
        store: WebhookStore,
        policy: UrlPolicy,
        lock: DispatchLock,
        settings: DispatchSettings | None = None,
        *,
        sender: Sender | None = None,
        observer: DeliveryObserver | None = None,
        heartbeat: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.store = store
        self.policy = policy
        self.lock = lock
        self.settings = settings or DispatchSettings()
        self.sender = sender or HttpSender(self.settings.timeout_seconds)
        self.observer: DeliveryObserver = observer or _Unobserved()
        self.heartbeat = heartbeat
        self.clock = clock
        self.phase_of = PhaseOf(app)
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._stopping = threading.Event()
        self._busy: set[str] = set()
        self._scanned: dict[str, tuple[int, int]] = {}
        """Per subscription: (revision, head) when its clinic had nothing new."""
        self._busy_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.settings.workers),
            thread_name_prefix="webhook-lane",
        )
        self._thread: threading.Thread | None = None
        self._leader = False
        self._last_beat = 0.0
        self._last_prune = 0.0
        self.healthy = True
        """False while the loop's last tick failed (the database is away)."""

    # --- running -------------------------------------------------------------------

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(
            target=self._loop, name="webhook-dispatcher", daemon=True
        )
        self._thread.start()
        return self

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def leader(self) -> bool:
        return self._leader

    def stop(self) -> None:
        """Stop starting attempts; wait for those in flight (at most the timeout)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.settings.timeout_seconds + 5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.sender.close()
        self.lock.release()

    def _loop(self) -> None:
        delay = FIRST_BACKOFF
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception as error:
                self.healthy = False
                self.observer.dispatch_failed(error, delay)
                self._stopping.wait(delay)
                delay = min(MAX_BACKOFF, delay * 2)
                continue
            self.healthy = True
            delay = FIRST_BACKOFF
            if self.heartbeat is not None:
                self.heartbeat.touch()
            self._stopping.wait(self.settings.poll_seconds)

    def tick(self) -> int:
        """One look at every subscription: start a lane for each that has work.

        The number of lanes started (0 while another dispatcher leads).
        """
        leader = self.lock.held() or self.lock.acquire()
        if leader != self._leader:
            self._leader = leader
            self.observer.leading(leader)
        if not leader:
            return 0
        now = self.clock()
        if now - self._last_beat >= BEAT_SECONDS:
            self.store.beat(self.holder)
            self._last_beat = now
        if now - self._last_prune >= PRUNE_SECONDS:
            self.store.prune(now - self.settings.keep_deliveries_days * 86400)
            self._last_prune = now
        head = self.app.recorder.max_notification_id() or 0
        started = 0
        live = self.store.live()
        for sub in live:
            if sub.position >= head or self._due_later(sub, now):
                continue
            scanned = self._scanned.get(sub.id)
            if (
                scanned is not None
                and scanned[0] == sub.revision
                and scanned[1] >= head
            ):
                continue
            with self._busy_lock:
                if sub.id in self._busy:
                    continue
                self._busy.add(sub.id)
            try:
                self._pool.submit(self._lane, sub.id)
            except RuntimeError:  # shutting down
                with self._busy_lock:
                    self._busy.discard(sub.id)
                break
            started += 1
        if len(self._scanned) > 2 * len(live) + 100:
            self._scanned = {
                s.id: self._scanned[s.id] for s in live if s.id in self._scanned
            }
        return started

    def drain(self, timeout: float = 30.0) -> None:
        """Tick until no lane has work (tests and one-off runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = self.tick()
            with self._busy_lock:
                busy = bool(self._busy)
            if not started and not busy:
                return
            time.sleep(0.01)
        raise TimeoutError("the dispatcher still has work")

    def _due_later(self, sub: Subscription, now: float) -> bool:
        return sub.next_attempt_at is not None and sub.next_attempt_at > now

    # --- one subscription ---------------------------------------------------------

    def _lane(self, sub_id: str) -> None:
        try:
            self._work(sub_id)
        except Exception as error:
            # The database went away mid-lane: nothing half-written (one
            # transaction per outcome); the next tick starts the lane again.
            self.observer.dispatch_failed(error, self.settings.poll_seconds)
        finally:
            with self._busy_lock:
                self._busy.discard(sub_id)

    def _work(self, sub_id: str) -> None:
        ends = time.monotonic() + SLICE_SECONDS
        batch: list[Notification] = []
        batch_for = -1
        while not self._stopping.is_set() and self._leader:
            sub = self.store.get(sub_id)
            if sub is None or self._due_later(sub, self.clock()):
                return
            if batch_for != sub.revision or not batch:
                # Read the head first: writers commit in position order, so no
                # event of the clinic can appear later at or below it.
                head = self.app.recorder.max_notification_id() or 0
                found = pending(self.app, sub.clinic_id, sub.position, BATCH)
                batch = [n for n in found.events if n.id > sub.position]
                batch_for = sub.revision
                if not batch and sub.position < found.scanned_to < head:
                    # A whole stretch of other clinics' events (the feed looks at
                    # a bounded stretch, D40): move past it, then read on.
                    moved = self.store.record(
                        sub, DispatchState(found.scanned_to), None
                    )
                    batch_for = sub.revision + 1 if moved else -1
                    continue
                if not batch:
                    # Nothing for this clinic up to the head (other clinics' events,
                    # the client index's): not looked at again until the head moves.
                    self._scanned[sub.id] = (sub.revision, head)
                    return
            skipped_to = sub.position
            while batch and not subscribed(sub, batch[0].topic):
                skipped_to = batch.pop(0).id
            if not batch:
                # Only types it did not ask for: move past them, then read on.
                moved = self.store.record(sub, DispatchState(skipped_to), None)
                batch_for = sub.revision + 1 if moved else -1
                continue
            notification = batch[0]
            moved, ok = self._attempt(sub, notification, skipped_to)
            if not moved:
                batch_for = -1  # changed meanwhile (redelivered, deleted): read again
                continue
            batch_for = sub.revision + 1
            if not ok:
                return
            batch.pop(0)
            if time.monotonic() > ends:
                return

    def _attempt(
        self, sub: Subscription, n: Notification, skipped_to: int
    ) -> tuple[bool, bool]:
        """Deliver one event; (state written, acknowledged)."""
        event: Any = decode(self.app, n)
        event_id = f"{event.originator_id}:{event.originator_version}"
        sent = self._send(sub, event, n.id)
        now = self.clock()
        attempt = sub.attempts + 1
        if sent.ok:
            state = DispatchState(n.id)
        else:
            first = sub.first_failure_at or now
            next_at = now + backoff(self.settings, attempt)
            failing = next_at - first > self.settings.retry_for_seconds
            state = DispatchState(
                position=skipped_to,
                attempts=attempt,
                next_attempt_at=next_at,
                first_failure_at=first,
                failing_since=(sub.failing_since or now) if failing else None,
                status="failing" if failing else "active",
            )
        delivery = Delivery(
            subscription_id=sub.id,
            event_id=event_id,
            position=n.id,
            attempt=attempt,
            at=now,
            outcome=sent.outcome,
            status_code=sent.status_code,
            error=sent.error,
            duration_ms=round(sent.seconds * 1000),
            next_attempt_at=state.next_attempt_at,
        )
        moved = self.store.record(sub, state, delivery)
        lag = now - event.timestamp.timestamp() if sent.ok else None
        self.observer.attempted(sub, delivery, lag)
        if moved and state.status == "failing" and sub.status != "failing":
            self.observer.failing(sub, event_id)
        if moved and sent.ok and sub.status == "failing":
            self.observer.recovered(sub)
        return moved, sent.ok

    def _send(self, sub: Subscription, event: Any, position: int) -> Sent:
        try:
            target = self.policy.target(sub.url)
            addresses = self.policy.addresses(target)
        except UrlRefusedError as refused:
            return Sent("refused", error=f"the URL {refused.reason}")
        body = encode(envelope(event, position, self.phase_of(event), sub.clinic_id))
        msg_id = f"{event.originator_id}:{event.originator_version}"
        now = datetime.now(UTC)
        signature = Webhook(sub.secret).sign(msg_id, now, body.decode())
        headers = {
            "content-type": CONTENT_TYPE,
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        return self.sender.send(target, addresses, body, headers)
