"""A loopback HTTP server answering from a function and recording requests; with it, the few
Signoff API routes the CLI's client commands call."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


Responder = Callable[[Seen, int], tuple[int, dict[str, Any]]]


@dataclass
class Loopback:
    """A loopback HTTP server answering with `respond(seen, index)` and recording requests."""

    respond: Responder
    seen: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Loopback:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = Seen(
                    method=self.command,
                    path=split.path,
                    query={k: v[-1] for k, v in parse_qs(split.query).items()},
                    authorization=self.headers.get("Authorization"),
                )
                loopback.seen.append(seen)
                status, body = loopback.respond(seen, len(loopback.seen) - 1)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


REQUEST = {
    "id": "req-abc",
    "name": "fraud-detector",
    "version": "7",
    "to_stage": "Production",
    "state": "PENDING",
    "approvals": [],
    "quorum": 1,
    "checks": [],
}


def api_server(final_state: str = "APPLIED", reject_first: bool = False) -> Loopback:
    """Plays the few Signoff API routes the CLI commands below call."""

    def respond(seen: Seen, index: int) -> tuple[int, dict[str, Any]]:
        if reject_first and index == 0:
            return 401, {"error_code": "UNAUTHENTICATED", "message": "the token has expired"}
        if seen.path.endswith("/transition-requests/create"):
            return 200, {"request": REQUEST}
        if seen.path.endswith("/transition-requests/wait"):
            approvals = [{"user_id": "mia"}]
            return 200, {"request": REQUEST | {"state": final_state, "approvals": approvals}}
        if seen.path.endswith("/transition-requests/search"):
            return 200, {"requests": []}
        return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": seen.path}

    return Loopback(respond)
