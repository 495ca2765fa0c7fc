"""The OpenAPI document describes every route; API keys are managed from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api

CLI = [sys.executable, "-m", "ipt_workflow.cli.main"]


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if path.startswith("/cases")
    ]


class TestOpenApiDocument:
    def test_every_request_body_has_an_example(self, sqlite_api: Api) -> None:
        doc = sqlite_api.client.get("/openapi.json").json()
        schemas = doc["components"]["schemas"]

        missing = []
        for method, path, op in _operations(doc):
            body = op.get("requestBody")
            if body is None:
                continue
            ref = body["content"]["application/json"]["schema"]
            ref = ref.get("$ref") or next(
                s["$ref"] for s in ref.get("anyOf", []) if "$ref" in s
            )
            name = ref.rsplit("/", 1)[-1]
            if not schemas[name].get("examples"):
                missing.append(f"{method} {path} ({name})")

        assert missing == []

    def test_every_case_route_documents_its_problem_answers(
        self, sqlite_api: Api
    ) -> None:
        doc = sqlite_api.client.get("/openapi.json").json()

        for method, path, op in _operations(doc):
            documented = set(op["responses"])
            if (method, path) == ("get", "/cases"):  # a list: no case to be missing
                assert {"401", "403", "422"} <= documented
                continue
            assert {"401", "403", "404", "422"} <= documented, f"{method} {path}"
            problem = op["responses"]["404"]["content"]["application/problem+json"]
            assert problem["schema"]["$ref"] == "#/components/schemas/Problem"

    def test_enums_are_listed_for_coded_fields(self, sqlite_api: Api) -> None:
        schemas = sqlite_api.client.get("/openapi.json").json()["components"]["schemas"]

        assert schemas["Instrument"]["enum"] == ["phq9", "hamd17", "bdi2", "cdrsr"]
        assert "role_dispute" in schemas["ProblemArea"]["enum"]
        assert schemas["Modality"]["enum"] == ["in_person", "video", "telephone"]


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IPT_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [*CLI, "keys", *args], env=env, capture_output=True, text=True
    )


class TestKeys:
    def test_a_key_is_printed_once_listed_without_its_token_and_revoked(
        self, tmp_path: Path
    ) -> None:
        db = tmp_path / "keys.db"

        added = _cli(
            db,
            "add",
            "--role",
            "auditor",
            "--clinic",
            "c1",
            "--clinic",
            "c2",
            "--actor",
            "aud-1",
        )
        token = added.stdout.strip()
        listed = _cli(db, "list")
        key_id = listed.stdout.split("\t")[0]
        revoked = _cli(db, "revoke", key_id)
        listed_after = _cli(db, "list")

        assert added.returncode == 0 and token.startswith("ipt_")
        assert token not in listed.stdout and token not in db.read_bytes().decode(
            "latin-1"
        )
        assert "auditor\tc1,c2\taud-1" in listed.stdout and "active" in listed.stdout
        assert revoked.returncode == 0
        assert "revoked" in listed_after.stdout

    @pytest.mark.parametrize(
        "args",
        [
            ["--role", "clinician", "--clinic", "*", "--actor", "t"],
            ["--role", "clinician", "--clinic", "a", "--clinic", "b", "--actor", "t"],
            ["--role", "ops", "--clinic", "bad clinic", "--actor", "t"],
            ["--role", "ops", "--clinic", "a", "--actor", "no spaces"],
        ],
    )
    def test_a_malformed_key_request_is_refused(
        self, tmp_path: Path, args: list[str]
    ) -> None:
        done = _cli(tmp_path / "keys.db", "add", *args)

        assert done.returncode == 2
        assert done.stdout == ""

    def test_revoking_an_unknown_key_fails(self, tmp_path: Path) -> None:
        done = _cli(tmp_path / "keys.db", "revoke", "nope")

        assert done.returncode == 1

    def test_an_admin_key_may_name_several_clinics_and_dev_has_one(
        self, tmp_path: Path
    ) -> None:
        from ipt_workflow.storage.keys import DEV_KEYS

        db = tmp_path / "keys.db"

        added = _cli(
            db, "add", "--role", "admin", "--clinic", "c1", "--clinic", "c2",
            "--actor", "clinic-admins",
        )  # fmt: skip
        listed = _cli(db, "list")

        assert added.returncode == 0, added.stderr
        assert "admin\tc1,c2\tclinic-admins" in listed.stdout
        assert DEV_KEYS["dev-admin"].role == "admin"
        assert DEV_KEYS["dev-admin"].clinics == ("demo-clinic",)


class TestRateLimit:
    def test_a_token_over_its_rate_gets_429_with_retry_after(
        self, tmp_path: Path
    ) -> None:
        from fastapi.testclient import TestClient

        from ipt_workflow.api.app import create_app
        from ipt_workflow.composition.settings import Settings

        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'r.db'}",
            dev=True,
            rate_limit_per_second=1,
            rate_limit_burst=3,
        )
        # Dev tokens are honoured only on a loopback address, from a loopback client.
        with TestClient(
            create_app(settings),
            base_url="http://127.0.0.1",
            client=("127.0.0.1", 50000),
        ) as client:
            auth = {"Authorization": "Bearer dev-ops"}
            answers = [
                client.get("/cases/00000000-0000-0000-0000-000000000000", headers=auth)
                for _ in range(4)
            ]
            other = client.get(
                "/cases/00000000-0000-0000-0000-000000000000",
                headers={"Authorization": "Bearer dev-auditor"},
            )

        assert [a.status_code for a in answers] == [403, 403, 403, 429]
        assert answers[-1].json()["code"] == "rate_limited"
        assert int(answers[-1].headers["Retry-After"]) >= 1
        assert other.status_code == 404
