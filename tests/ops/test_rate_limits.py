"""Rate limits: a token bucket per API token that every worker of a server shares,
reported on every answer as X-RateLimit-*, with a default a clinic system's whole
course stays well inside."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import AcceptFollowUp, Close
from ipt_workflow.domain.courses import Course
from ipt_workflow.ops.ratelimit import RateLimited, RateLimiter
from tests.api.test_over_http import start_server
from tests.support.api import Api, make_api
from tests.support.drivers import OverHttp, case_of

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TestBucket:
    def test_a_token_gets_its_burst_then_one_request_per_interval(self) -> None:
        clock = Clock()
        limiter = RateLimiter(per_second=2, burst=3, clock=clock)

        allowed = [limiter.check("k") for _ in range(3)]
        with pytest.raises(RateLimited) as refused:
            limiter.check("k")
        clock.now += 0.5
        after_half_a_second = limiter.check("k")

        assert [d.remaining for d in allowed if d] == [2, 1, 0]
        assert refused.value.retry_after == 1
        assert after_half_a_second is not None
        assert after_half_a_second.remaining == 0

    def test_tokens_have_buckets_of_their_own(self) -> None:
        limiter = RateLimiter(per_second=1, burst=1, clock=Clock())

        limiter.check("a")

        assert limiter.check("b") is not None
        with pytest.raises(RateLimited):
            limiter.check("a")

    def test_two_limiters_on_one_file_share_each_token_s_bucket(
        self, tmp_path: Path
    ) -> None:
        clock = Clock()
        path = str(tmp_path / "buckets.db")
        first = RateLimiter(per_second=1, burst=4, path=path, clock=clock)
        second = RateLimiter(per_second=1, burst=4, path=path, clock=clock)

        remaining = [
            d.remaining
            for d in (first.check("k"), second.check("k"), first.check("k"))
            if d
        ]
        second.check("k")
        with pytest.raises(RateLimited):
            first.check("k")

        assert remaining == [3, 2, 1]


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'rl.db'}",
        rate_limit_per_second=0.01,
        rate_limit_burst=5,
    )
    yield from make_api(settings)


class TestHeaders:
    def test_every_answer_to_a_counted_request_carries_the_headers(
        self, limited: Api
    ) -> None:
        case_id = limited.open_case()
        answers = [
            limited.get(f"/cases/{case_id}"),
            limited.post(f"/cases/{case_id}/transitions/start_middle"),
            limited.post(f"/cases/{case_id}/measures", {"score": "x"}),
            limited.get(f"/cases/{uuid.uuid4()}"),
            limited.get(f"/cases/{case_id}"),
        ]

        statuses = [a.status_code for a in answers]
        assert statuses == [200, 409, 422, 404, 429]
        for answer in answers:
            assert all(h in answer.headers for h in HEADERS), answer.headers
        remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers]
        assert remaining == [3, 2, 1, 0, 0]  # the opening took the first
        assert answers[-1].headers["Retry-After"] == "100"
        assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"5"}

    def test_routes_without_a_token_are_not_counted(self, limited: Api) -> None:
        answers = [limited.client.get(p) for p in ("/healthz", "/fhir/metadata")]

        assert [a.status_code for a in answers] == [200, 200]
        assert not any("X-RateLimit-Limit" in a.headers for a in answers)


class TestDefaultLimit:
    def test_a_whole_course_and_its_reads_at_full_speed_are_never_refused(
        self, tmp_path: Path
    ) -> None:
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'default.db'}")
        assert settings.rate_limit_per_second > 0  # the defaults, not "no limit"
        course = Course(baseline=20, final=9, contract=12, today=date(2026, 9, 27))
        seen: list[httpx.Response] = []

        for api in make_api(settings):

            def post(path: str, body: object = None, api: Api = api) -> httpx.Response:
                answer: httpx.Response = api.post(path, body)
                seen.append(answer)
                seen.append(api.get(f"/cases/{case_of(answer.json())['id']}"))
                return answer

            http = OverHttp(post)
            for _ in range(4):
                case_id = http.drive(course, Phase.concluded)
                http.run(case_id, AcceptFollowUp.parse(sessions=4, frequency="monthly"))
                http.run(case_id, course.session(), Close.parse())

        assert len(seen) > 150
        assert [a.status_code for a in seen if a.status_code == 429] == []


def test_the_workers_of_one_server_share_a_token_s_bucket(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPT_RATE_LIMIT_PER_SECOND", "0.05")
    monkeypatch.setenv("IPT_RATE_LIMIT_BURST", "8")
    server = start_server(database_url, "--workers", "2")
    try:
        answers = []
        for _ in range(24):
            # A connection each, so that both workers answer.
            with httpx.Client(headers={"Authorization": "Bearer dev-clinician"}) as c:
                answers.append(c.get(f"{server.base}/cases/{uuid.uuid4()}"))
    finally:
        server.process.terminate()
        server.process.wait(timeout=15)

    allowed = [a for a in answers if a.status_code == 404]
    refused = [a for a in answers if a.status_code == 429]
    assert len(allowed) == 8, [a.status_code for a in answers]
    assert len(refused) == 16
    assert [int(a.headers["X-RateLimit-Remaining"]) for a in allowed] == list(
        range(7, -1, -1)
    )
    assert "IPT_RATE_LIMIT_STATE" not in os.environ
