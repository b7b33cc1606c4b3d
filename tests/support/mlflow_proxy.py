"""A loopback HTTP proxy in front of the test MLflow server, for the faults MLflow shows: a
refused transition, a 503, or no answer at all."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class MlflowProxy:
    """Forwards every request to MLflow; while `transition_answer` is set, answers MLflow's
    own transition-stage call with it (status, JSON body) instead; while `is_down`, drops
    every connection unanswered, as an MLflow that is down or unreachable does."""

    upstream: str
    url: str = ""
    transition_answer: tuple[int, dict[str, Any]] | None = None
    intercepted: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    """The body of every transition-stage call MLflow answered 200: the moves MLflow made."""
    is_down: bool = False
    holds: dict[str, threading.Event] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    """The paths of the calls held by `hold`, in order of arrival."""
    forwarded: list[str] = field(default_factory=list)
    """The path of every call forwarded to MLflow."""
    _hold_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def hold(self, path_suffix: str) -> Iterator[threading.Event]:
        """Hold the next call whose path ends with `path_suffix` until the test sets the event
        it is given (or the block ends), then forward it: a call in flight for exactly as long
        as a test needs. `held` grows when the call arrives."""
        release = threading.Event()
        self.holds[path_suffix] = release
        try:
            yield release
        finally:
            self.holds.pop(path_suffix, None)
            release.set()

    def _held_until(self, path: str) -> threading.Event | None:
        with self._hold_lock:
            for suffix, release in list(self.holds.items()):
                if path.endswith(suffix):
                    del self.holds[suffix]
                    self.held.append(path)
                    return release
        return None

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self.is_down = True
        try:
            yield
        finally:
            self.is_down = False

    @contextlib.contextmanager
    def answering(self, status: int, body: dict[str, Any]) -> Iterator[None]:
        self.transition_answer = (status, body)
        try:
            yield
        finally:
            self.transition_answer = None


@contextlib.contextmanager
def running_proxy(proxy: MlflowProxy) -> Iterator[MlflowProxy]:
    upstream = httpx.Client(base_url=proxy.upstream, timeout=30)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if proxy.is_down:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            answer = proxy.transition_answer
            if answer is not None and self.path.endswith("/model-versions/transition-stage"):
                proxy.intercepted.append(json.loads(body or b"{}"))
                self._answer(answer[0], json.dumps(answer[1]).encode(), "application/json")
                return
            release = proxy._held_until(self.path.split("?", 1)[0])
            if release is not None:
                release.wait(timeout=120)
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "connection")
            }
            proxy.forwarded.append(self.path.split("?", 1)[0])
            with lock:  # one httpx.Client, many handler threads
                response = upstream.request(self.command, self.path, content=body, headers=headers)
                if self.path.endswith("/transition-stage") and response.status_code == 200:
                    proxy.transitions.append(json.loads(body))
            self._answer(
                response.status_code,
                response.content,
                response.headers.get("content-type", "application/json"),
            )

        def _answer(self, status: int, content: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PATCH = do_DELETE = _forward  # noqa: N815 - the stdlib's names

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        upstream.close()
