"""Erasing a case over HTTP: afterwards its client data is found nowhere, even with
every key of the ring, and its history still verifies."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import UUID

import pytest

from ipt_workflow.application import auditing as audit
from ipt_workflow.cli.main import main
from ipt_workflow.composition.settings import sqlite_path
from ipt_workflow.domain.commands import Withdraw
from ipt_workflow.storage.case_keys import TABLE
from tests.audit.test_fhir_clinical_events import (
    course_with_risk_revision_and_relapse,
)
from tests.erasure.conftest import (
    CHECKPOINT_KEY,
    CLIENT_REF,
    COURSE,
    NOTE,
    RING,
    app_of,
    decrypted_payloads,
    erase,
    raw_bytes,
    settings_of,
    withdrawn_case,
)
from tests.support.api import Api
from tests.support.drivers import OverHttp

SECTION_8 = {
    "intake_on",
    "inventory",
    "risk",
    "relapse",
    "termination_tasks",
    "outcome",
    "outcome_revised_after_decision",
    "follow_up_offer",
    "follow_up_contract",
    "latest_measure",
    "baseline",
    "focus",
    "client_ref",
}
"""A case answer's clinical state: none of it is shown once the case is erased."""


def wrapped_key(url: str, case_id: str) -> bytes:
    with sqlite3.connect(sqlite_path(url)) as db:
        (found,) = db.execute(
            f"SELECT wrapped_key FROM {TABLE} WHERE case_id = ?", (UUID(case_id).hex,)
        ).fetchone()
    return bytes(found)


def caseload_ids(api: Api, position: int) -> set[str]:
    answer = api.get("/projections/caseload", "clinician", min_position=position)
    assert answer.status_code == 200, answer.text
    return {row["case_id"] for row in answer.json()["items"]}


class TestAfterErasure:
    def test_the_client_data_is_found_nowhere_even_with_every_key_of_the_ring(
        self, erasure_api: Api, capfd: pytest.CaptureFixture[str]
    ) -> None:
        api = erasure_api
        case_id = withdrawn_case(api)
        kept = OverHttp(api.post).open(COURSE, "ZQ-KEEP-ME-2020", "t-7")
        url = settings_of(api).database_url
        before = "\n".join(decrypted_payloads(settings_of(api)))
        # The control: with the keys, the data can be read before erasure.
        assert CLIENT_REF in before
        assert NOTE in before
        assert "InterpersonalInventoryRecorded" in before
        key = wrapped_key(url, case_id) if url.startswith("sqlite") else None

        answer = erase(api, case_id, **{"Idempotency-Key": "erase-1"})

        assert answer.status_code == 202, answer.text
        assert answer.json()["erased"] is True
        after = "\n".join(decrypted_payloads(settings_of(api)))
        assert CLIENT_REF not in after
        assert NOTE not in after
        assert "InterpersonalInventoryRecorded {" not in after
        assert "ZQ-KEEP-ME-2020" in after  # another case is untouched
        stored = raw_bytes(url)
        assert CLIENT_REF.encode() not in stored
        assert NOTE.encode() not in stored
        if key is not None:
            assert key not in stored  # not even in SQLite's free pages or its WAL
        logs = capfd.readouterr()
        assert CLIENT_REF not in logs.out + logs.err
        assert NOTE not in logs.out + logs.err
        assert kept

    def test_the_case_reads_as_its_receipt_and_its_history_as_envelopes(
        self, erasure_api: Api
    ) -> None:
        api = erasure_api
        case_id = withdrawn_case(api)
        versions = len(api.get(f"/cases/{case_id}/history").json()["items"])

        receipt = erase(api, case_id).json()["erasure"]
        case = api.get(f"/cases/{case_id}").json()
        history = api.get(f"/cases/{case_id}/history", limit=1000).json()["items"]

        assert set(case) == {
            "id", "clinic_id", "phase", "version", "position", "erased", "erasure"
        }  # fmt: skip
        assert case["phase"] == "withdrawn"
        assert case["version"] == versions + 1
        assert case["erasure"] == receipt
        assert receipt["basis"] == "data_subject_request"
        assert receipt["reason"] == "DSR-2026-0042"
        assert receipt["erased_by"] == "admin-actor"
        assert [h["type"] for h in history[:2]] == [
            "CaseOpened",
            "InterpersonalInventoryRecorded",
        ]
        assert all(h["erased"] and h["data"] == {} for h in history[:-1])
        assert all(h["recorded_by"] == "clinician-actor" for h in history[:-1])
        assert history[-1]["type"] == "CaseErased"
        assert history[-1]["data"]["basis"] == "data_subject_request"
        replayed = api.get(f"/cases/{case_id}/replay", "auditor", version=2).json()
        assert replayed["erased"] is True and "client_ref" not in replayed
        fhir = api.get(f"/cases/{case_id}/fhir", "auditor")
        assert fhir.status_code == 410
        assert fhir.json()["code"] == "case_erased"

    def test_a_retried_erasure_answers_the_same_receipt_and_records_nothing(
        self, erasure_api: Api
    ) -> None:
        api = erasure_api
        case_id = withdrawn_case(api)
        first = erase(api, case_id, **{"Idempotency-Key": "e-1"})

        same_key = erase(api, case_id, **{"Idempotency-Key": "e-1"})
        new_request = erase(api, case_id)

        assert same_key.status_code == new_request.status_code == 202
        assert same_key.json() == new_request.json() == first.json()
        assert new_request.headers["Idempotent-Replayed"] == "true"
        history = api.get(f"/cases/{case_id}/history").json()["items"]
        assert [h["type"] for h in history].count("CaseErased") == 1

    def test_the_read_models_drop_the_case(self, erasure_api: Api) -> None:
        api = erasure_api
        case_id = withdrawn_case(api)
        kept = withdrawn_case(api, "ZQ-KEEP-ME-3030")
        head = app_of(api).recorder.max_notification_id() or 0
        assert {case_id, kept} <= caseload_ids(api, head)

        position = int(erase(api, case_id).headers["X-Position"])

        rows = caseload_ids(api, position)
        assert case_id not in rows
        assert kept in rows

    def test_the_chain_and_the_checkpoints_still_verify_and_say_erased(
        self,
        erasure_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
    ) -> None:
        api = erasure_api
        case_id = withdrawn_case(api)
        taken = audit.take_checkpoint(app_of(api), CHECKPOINT_KEY.encode())
        assert taken is not None

        erase(api, case_id)
        check = api.get(f"/cases/{case_id}/verify", "auditor").json()
        monkeypatch.setenv("IPT_DATABASE_URL", settings_of(api).database_url)
        monkeypatch.setenv("IPT_CHECKPOINT_KEY", CHECKPOINT_KEY)
        monkeypatch.setenv("IPT_CIPHER_KEY", RING)
        capsys.readouterr()
        code = main(["audit", "verify", "--all"])
        out = capsys.readouterr().out

        assert check["intact"] is True, check
        assert check["erased"] is True
        assert check["checkpoint"] == taken.seq
        assert check["problems"] == []
        assert code == 0, out
        assert f"{case_id} intact (erased)" in out
        assert "1 erased" in out
        export = tmp_path / "case.jsonl"
        exported = main(["audit", "export", "--case", case_id, "--output", str(export)])
        offline = main(["audit", "verify", "--file", str(export)])
        assert (exported, offline) == (0, 0)
        assert f"{case_id} intact (erased)" in capsys.readouterr().out
        assert CLIENT_REF not in export.read_text()


