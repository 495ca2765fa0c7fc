"""Rate limits: a token bucket per API token, shared by every worker of a server;
and a bucket per client address for failed authentications, in each process.

The token's bucket is kept as GCRA state (the generic cell rate algorithm: one
"theoretical arrival time" per token), which needs one number per token, so the
workers of one `ipt-workflow serve` share it through a small SQLite file: the limit
means the same with one worker or eight. Without a file (one process, the tests) the
state lives in memory. Replicas on other hosts each keep their own
(docs/api-guide.md).

Every token decision is handed to the request that asked through `RATE_DECISIONS`,
so the answer can carry `X-RateLimit-*` headers whatever route or error it comes
from. Failed authentications (D36) are counted per address and per process only:
they carry no headers, and an address's budget need not be exact, only bounded.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import structlog
from cachetools import TTLCache

log = structlog.get_logger("ipt_workflow.ratelimit")

ADDRESSES_TRACKED = 10_000


@dataclass(frozen=True)
class Decision:
    """What the limiter decided for one request, as the headers tell it."""

    limit: int
    """The bucket's size: requests a token may send at once."""
    remaining: int
    """Requests the token may still send at once."""
    reset: int
    """Seconds until the bucket is full again."""
    retry_after: int | None = None
    """Set when refused: seconds until one request is allowed."""

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimited(Exception):
    """Raised when a token, or an address failing authentication, is over its limit."""

    def __init__(
        self,
        retry_after: int,
        detail: str = "Too many requests for this token.",
        decision: Decision | None = None,
    ) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.detail = detail
        self.decision = decision


RATE_DECISIONS: ContextVar[list[Decision] | None] = ContextVar(
    "rate_decisions", default=None
)
"""Set by the API's middleware to a list per request; the limiter appends to it
(the list is shared with the thread a sync dependency runs in)."""

Update = Callable[[float | None], float | None]
"""Given a token's stored arrival time (None: never seen), the new one to store,
or None to leave it as it is."""


class _MemoryState:
    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, key: str, change: Update) -> None:
        with self._lock:
            new = change(self._tats.get(key))
            if new is not None:
                if len(self._tats) > 100_000:
                    self._tats.clear()  # forgetting only ever allows more
                self._tats[key] = new


class _SQLiteState:
    """The arrival times in a SQLite file every worker of the server opens."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(
            path, timeout=1.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, tat REAL)"
        )
        self._lock = threading.Lock()

    def update(self, key: str, change: Update) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT tat FROM buckets WHERE key = ?", (key,)
                ).fetchone()
                new = change(None if row is None else float(row[0]))
                if new is not None:
                    self._db.execute(
                        "INSERT INTO buckets VALUES (?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET tat = excluded.tat",
                        (key, new),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


@dataclass
class RateLimiter:
    """`burst` requests at once, then `per_second` sustained, per API token."""

    per_second: float
    burst: float
    path: str | None = None
    """A SQLite file shared by the server's workers (None: this process only)."""
    clock: Callable[[], float] = time.time
    _state: _MemoryState | _SQLiteState = field(init=False)

    def __post_init__(self) -> None:
        self._state = _MemoryState() if self.path is None else _SQLiteState(self.path)

    def check(self, token_id: str) -> Decision | None:
        """Take one request from the token's bucket, or raise RateLimited."""
        if self.per_second <= 0:
            return None
        interval = 1.0 / self.per_second
        tolerance = self.burst * interval
        now = self.clock()
        decided: list[Decision] = []

        def change(stored: float | None) -> float | None:
            arrival = max(stored or now, now) + interval
            if arrival - now > tolerance:
                wait = arrival - now - tolerance
                decided.append(
                    Decision(
                        limit=int(self.burst),
                        remaining=0,
                        reset=math.ceil(arrival - interval - now),
                        retry_after=max(1, math.ceil(wait)),
                    )
                )
                return None
            decided.append(
                Decision(
                    limit=int(self.burst),
                    remaining=int((tolerance - (arrival - now)) / interval),
                    reset=math.ceil(arrival - now),
                )
            )
            return arrival

        try:
            self._state.update(token_id, change)
        except sqlite3.Error as error:
            # A limiter that cannot count must not take the API down with it.
            log.warning("rate_limit_unavailable", error=type(error).__name__)
            return None
        (decision,) = decided
        found = RATE_DECISIONS.get()
        if found is not None:
            found.append(decision)
        if decision.retry_after is not None:
            raise RateLimited(decision.retry_after, decision=decision)
        return decision


@dataclass
class FailureLimiter:
    """A token bucket per client address, in this process: failed authentications.

    At most `tracked` addresses are remembered: the least recently used are
    forgotten first, so no caller can grow it without bound.
    """

    per_second: float
    burst: float
    tracked: int = ADDRESSES_TRACKED
    _buckets: TTLCache[str, tuple[float, float]] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # A bucket refills completely within burst / per_second: forget it then.
        refill = self.burst / self.per_second if self.per_second > 0 else 1.0
        self._buckets = TTLCache(maxsize=self.tracked, ttl=max(refill, 1.0))

    def take(self, name: str) -> int | None:
        """Spend one failure for `name`; None if allowed, else seconds to wait."""
        if self.per_second <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, since = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.per_second)
            if tokens < 1:
                self._buckets[name] = (tokens, now)
                return max(1, int((1 - tokens) / self.per_second + 0.999))
            self._buckets[name] = (tokens - 1, now)
        return None

    def exhausted(self, name: str) -> bool:
        """Would the next failure for `name` be refused? Spends nothing."""
        if self.per_second <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            tokens, since = self._buckets.get(name, (self.burst, now))
        return min(self.burst, tokens + (now - since) * self.per_second) < 1
