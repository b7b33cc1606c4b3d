"""A loopback webhook receiver that verifies each delivery's signatures and answers as a test
scripts it."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

SECRET = "databricks-style plain secret"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int | None

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers from `script` in order ("drop" closes the connection without an answer; an int
    or (int, headers) answers with that status), then 200. Verifies every request's Standard
    Webhooks signature with `standardwebhooks` and its X-Databricks-Signature with hmac. With a
    `gate`, every answer waits until the gate is set: a receiver as slow as a test wants."""

    secret: str = SECRET
    script: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event | None = None

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        key: str | bytes = self.secret if self.secret.startswith("whsec_") else self.secret.encode()
        try:
            Webhook(key).verify(body, headers)
        except Exception:
            return False
        expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("x-databricks-signature", ""))

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.status is not None and 200 <= r.status < 300]


@contextlib.contextmanager
def running_receiver(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if receiver.gate is not None:
                receiver.gate.wait(timeout=120)
            with receiver.lock:
                action = receiver.script.pop(0) if receiver.script else 200
            if action == "drop":
                receiver.received.append(
                    Received(headers, body, receiver.verify(body, headers), None)
                )
                self.close_connection = True
                self.connection.shutdown(2)
                return
            status, extra = action if isinstance(action, tuple) else (action, {})
            receiver.received.append(
                Received(headers, body, receiver.verify(body, headers), status)
            )
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
