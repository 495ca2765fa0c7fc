"""The HTTP/1.1 protocol `serve` runs: uvicorn's, with problem+json where it refuses.

uvicorn answers a request it cannot parse (a control character in a header, two
Content-Length headers, …) with a `text/plain` 400 before the app sees anything, and
buffers a request head of any size. Here such answers are RFC 9457 problems like every
other error, and a head over MAX_HEAD bytes is refused with 431 as it arrives.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 32 * 1024
"""The request line and headers together: far above any header this API reads."""

_PROBLEMS = {
    400: (
        "bad_request",
        "The request is malformed",
        "The request is not valid HTTP/1.1: a malformed request line or header, "
        "a control character in a header, or conflicting Content-Length headers.",
    ),
    431: (
        "headers_too_large",
        "The request's headers are too large",
        f"The request line and headers are over {MAX_HEAD // 1024} KiB.",
    ),
}
_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}


def problem_bytes(status: int) -> bytes:
    """The body of a problem answer given before the app is reached."""
    code, title, detail = _PROBLEMS[status]
    return json.dumps(
        {
            "type": f"/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; refusals are problem+json, heads are bounded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = MAX_HEAD - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Feed only what fits; if the head is still not complete, refuse it now
        # rather than buffer the rest.
        self._head_bytes = MAX_HEAD
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head:
            self._send_problem(431)
            return
        super().data_received(data[room:])

    def send_400_response(self, msg: str) -> None:  # noqa: ARG002 (uvicorn's text)
        self._send_problem(400)

    def _send_problem(self, status: int) -> None:
        body = problem_bytes(status)
        content = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/problem+json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
