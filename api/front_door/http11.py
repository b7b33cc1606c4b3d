"""A lean HTTP/1.1 transport for the front door's calls to MLflow: asyncio streams and
httptools' C parser under httpx's client, instead of httpcore over anyio and h11 (pure Python).
Measured on the shared machine, a forwarded call's client side cost ≈ 2.1 ms of CPU with
httpx's own transport, ≈ 0.3 ms for the bare exchange; this keeps httpx's client (requests,
auth, answers, decoding) and replaces what lies under it.

What it keeps of httpcore's behaviour: a pool of kept-alive connections per origin (at most
`max_connections`, idle ones dropped after `keepalive_expiry`), the connect, read, write and
pool timeouts (httpx's exceptions, so `Upstream` maps them as before), request bodies streamed
as httpx frames them (`Content-Length` or chunked), answers streamed as they arrive (read only
as fast as they are consumed), informational (1xx) answers skipped, TLS by the process's shared
verifying context (`workflows.tls`: what httpx builds by default). A connection closed by
MLflow before any answer raises `RemoteProtocolError`, as httpcore does (the front door retries
a read once). Header names and values holding CR, LF or NUL are refused (`LocalProtocolError`),
never written; an answer's head over `MAX_HEAD` bytes is refused.

Used only when no proxy variable is set (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`): httpx routes
through those itself, with its own transports.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from urllib.request import getproxies

import httptools
import httpx

from workflows.tls import verifying_context

READ_SIZE = 64 * 1024
MAX_HEAD = 256 * 1024
"""The most an answer's head (status line and headers, 1xx answers included) may take: past it
the answer is refused, so a broken upstream cannot fill the API's memory."""
_PROXY_SCHEMES = ("http", "https", "all")
_BAD_HEADER_BYTES = (b"\r", b"\n", b"\0")


def proxies_configured() -> bool:
    """Whether a proxy is named that httpx would route through (`HTTP_PROXY`, `HTTPS_PROXY`,
    `ALL_PROXY`, read as httpx reads them: by `urllib.request.getproxies`)."""
    return any(getproxies().get(scheme) for scheme in _PROXY_SCHEMES)


