"""A polling subscription for SQLite, which has none in eventsourcing 9.5.6.

The library's listen/notify subscription pulls new notifications whenever it is
woken; here a timer wakes it. SQLite has one writer at a time and assigns the
rowid inside the write transaction, so notifications never commit out of order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, ListenNotifySubscription

POLL_SECONDS = 0.1


class PollingSubscription(ListenNotifySubscription[ApplicationRecorder]):
    """Wakes the library's pull loop every POLL_SECONDS."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._stopped = threading.Event()
        self._poll_thread = threading.Thread(target=self._poll, daemon=True)
        self._poll_thread.start()

    def _poll(self) -> None:
        while not self._stopped.wait(POLL_SECONDS):
            self._has_been_notified.set()

    def stop(self) -> None:
        self._stopped.set()
        super().stop()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._stopped.set()
            self._poll_thread.join()
