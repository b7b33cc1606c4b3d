"""Forwarding a call to MLflow and its answer back, streamed both ways.

One pooled `httpx.AsyncClient` per API process, over `api.front_door.http11`'s lean transport
(httpx's own when a proxy variable is set). The caller's credentials (bearer token, the web
page's cookie and CSRF token) never reach MLflow: Signoff's own MLflow credentials
(`SIGNOFF_MLFLOW_TOKEN`, or `SIGNOFF_MLFLOW_USERNAME`/`PASSWORD`) replace them. Request and
response bodies are passed on chunk by chunk, so an artifact of gigabytes never sits in memory;
MLflow's status, headers and error bodies come back as MLflow sent them. MLflow unreachable,
or silent past the timeouts, is `Unavailable` (503, `dependency: mlflow`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from api.front_door.http11 import LeanTransport, proxies_configured
from api.services.errors import Unavailable, UpstreamFailed
from workflows.mlflow_client import mlflow_connection
from workflows.settings import WorkerSettings
from workflows.tls import verifying_context

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "trailers", "transfer-encoding", "upgrade", "host",
    }
)  # fmt: skip
_CALLER_ONLY = frozenset({"authorization", "cookie", "x-csrf-token"})
"""Request headers that are the caller's credentials with Signoff, never MLflow's."""
_NOT_SENT = HOP_BY_HOP | _CALLER_ONLY
_ANSWER_DROPPED = frozenset({"date", "server", "set-cookie"})
_NOT_ANSWERED = HOP_BY_HOP | _ANSWER_DROPPED
_NOT_ANSWERED_REWRITTEN = _NOT_ANSWERED | {"content-length", "content-encoding"}

TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=120.0, pool=10.0)
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=4)
"""Idle connections are dropped before `mlflow server`'s uvicorn closes them (5 s by default):
a call sent on a connection the server is closing would fail with no answer."""
MAX_BUFFERED_ANSWER = 32 * 1024 * 1024
"""The largest search answer the front door reads whole to filter it."""
SMALL_ANSWER = 256 * 1024
"""An answer whose `Content-Length` is at most this is read whole and sent in one piece (most
of MLflow's JSON answers); a larger one, or one of unknown length, is streamed."""


class Upstream:
    """MLflow as the front door reaches it."""

    def __init__(self, settings: WorkerSettings) -> None:
        base_url, headers, auth = mlflow_connection(settings)
        self.url = base_url
        self._headers = headers
        lean = None if proxies_configured() else LeanTransport(timeout=TIMEOUT, limits=LIMITS)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            timeout=TIMEOUT,
            limits=LIMITS,
            follow_redirects=False,
            verify=verifying_context(),
            transport=lean,
        )

    def __repr__(self) -> str:
        return f"Upstream(url={self.url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def open(
        self,
        method: str,
        path: str,
        *,
        query: bytes,
        headers: Iterable[tuple[str, str]],
        content: bytes | AsyncIterator[bytes] | None,
        identity: bool = False,
    ) -> httpx.Response:
        """Send the call and return MLflow's answer with its body not yet read (close it).
        `identity`: ask for an uncompressed answer (one the front door reads)."""
        sent = {name: value for name, value in headers if name.lower() not in _NOT_SENT}
        sent.update(self._headers)
        if identity:
            sent["accept-encoding"] = "identity"
        url = httpx.URL(path=path, query=query)
        request = self._client.build_request(method, url, headers=sent, content=content)
        try:
            try:
                return await self._client.send(request, stream=True)
            except httpx.RemoteProtocolError:
                if method not in ("GET", "HEAD") or not (
                    content is None or isinstance(content, bytes)
                ):
                    raise
                # MLflow closed a kept-alive connection as the call went out: a read is
                # sent once more, on a fresh connection.
                return await self._client.send(request, stream=True)
        except httpx.TimeoutException as err:
            log.warning("MLflow at %s: %s %s timed out (%s)", self.url, method, path, err)
            raise Unavailable(
                "MLflow did not answer in time; retry shortly", which="mlflow"
            ) from err
        except httpx.TransportError as err:
            log.warning("MLflow at %s: %s %s failed (%r)", self.url, method, path, err)
            raise Unavailable(
                "MLflow is not reachable from Signoff just now; retry shortly", which="mlflow"
            ) from err

    async def call(
        self, method: str, path: str, params: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """A small JSON call of Signoff's own (a lookup): status and body."""
        response = await self.open(
            method,
            path,
            query=str(httpx.QueryParams(params or {})).encode(),
            headers=[("accept", "application/json")],
            content=None,
        )
        try:
            body = await read_capped(response, 1024 * 1024)
        finally:
            await response.aclose()
        try:
            parsed = httpx.Response(200, content=body).json() if body else {}
        except ValueError:
            parsed = {}
        return response.status_code, parsed if isinstance(parsed, dict) else {}


async def read_capped(response: httpx.Response, cap: int = MAX_BUFFERED_ANSWER) -> bytes:
    """The whole (decoded) body, refusing one larger than `cap`."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise UpstreamFailed(
                    f"MLflow's answer is larger than {cap // (1024 * 1024)} MiB, more than the "
                    "front door reads to filter it; ask for fewer results (max_results)",
                    which="mlflow",
                )
            chunks.append(chunk)
    except httpx.TransportError as err:
        raise Unavailable("MLflow stopped answering mid-way; retry", which="mlflow") from err
    return b"".join(chunks)


def answer_headers(response: httpx.Response, *, rewritten: bool = False) -> dict[str, str]:
    """MLflow's answer headers worth passing on; a `rewritten` body drops its length and
    encoding (the new body gets its own)."""
    dropped = _NOT_ANSWERED_REWRITTEN if rewritten else _NOT_ANSWERED
    return {k: v for k, v in response.headers.multi_items() if k.lower() not in dropped}


async def passed_on(response: httpx.Response) -> Response:
    """MLflow's answer as it came: status, headers and the raw (still encoded) body; read whole
    when MLflow says it is small (one send, none of a stream's machinery), streamed otherwise."""
    length = response.headers.get("content-length", "")
    if not (length.isdigit() and int(length) <= SMALL_ANSWER):
        return streamed(response)
    try:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    except httpx.TransportError as err:
        raise Unavailable("MLflow stopped answering mid-way; retry", which="mlflow") from err
    finally:
        await response.aclose()
    return Response(body, status_code=response.status_code, headers=answer_headers(response))


def streamed(response: httpx.Response) -> StreamingResponse:
    """MLflow's answer as it comes: status, headers and the raw (still encoded) body."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.TransportError as err:
            log.warning("MLflow's answer broke off: %r", err)

    return StreamingResponse(
        body(),
        status_code=response.status_code,
        headers=answer_headers(response),
        background=BackgroundTask(response.aclose),
    )
