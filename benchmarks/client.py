"""The few calls the harness itself makes over HTTP (api.md): set-up and checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx


def _client(base: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def open_cases(base: str, token: str, refs: Iterable[str]) -> list[str]:
    """Open one case per synthetic client_ref; their ids, in order."""

    def one(ref: str) -> str:
        with _client(base, token) as http:
            answer = http.post(
                "/cases",
                json={
                    "client_ref": ref,
                    "protocol": "ipt",
                    "client_age": 35,
                    "clinician_id": "bench-t1",
                },
            )
        answer.raise_for_status()
        return str(answer.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, refs))


def record_measures(base: str, token: str, case_id: str, count: int, day: str) -> None:
    with _client(base, token) as http:
        for i in range(count):
            http.post(
                f"/cases/{case_id}/measures",
                json={"instrument": "phq9", "score": i % 28, "measured_on": day},
            ).raise_for_status()


def version(base: str, token: str, case_id: str) -> int:
    with _client(base, token) as http:
        answer = http.get(f"/cases/{case_id}")
        answer.raise_for_status()
        return int(answer.json()["version"])


def history(base: str, token: str, case_id: str, after: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with _client(base, token) as http:
        while True:
            answer = http.get(
                f"/cases/{case_id}/history",
                params={"after_version": after, "limit": 1000},
            )
            answer.raise_for_status()
            page = answer.json()
            items += page["items"]
            if page["next_after_version"] is None:
                return items
            after = page["next_after_version"]


def access_entries(base: str, token: str, actor: str, after: int = 0) -> list[int]:
    """Ids of the access log's entries of one actor's reads through GET /cases/{id}."""
    ids: list[int] = []
    with _client(base, token) as http:
        while True:
            answer = http.get(
                "/audit/access", params={"actor": actor, "after": after, "limit": 1000}
            )
            answer.raise_for_status()
            page = answer.json()
            ids += [e["id"] for e in page["items"] if e["route"] == "/cases/{case_id}"]
            if page.get("next_after") is None:  # absent on the last page (D75)
                return ids
            after = page["next_after"]


@dataclass
class WriteCheck:
    """Whether every acknowledged command is one new event, and no more."""

    acknowledged: int = 0
    new_events: int = 0
    unanswered: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len([p for p in self.problems if p.startswith("lost")])

    @property
    def doubled(self) -> int:
        return len([p for p in self.problems if p.startswith("doubled")])

    @property
    def intact(self) -> bool:
        return not self.problems


def check_writes(
    base: str,
    token: str,
    before: dict[str, int],
    acknowledged: list[tuple[str, int]],
    unanswered: int,
    tag: str,
) -> WriteCheck:
    """Compare the 2xx answers (case, version) with the cases' history since `before`.

    Requests still in flight when wrk stopped may have been committed without
    their answer being counted: at most `unanswered` such events are allowed.
    """
    result = WriteCheck(acknowledged=len(acknowledged), unanswered=unanswered)
    answers = Counter(acknowledged)
    for (case_id, v), n in answers.items():
        if n > 1:
            result.problems.append(f"doubled: {n} answers for {case_id} v{v}")
    events: dict[tuple[str, int], dict[str, Any]] = {}
    keys: Counter[str] = Counter()
    for case_id, since in before.items():
        for item in history(base, token, case_id, since):
            events[(case_id, int(item["version"]))] = item
            keys[str(item.get("command_id"))] += 1
    result.new_events = len(events)
    for pair in answers:
        if pair not in events:
            result.problems.append(f"lost: {pair[0]} v{pair[1]} answered, not stored")
    for key, n in keys.items():
        if n > 1:
            result.problems.append(f"doubled: command {key} stored {n} times")
        elif not key.startswith(tag):
            result.problems.append(f"extra: event of command {key} not sent by wrk")
    extra = len(events) - len(answers)
    if extra < 0 or extra > unanswered:
        result.problems.append(
            f"extra: {len(events)} events for {len(answers)} answers "
            f"({unanswered} unanswered in flight at the end)"
        )
    return result
