"""An erased case is not found again: not by its client's reference, not in a FHIR
bulk export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audit.test_bulk_export import episodes_of, exported
from tests.erasure.conftest import (
    CLIENT_REF,
    COURSE,
    erase,
    erasure_settings,
    withdrawn_case,
)
from tests.support.api import Api, make_api
from tests.support.drivers import OverHttp


@pytest.fixture
def exporting_api(tmp_path: Path) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path / 'erasure.db'}"
    yield from make_api(erasure_settings(url, export_dir=str(tmp_path / "exports")))


def test_a_client_s_lookup_leaves_the_erased_case_out(erasure_api: Api) -> None:
    api = erasure_api
    erased = withdrawn_case(api)
    ended = withdrawn_case(api)
    assert erase(api, erased).status_code == 202
    again = OverHttp(api.post).open(COURSE, CLIENT_REF, "t-7")  # the client is back

    answer = api.get("/cases", "clinician", client_ref=CLIENT_REF)

    assert answer.status_code == 200, answer.text
    assert [i["id"] for i in answer.json()["items"]] == [again, ended]
    assert erased not in answer.text


def test_a_bulk_export_leaves_the_erased_case_out(exporting_api: Api) -> None:
    api = exporting_api
    erased = withdrawn_case(api)
    kept = withdrawn_case(api, "ZQ-KEEP-ME-4040")
    assert erase(api, erased).status_code == 202

    files = exported(api)

    assert episodes_of(files) == {f"urn:uuid:{kept}"}
    assert erased not in json.dumps(files)
