"""Conditional reads: `If-None-Match` against a case's ETag answers 304 (RFC 9110)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header
from fastapi.responses import Response

from ipt_workflow.api.errors import ApiError

_TAG = re.compile(r'\s*(?:W/)?"([\x21\x23-\x7e]*)"\s*')


def if_none_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description='ETags the caller holds, such as `"12"`; 304 when the case '
            "is still at one of them",
        ),
    ] = None,
) -> frozenset[str] | None:
    """The entity tags of `If-None-Match` (weak or strong), `*`, or None."""
    if value is None:
        return None
    if value.strip() == "*":
        return frozenset({"*"})
    tags = []
    for part in value.split(","):
        match = _TAG.fullmatch(part)
        if match is None:
            raise ApiError(
                400,
                "bad_request",
                'If-None-Match must list ETags such as "12", or be *.',
            )
        tags.append(match.group(1))
    return frozenset(tags)


IfNoneMatch = Annotated[frozenset[str] | None, Depends(if_none_match)]


def not_modified(held: frozenset[str] | None, version: int) -> Response | None:
    """304 with the ETag when the caller holds the current version (weak match)."""
    if held is None or ("*" not in held and str(version) not in held):
        return None
    return Response(status_code=304, headers={"ETag": f'"{version}"'})
