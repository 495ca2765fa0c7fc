"""A small `/metrics` endpoint for processes that are not the API (D86).

`ipt-workflow projections run --metrics-port N` serves the projection runners'
figures here: whether each runs, restarts, positions and lag, read at scrape time.
A webhook delivery process can serve its own the same way.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.registry import Collector

from ipt_workflow.ops.metrics import CONTENT_TYPE, exposition


class MetricsServer:
    """Serves `GET /metrics` on a port of its own, in a daemon thread."""

    def __init__(self, host: str, port: int, collector: Collector) -> None:
        self.collector = collector
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self._answer(404, b"only /metrics here\n", "text/plain")
                    return
                try:
                    body = exposition(outer.collector)
                except Exception:
                    self._answer(500, b"metrics unavailable\n", "text/plain")
                    return
                self._answer(200, body, CONTENT_TYPE)

            def _answer(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Scrapes are not worth a log line each."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
