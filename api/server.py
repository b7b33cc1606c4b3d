"""How the API process serves HTTP: uvicorn with the request-head limits, and a shutdown that
answers the open long-polls first.

uvicorn's graceful shutdown stops accepting connections, then waits for the open ones to
finish; a `transition-requests/wait` may hold one for minutes. `ApiServer` sets the app's
draining event before that wait, so each long-poll answers at once with the request as it
stands, and the process exits within seconds of SIGTERM.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from api.app import MAX_REQUEST_HEAD_BYTES, draining

SERVER_LIMITS = {"http": "h11", "h11_max_incomplete_event_size": 4 * MAX_REQUEST_HEAD_BYTES}
"""uvicorn options: the HTTP/1.1 parser buffers at most this much of a request head (the
httptools parser, uvicorn's default when installed, has no such limit), so a 42 MB header is
cut off by the server itself; heads between `MAX_REQUEST_HEAD_BYTES` and that get the
middleware's 431 in MLflow's shape."""

GRACEFUL_SHUTDOWN_S = 10
"""At most this long is spent finishing in-flight calls after SIGTERM."""


class ApiServer(uvicorn.Server):
    def __init__(self, app: FastAPI, *, host: str, port: int, log_level: str | None = None) -> None:
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
            **SERVER_LIMITS,  # type: ignore[arg-type]
        )
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        draining(self.app).set()
        await super().shutdown(sockets)
