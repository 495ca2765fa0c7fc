"""Finding 9: HTTP that uvicorn refuses before the app is reached is problem+json too.

Raw bytes over a real socket to a real `ipt-workflow serve` process.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import Served, ServerFactory


def exchange(server: Served, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def request(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


BROKEN = [
    pytest.param(
        request("GET /healthz HTTP/1.1", "Host: x", "X-Request-ID: abc\x7fdef"),
        id="del-in-x-request-id",
    ),
    pytest.param(
        request(
            "POST /cases HTTP/1.1",
            "Host: x",
            "Content-Type: application/json",
            "Content-Length: 2",
            "Content-Length: 3",
        )
        + b"{}",
        id="duplicate-content-length",
    ),
    pytest.param(
        request("GET /healthz HTTP/1.1", "Host: x", "Bad Header: 1"), id="space-in-name"
    ),
    pytest.param(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", id="tls-hello"
    ),
]


@pytest.mark.parametrize("raw", BROKEN)
def test_a_request_uvicorn_cannot_parse_is_a_400_problem(
    servers: ServerFactory, tmp_path: Path, raw: bytes
) -> None:
    """Caught: uvicorn's own `text/plain` 400 "Invalid HTTP request received."."""
    server = servers(f"sqlite:///{tmp_path / 'ipt.db'}")

    status, headers, body = exchange(server, raw)
    problem: dict[str, Any] = json.loads(body)

    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert problem["code"] == "bad_request"
    assert problem["status"] == 400
    assert set(problem) >= {"type", "title", "status", "detail", "code"}
    assert server.get("/healthz", who=None).status_code == 200  # still serving


def test_a_request_head_over_32_kib_is_a_431_problem_refused_as_it_arrives(
    servers: ServerFactory, tmp_path: Path
) -> None:
    """Caught: a head of any size was buffered (a 1 MB Authorization header too)."""
    server = servers(f"sqlite:///{tmp_path / 'ipt.db'}")
    raw = request("GET /healthz HTTP/1.1", "Host: x", "X-Filler: " + "a" * 40_000)

    status, headers, body = exchange(server, raw)

    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "headers_too_large"
