"""Idempotency keys, stored in the same transaction as the events they produced.

A key is scoped to a clinic. Its row names the request it answered (a digest), the
case and the case's version after the command, and the status of the first answer,
so a retry can be answered exactly as the first time, also after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class IdempotencyRecord:
    scope: str
    key: str
    request_digest: str
    case_id: UUID
    version: int
    status: int
