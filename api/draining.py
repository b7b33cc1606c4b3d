"""Draining: what the API does between SIGTERM and exit (`api.server` starts it).

While the process drains, calls already in flight finish (their answers carry
`Connection: close`, so no client reuses the connection), new calls are refused with 503
`TEMPORARILY_UNAVAILABLE` and `Retry-After` before anything reads them (nothing is started,
so a retry, on this or another replica, is always safe), `/readyz` answers 503 so load
balancers stop sending traffic, `/healthz` stays 200 (the process is alive), and long-polls
answer at once with the request as it stands.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import RETRY_AFTER_S, error_response

STILL_SERVED = ("/healthz", "/readyz")
"""Paths answered while draining: the probes (readiness says it drains)."""

DRAINING_MESSAGE = (
    "this Signoff API process is shutting down and accepts no new calls; nothing was done. "
    f"Retry in {RETRY_AFTER_S} s (another replica answers)"
)


def draining(app: object) -> asyncio.Event:
    """The app's draining event: set when the process begins to shut down."""
    state = app.state  # type: ignore[attr-defined]
    event: asyncio.Event | None = getattr(state, "draining", None)
    if event is None:
        event = state.draining = asyncio.Event()
    return event


class RefuseWhileDraining:
    """ASGI middleware: refuse new HTTP calls while the app drains; close connections after
    the calls in flight answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        event = draining(scope["app"])
        if event.is_set() and scope["path"] not in STILL_SERVED:
            response = error_response(
                503, DRAINING_MESSAGE, headers={"Connection": "close"}, dependency="api"
            )
            await response(scope, receive, send)
            return

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and event.is_set():
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing_send)
