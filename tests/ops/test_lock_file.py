"""The Docker image installs a lock file: every runtime dependency pinned with its
hashes, the pins within pyproject.toml's ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if match := PIN.match(line):
            found[str(canonicalize_name(match.group(1)))] = str(match.group(2))
    return found


def test_every_direct_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = pins()

    outside = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or version not in requirement.specifier:
            outside.append((text, version))

    assert outside == []


def test_every_pin_carries_hashes_and_nothing_names_an_index() -> None:
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())

    assert len(entries) == len(pins()) > 20
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]
    assert "--index-url" not in text and "--extra-index-url" not in text


def test_the_image_installs_the_lock_with_hash_checking_and_nothing_else() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    installs = re.findall(r"pip install [^\n\\]*", dockerfile)
    assert all("--no-deps" in line for line in installs), installs