class _Answer:
    """httptools' callbacks for one answer: status, headers, body chunks as parsed. An
    informational (1xx) answer is forgotten when the one after it begins."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = self.complete = self.informational = False
        self.keep_alive = True
        self.chunks: deque[bytes] = deque()

    def on_message_begin(self) -> None:
        self.headers = []
        self.headers_done = self.complete = self.informational = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() < 200:
            self.informational = True
        else:  # asked now: llhttp forgets it once the message is complete
            self.headers_done, self.keep_alive = True, self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if not self.informational:
            self.complete = True

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as err:
            raise httpx.RemoteProtocolError("MLflow answered with a protocol upgrade") from err
        except httptools.HttpParserError as err:
            raise httpx.RemoteProtocolError(f"MLflow's answer is not valid HTTP: {err}") from err

    def reusable(self) -> bool:
        return self.complete and self.keep_alive


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def usable(self, expiry: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and time.monotonic() - self.idle_since < expiry
        )

    def close(self) -> None:
        self.writer.close()


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, timeout: httpx.Timeout, limits: httpx.Limits) -> None:
        self.timeout = timeout
        self.keepalive_expiry = limits.keepalive_expiry or 0.0
        self.max_keepalive = limits.max_keepalive_connections or 0
        self._slots = asyncio.Semaphore(limits.max_connections or 1_000_000)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        await self._acquire(timeouts.get("pool", self.timeout.pool))
        connection: _Connection | None = None
        try:
            connection = await self._connection(origin, timeouts)
            await self._send(connection, request, timeouts.get("write", self.timeout.write))
            answer = await self._head(connection, timeouts.get("read", self.timeout.read))
        except BaseException:
            if connection is not None:
                connection.close()
            self._slots.release()
            raise
        if request.method == "HEAD":  # no body follows, whatever the head says
            answer.complete, answer.keep_alive = True, False
            answer.chunks.clear()
        return httpx.Response(
            answer.parser.get_status_code(),
            headers=answer.headers,
            stream=_AnswerStream(self, origin, connection, answer, timeouts),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _acquire(self, timeout: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            return
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError as err:
            raise httpx.PoolTimeout("no connection to MLflow free in time") from err

    async def _connection(self, origin: tuple[str, str, int], timeouts: dict) -> _Connection:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            if connection.usable(self.keepalive_expiry):
                return connection
            connection.close()
        scheme, host, port = origin
        tls = verifying_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeouts.get("connect", self.timeout.connect)):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, limit=READ_SIZE * 4
                )
        except TimeoutError as err:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from err
        except OSError as err:
            raise httpx.ConnectError(str(err)) from err
        return _Connection(reader, writer)

    async def _send(self, connection: _Connection, request: httpx.Request, timeout: float) -> None:
        """The request's head and body as httpx framed it (`Content-Length`, or chunked); a
        body held whole goes out with the head in one write."""
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), request.url.raw_path)]
        chunked = False
        for name, value in request.headers.raw:
            if any(bad in name or bad in value for bad in _BAD_HEADER_BYTES):
                raise httpx.LocalProtocolError("a header name or value holds CR, LF or NUL")
            if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
            head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"\r\n")
        writer = connection.writer
        try:
            async with asyncio.timeout(timeout):
                if isinstance(request.stream, httpx.ByteStream):
                    body = b"".join([chunk async for chunk in request.stream])
                    writer.write(b"".join(head) + _framed(body, chunked, last=True))
                else:
                    writer.write(b"".join(head))
                    async for chunk in request.stream:  # type: ignore[union-attr]
                        if chunk:
                            writer.write(_framed(chunk, chunked, last=False))
                            await writer.drain()
                    if chunked:
                        writer.write(b"0\r\n\r\n")
                await writer.drain()
        except TimeoutError as err:
            raise httpx.WriteTimeout("sending to MLflow timed out") from err
        except OSError as err:
            raise httpx.WriteError(str(err)) from err

    async def _head(self, connection: _Connection, timeout: float) -> _Answer:
        """Read until an answer's head is in (past any 1xx answer)."""
        answer = _Answer()
        received = 0
        while not answer.headers_done:
            if received > MAX_HEAD:
                raise httpx.RemoteProtocolError(f"MLflow's answer head is over {MAX_HEAD} bytes")
            data = await _read(connection, timeout)
            if not data:
                what = "mid-answer" if received else "without sending a response"
                raise httpx.RemoteProtocolError(f"Server disconnected {what}")
            received += len(data)
            answer.feed(data)
        return answer

    def _release(self, origin: tuple[str, str, int], connection: _Connection | None) -> None:
        self._slots.release()
        if connection is None:
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self.max_keepalive:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)


class _AnswerStream(httpx.AsyncByteStream):
    """An answer's body as it arrives; the connection goes back to the pool once the answer is
    read to its end (closed if it is not, or if either side says so)."""

    def __init__(
        self,
        transport: LeanTransport,
        origin: tuple[str, str, int],
        connection: _Connection,
        answer: _Answer,
        timeouts: dict,
    ) -> None:
        self.transport = transport
        self.origin = origin
        self.connection: _Connection | None = connection
        self.answer = answer
        self.read_timeout = timeouts.get("read", transport.timeout.read)
        self.delimited = any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in answer.headers
        )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        answer = self.answer
        while True:
            while answer.chunks:
                yield answer.chunks.popleft()
            if answer.complete or self.connection is None:
                break
            data = await _read(self.connection, self.read_timeout)
            if not data:
                if self.delimited:
                    raise httpx.RemoteProtocolError("Server disconnected mid-answer")
                answer.complete, answer.keep_alive = True, False  # ended by the close
                break
            answer.feed(data)
        await self.aclose()

    async def aclose(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        keep = self.answer.reusable()
        if not keep:
            connection.close()
        self.transport._release(self.origin, connection if keep else None)


async def _read(connection: _Connection, timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            return await connection.reader.read(READ_SIZE)
    except TimeoutError as err:
        raise httpx.ReadTimeout("MLflow did not answer in time") from err
    except OSError as err:
        raise httpx.ReadError(str(err)) from err


def _framed(chunk: bytes, chunked: bool, *, last: bool) -> bytes:
    if not chunked:
        return chunk
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunk else b""
    return framed + b"0\r\n\r\n" if last else framed