def test_the_event_feed_shows_an_erased_case_s_events_without_data(
    sqlite_erasure_api: Api,
) -> None:
    api = sqlite_erasure_api
    case_id = withdrawn_case(api)
    erase(api, case_id)

    feed = api.get("/events", "auditor", limit=1000).json()["items"]

    mine = [item for item in feed if item["case_id"] == case_id]
    assert mine and all(i["erased"] for i in mine if i["type"] != "CaseErased")
    assert "SymptomsMeasured" in {i["type"] for i in mine}
    assert all(i["data"] == {} for i in mine if i["type"] == "SymptomsMeasured")


def test_an_erased_case_shows_none_of_its_safety_and_follow_up_state(
    sqlite_erasure_api: Api,
) -> None:
    """Main's §8 events (a risk flag and its review, a revised outcome, a suspected
    relapse) keep only their envelope, and the case shows none of their state."""
    api = sqlite_erasure_api
    case_id = course_with_risk_revision_and_relapse(api)
    OverHttp(api.post).run(case_id, Withdraw.parse(reason="other", note=NOTE))
    before = api.get(f"/cases/{case_id}").json()
    assert before["risk"] is not None and before["relapse"] is not None  # control
    versions = before["version"]

    assert erase(api, case_id).status_code == 202

    case = api.get(f"/cases/{case_id}").json()
    assert not SECTION_8 & set(case), set(case)
    history = api.get(f"/cases/{case_id}/history", limit=1000).json()["items"]
    types = [h["type"] for h in history[:-1]]
    assert {"RiskFlagged", "RiskReviewed", "OutcomeRevised", "RelapseSuspected"} <= set(
        types
    )
    assert all(h["erased"] and h["data"] == {} for h in history[:-1])
    feed = api.get("/events", "auditor", limit=1000).json()["items"]
    mine = [i for i in feed if i["case_id"] == case_id and i["type"] != "CaseErased"]
    assert {i["type"] for i in mine} == set(types)
    assert all(i["erased"] and i["data"] == {} for i in mine)
    for version in (1, versions):
        replay = api.get(f"/cases/{case_id}/replay", "auditor", version=version)
        assert replay.status_code == 200, replay.text
        assert replay.json()["erased"] is True
        assert not SECTION_8 & set(replay.json())
    assert api.get(f"/cases/{case_id}/fhir", "auditor").status_code == 410
    assert (
        api.get(f"/cases/{case_id}/fhir", "auditor", type="transaction").json()["code"]
        == "case_erased"
    )
