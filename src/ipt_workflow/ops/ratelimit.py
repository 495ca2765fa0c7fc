"""Rate limits: a token bucket per API token, in this process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


class RateLimited(Exception):
    """Raised when a token has used up its requests for now."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class RateLimiter:
    """A token bucket per API token, in this process."""

    per_second: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, token_id: str) -> None:
        if self.per_second <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, since = self._buckets.get(token_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.per_second)
            if tokens < 1:
                wait = max(1, int((1 - tokens) / self.per_second + 0.999))
                self._buckets[token_id] = (tokens, now)
                raise RateLimited(wait)
            self._buckets[token_id] = (tokens - 1, now)
