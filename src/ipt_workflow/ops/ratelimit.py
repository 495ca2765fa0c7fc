"""Rate limits: a token bucket per name (an API key, a client address), in this
process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from cachetools import TTLCache

ADDRESSES_TRACKED = 10_000


class RateLimited(Exception):
    """Raised when a name has used up its requests for now."""

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.detail = detail


@dataclass
class RateLimiter:
    """A token bucket per name (an API key, a client address), in this process.

    At most `tracked` names are remembered: the least recently used are forgotten
    first, so no caller can grow it without bound.
    """

    per_second: float
    burst: float
    what: str = "this token"
    tracked: int = ADDRESSES_TRACKED
    _buckets: TTLCache[str, tuple[float, float]] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # A bucket refills completely within burst / per_second: forget it then.
        refill = self.burst / self.per_second if self.per_second > 0 else 1.0
        self._buckets = TTLCache(maxsize=self.tracked, ttl=max(refill, 1.0))

    def take(self, name: str) -> int | None:
        """Spend one request for `name`; None if allowed, else seconds to wait."""
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
        """Would the next request for `name` be refused? Spends nothing."""
        if self.per_second <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            tokens, since = self._buckets.get(name, (self.burst, now))
        return min(self.burst, tokens + (now - since) * self.per_second) < 1

    def check(self, name: str) -> None:
        wait = self.take(name)
        if wait is not None:
            raise RateLimited(wait, f"Too many requests for {self.what}.")
