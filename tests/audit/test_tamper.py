"""Tamper evidence: rows changed, removed, moved or re-chained behind the service's
back are found by GET /cases/{id}/verify and `ipt-workflow audit verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from ipt_workflow.application import auditing as audit
from ipt_workflow.cli.main import main
from tests.audit.conftest import (
    CHECKPOINT_KEY,
    OTHER_KEY,
    add_measures,
    app_of,
    delete_case,
    flip_byte,
    full_course,
    position,
    raw,
    rewrite,
    swap_positions,
    url_of,
)
from tests.support.api import Api, drive_to_middle

KEY = CHECKPOINT_KEY.encode()


def checkpoint(api: Api) -> int:
    taken = audit.take_checkpoint(app_of(api), KEY)
    assert taken is not None
    return taken.seq


def verify(api: Api, case_id: str | UUID) -> dict[str, Any]:
    answer = api.get(f"/cases/{case_id}/verify", "auditor")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def cli(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    key: str = CHECKPOINT_KEY,
) -> tuple[int, str]:
    """Run `ipt-workflow audit ...` in this process against the API's database."""
    monkeypatch.setenv("IPT_DATABASE_URL", url_of(api))
    monkeypatch.setenv("IPT_CHECKPOINT_KEY", key)
    capsys.readouterr()
    code = main(["audit", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


class TestIntact:
    def test_an_untouched_course_verifies_by_route_and_by_command(
        self,
        audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        case_id, _ = full_course(audit_api)
        checkpoint(audit_api)
        other = audit_api.open_case("B-2")

        result = verify(audit_api, case_id)
        code_all, out_all = cli(audit_api, monkeypatch, capsys, "verify", "--all")
        code_one, _ = cli(audit_api, monkeypatch, capsys, "verify", "--case", other)

        version = app_of(audit_api).get_case(UUID(case_id)).version
        assert result == {
            "intact": True,
            "events_checked": version,
            "first_broken_version": None,
            "snapshot_version": None,
            "checkpoint": 1,
            "problems": [],
            "erased": False,
        }
        assert (code_all, code_one) == (0, 0), out_all
        assert "intact: " in out_all
        assert "1 checkpoints" in out_all


class TestChangedRow:
    def test_changing_one_stored_event_is_named_by_its_version(
        self,
        audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        case_id, _ = full_course(audit_api)

        flip_byte(url_of(audit_api), UUID(case_id), 7)

        result = verify(audit_api, case_id)
        code, out = cli(audit_api, monkeypatch, capsys, "verify", "--case", case_id)
        code_all, out_all = cli(audit_api, monkeypatch, capsys, "verify", "--all")
        assert result["intact"] is False
        assert result["first_broken_version"] == 7
        assert result["events_checked"] == 7
        assert code == 1
        assert f"{case_id} BROKEN" in out
        assert "first broken version 7" in out
        assert code_all == 1
        assert "first broken version 7" in out_all

    def test_a_changed_snapshot_is_found_by_comparing_it_with_a_replay(
        self, audit_api: Api
    ) -> None:
        case_id = audit_api.open_case()
        drive_to_middle(audit_api, case_id)
        add_measures(audit_api, case_id, 50)
        before = verify(audit_api, case_id)

        raw(
            url_of(audit_api),
            "UPDATE {snapshots} SET state=? WHERE originator_id=?",
            raw(
                url_of(audit_api),
                "SELECT state FROM {snapshots} WHERE originator_id=?",
                UUID(case_id),
            )[0][0].replace(b'"client_age":34', b'"client_age":35'),
            UUID(case_id),
        )

        after = verify(audit_api, case_id)
        assert before["intact"] is True
        assert before["snapshot_version"] == 50
        assert after["intact"] is False
        assert after["snapshot_version"] == 50
        assert "snapshot at version 50 differs" in after["problems"][0]


class TestCheckpoints:
    def test_deleting_a_whole_case_is_caught_only_by_the_checkpoint(
        self,
        audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        kept = audit_api.open_case("A-1")
        removed = audit_api.open_case("A-2")
        drive_to_middle(audit_api, removed)
        audit_api.post(
            f"/cases/{kept}/measures",
            {"instrument": "phq9", "score": 9, "measured_on": "2026-10-01"},
        )
        checkpoint(audit_api)
        url = url_of(audit_api)
        unsigned = audit_api.open_case("A-3")

        delete_case(url, UUID(unsigned))
        code_unsigned, _ = cli(audit_api, monkeypatch, capsys, "verify", "--all")
        delete_case(url, UUID(removed))
        code, out = cli(audit_api, monkeypatch, capsys, "verify", "--all")
        one, out_one = cli(audit_api, monkeypatch, capsys, "verify", "--case", removed)
        by_route = audit_api.get(f"/cases/{removed}/verify", "auditor")

        assert code_unsigned == 0  # after the last checkpoint only chains speak
        assert code == 1
        assert f"{removed} BROKEN: 0 events, first broken version 1" in out
        assert "is not what checkpoint #1 signed" in out
        assert kept not in out
        assert one == 1
        assert "no longer stored" in out_one
        assert by_route.status_code == 404

    def test_deleting_a_case_with_its_checkpoint_heads_is_still_caught(
        self,
        audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        audit_api.open_case("A-1")
        removed = audit_api.open_case("A-2")
        checkpoint(audit_api)
        url = url_of(audit_api)

        delete_case(url, UUID(removed))
        raw(url, "DELETE FROM {heads} WHERE aggregate_id=?", UUID(removed))
        code, out = cli(audit_api, monkeypatch, capsys, "verify", "--all")

        assert code == 1
        assert "the heads stored with checkpoint #1 have been altered" in out
        assert "is not what checkpoint #1 signed" in out

    def test_rewriting_a_case_with_a_recomputed_chain_is_caught_by_the_checkpoint(
        self,
        audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        app = app_of(audit_api)
        case_id = audit_api.open_case()
        drive_to_middle(audit_api, case_id)  # versions 1 to 7
        first = checkpoint(audit_api)
        add_measures(audit_api, case_id, 3)
        second = checkpoint(audit_api)

        rewrite(url_of(audit_api), UUID(case_id), 9, b'"score":1', b'"score":2')

        result = verify(audit_api, case_id)
        code, out = cli(audit_api, monkeypatch, capsys, "verify", "--all")
        assert (first, second) == (1, 2)
        assert app.verify_chain(UUID(case_id)).intact  # the chain alone is fooled
        assert result["intact"] is False
        assert result["first_broken_version"] == 8
        assert result["checkpoint"] == 1
        assert "checkpoint #2 recorded version 10" in result["problems"][0]
        assert code == 1
        assert "is not what checkpoint #2 signed" in out

    def test_reordering_the_log_is_caught_by_the_checkpoint(
        self,
        audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        a = audit_api.open_case("A-1")
        b = audit_api.open_case("A-2")
        checkpoint(audit_api)
        url = url_of(audit_api)

        swap_positions(url, position(url, UUID(a), 1), position(url, UUID(b), 1))
        code, out = cli(audit_api, monkeypatch, capsys, "verify", "--all")

        assert code == 1
        assert "is not what checkpoint #1 signed" in out
        assert f"{a} BROKEN" in out
        assert "it is now at" in out

    def test_an_altered_or_foreign_checkpoint_is_caught(
        self,
        sqlite_audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        api = sqlite_audit_api
        api.open_case("A-1")
        checkpoint(api)
        api.open_case("A-2")
        audit.take_checkpoint(app_of(api), OTHER_KEY.encode())
        url = url_of(api)

        foreign, out_foreign = cli(api, monkeypatch, capsys, "verify", "--all")
        raw(url, "UPDATE {checkpoints} SET log_head = log_head + 1 WHERE seq = 1")
        altered, out_altered = cli(api, monkeypatch, capsys, "verify", "--all")

        assert foreign == 1
        assert (
            "checkpoint #2 is signed with a key that is not configured" in out_foreign
        )
        assert altered == 1
        assert "checkpoint #1 has been altered" in out_altered


class TestCheckpointCommand:
    def test_the_command_signs_new_events_only_and_refuses_without_a_key(
        self,
        sqlite_audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        api = sqlite_audit_api
        api.open_case()

        first, out_first = cli(api, monkeypatch, capsys, "checkpoint")
        again, out_again = cli(api, monkeypatch, capsys, "checkpoint")
        monkeypatch.delenv("IPT_CHECKPOINT_KEY")
        capsys.readouterr()
        keyless = main(["audit", "checkpoint"])

        assert (first, again, keyless) == (0, 0, 2)
        assert out_first.startswith("checkpoint #1 at position 2: 2 events")
        assert "nothing new" in out_again
        assert "IPT_CHECKPOINT_KEY is not set" in capsys.readouterr().err

    def test_a_short_key_is_a_configuration_error(
        self,
        sqlite_audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        with pytest.raises(SystemExit) as exit_:
            cli(sqlite_audit_api, monkeypatch, capsys, "checkpoint", key="short")

        assert exit_.value.code == 2
        assert "IPT_CHECKPOINT_KEY" in capsys.readouterr().err


class TestExport:
    def test_an_export_verifies_offline_and_any_change_to_it_is_caught(
        self,
        audit_api: Api,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
    ) -> None:
        case_id = audit_api.open_case()
        drive_to_middle(audit_api, case_id)
        checkpoint(audit_api)
        path = tmp_path / "case.jsonl"

        exported, _ = cli(
            audit_api,
            monkeypatch,
            capsys,
            "export",
            "--case",
            case_id,
            "--output",
            str(path),
        )
        good, out_good = cli(
            audit_api, monkeypatch, capsys, "verify", "--file", str(path)
        )
        lines = path.read_text().splitlines(keepends=True)
        changed = tmp_path / "changed.jsonl"
        changed.write_text(
            "".join(
                [*lines[:3], lines[3].replace('"state": "', '"state": "A'), *lines[4:]]
            )
        )
        bad, out_bad = cli(
            audit_api, monkeypatch, capsys, "verify", "--file", str(changed)
        )

        assert (exported, good, bad) == (0, 0, 1)
        assert [line.split('"kind": "')[1][:5] for line in lines] == (
            ["expor"] + ["event"] * 7 + ["check", 'seal"']
        )
        assert f"{case_id} intact: 7 events" in out_good
        assert "first broken version 3" in out_bad
        assert "the seal does not match" in out_bad
