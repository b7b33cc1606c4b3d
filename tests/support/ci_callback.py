"""Signoff's CI callback endpoint played on loopback, and the body it accepts."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CALLBACK_BODY_KEYS = {"request_id", "check", "passed", "details_url", "summary", "callback_token"}
"""`POST /api/2.0/signoff/ci/callback`: {request_id, check, passed, details_url?, summary?,
callback_token?}."""


class Recorder:
    """Plays Signoff's callback endpoint: records each POST and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorder.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                answer = json.dumps({"ok": recorder.status == 200}).encode()
                self.send_response(recorder.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/2.0/signoff/ci/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
