"""docker-compose.yml as Compose renders it: YAML, merge keys, variable interpolation.

Interpolation follows the Compose specification ("Interpolation"): `$$` is a dollar,
`$VAR` and `${VAR}` the variable's value (empty if unset), `${VAR:-default}` and
`${VAR-default}` a default when empty/unset or unset, `${VAR:?message}` and
`${VAR?message}` an error when empty/unset or unset, `${VAR:+other}` and
`${VAR+other}` a replacement when set and non-empty, or set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA = (
    Path(__file__).resolve().parents[1] / "ops" / "compose_spec" / "compose-spec.json"
)
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|"
    r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})"
)


class MissingMandatoryValue(ValueError):
    """Raised when a `${VAR:?message}` variable is unset (or empty)."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["plain"]:
            return env.get(match["plain"], "")
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        given = env.get(name)
        empty = not given
        if op is None:
            return given or ""
        if op in (":-", "-"):
            use_default = empty if op == ":-" else given is None
            return arg if use_default else str(given)
        if op in (":?", "?"):
            missing = empty if op == ":?" else given is None
            if missing:
                raise MissingMandatoryValue(
                    f"Missing mandatory value for {name}: {arg}"
                )
            return str(given)
        present = not empty if op == ":+" else given is not None
        return arg if present else ""

    return _VARIABLE.sub(value, text)


def _walk(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _walk(item, env) for key, item in node.items()}
    return node


def render(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The file with its merge keys resolved and every variable interpolated."""
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    rendered: dict[str, Any] = _walk(loaded, env)
    return rendered


def validate(document: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless the document fits the Compose spec."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(document, schema, cls=jsonschema.Draft7Validator)
