"""How the API process serves HTTP: uvicorn (httptools, with a bound on request heads), and a
shutdown that drains first.

On SIGTERM `ApiServer` sets the app's draining event (`api.draining`): new calls get 503 with
`Retry-After`, `/readyz` 503, open long-polls answer at once with the request as it stands. It
keeps listening for `drain_s` (`SIGNOFF_SHUTDOWN_DRAIN_S`), the time a load balancer takes to
stop sending traffic, then runs uvicorn's graceful shutdown: stop accepting connections and
wait up to `GRACEFUL_SHUTDOWN_S` for the calls in flight. A second signal skips the rest of
the drain. SIGINT (Ctrl-C at a terminal) does not wait for `drain_s`.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.app import MAX_REQUEST_HEAD_BYTES
from api.draining import draining

MAX_UNPARSED_BYTES = 4 * MAX_REQUEST_HEAD_BYTES
"""The most bytes in a row that are not body (a request head, a chunk-size line, trailers)
the server reads before it answers 431 and closes the connection: heads between
`MAX_REQUEST_HEAD_BYTES` and this get the middleware's 431 in MLflow's shape instead."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp, in C: several times cheaper a call than h11's pure
    Python) with the bound h11's `max_incomplete_event_size` gave: httptools buffers a header
    whole, however large, so a 42 MB header would sit in memory; this one counts the bytes
    received without the parser making progress (beginning or finishing a message or its head,
    or passing on body) and cuts the connection off past `MAX_UNPARSED_BYTES`. At most one read
    (256 KiB) more than that is ever buffered."""

    _unparsed = 0
    _progressed = False
    _in_message = False

    def data_received(self, data: bytes) -> None:
        self._progressed = False
        super().data_received(data)
        if self._progressed or not self._in_message:
            self._unparsed = 0
            return
        self._unparsed += len(data)
        if self._unparsed > MAX_UNPARSED_BYTES and not self.transport.is_closing():
            self._refuse()

    def _refuse(self) -> None:
        """431 in MLflow's shape, then close; a connection still answering an earlier
        (pipelined) call is closed without one."""
        self.logger.warning(
            "A request head larger than %d bytes; connection closed.", MAX_UNPARSED_BYTES
        )
        if self.cycle is None or self.cycle.response_complete:
            body = (
                b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "the request head is '
                b'larger than %d bytes"}' % MAX_UNPARSED_BYTES
            )
            self.transport.write(
                STATUS_LINE[431] + b"content-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n" % len(body) + body
            )
        self.transport.close()

    def on_message_begin(self) -> None:
        self._progressed = self._in_message = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._progressed = True
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._progressed = True
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._progressed, self._in_message = True, False
        super().on_message_complete()


SERVER_LIMITS = {"http": BoundedHttpToolsProtocol}
"""uvicorn options: the HTTP/1.1 protocol, with its bound on a request head."""

KEEP_ALIVE_S = 75
"""How long an idle kept-alive connection stays open: longer than the idle timeout of common
load balancers (60 s) and client pools (httpx: 5 s, uvicorn's own default), so a client never
sends on a connection the server is closing ("Server disconnected without sending a
response")."""

GRACEFUL_SHUTDOWN_S = 10
"""At most this long is spent finishing in-flight calls after SIGTERM."""


class ApiServer(uvicorn.Server):
    def __init__(
        self,
        app: FastAPI,
        *,
        host: str,
        port: int,
        log_level: str | None = None,
        drain_s: float = 0.0,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            # Logging is `workflows.logs`'s (JSON or text); the access lines are
            # `api.observability`'s, which never write a query string.
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            timeout_keep_alive=KEEP_ALIVE_S,
            **SERVER_LIMITS,  # type: ignore[arg-type]
        )
        super().__init__(config)
        self.app = app
        self.drain_s = drain_s
        self._drain_until: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._start_draining()
        if sig == signal.SIGTERM and self.drain_s > 0 and self._drain_until is None:
            self._captured_signals.append(sig)  # re-raised after shutdown, as uvicorn does
            self._drain_until = time.monotonic() + self.drain_s
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)

    def _start_draining(self) -> None:
        """From a signal handler: set the event on the loop's thread, waking the loop."""
        event = draining(self.app)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(event.set)
        else:
            event.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        draining(self.app).set()
        await super().shutdown(sockets)
