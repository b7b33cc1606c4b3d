"""The front door's HTTP/1.1 transport to MLflow against loopback servers that answer as a server
may (read with h11, an independent parser): kept-alive connections reused, closed ones not, 1xx
answers skipped, chunked bodies both ways, a silent or vanished server as httpx's errors, and
no header that could split a request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import h11
import httpx
import pytest

from api.front_door.http11 import MAX_HEAD, LeanTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUT = httpx.Timeout(5.0)
LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=4)


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            self.connections += 1
            try:
                await self.handler(reader, writer)
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()


async def requests(reader: asyncio.StreamReader) -> AsyncIterator[tuple[h11.Request, bytes]]:
    """Each request on the connection, read by h11, with its body (the answers are written
    raw, so each request gets a parser of its own, fed what the last one left)."""
    connection = h11.Connection(h11.SERVER)
    while True:
        request, body = None, b""
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:
                    return
                connection.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # the client closed (or h11 waits for an answer it will not see)
                return
        assert request is not None
        yield request, body
        left = connection.trailing_data[0]
        connection = h11.Connection(h11.SERVER)
        if left:  # (b"" would tell h11 the client closed)
            connection.receive_data(left)


def answer(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode() + body


def client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url, transport=LeanTransport(timeout=TIMEOUT, limits=LIMITS), timeout=TIMEOUT
    )


async def test_a_kept_alive_connection_serves_the_next_call_and_a_closed_one_does_not() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for request, _ in requests(reader):
            close = request.target.endswith(b"close")
            writer.write(answer(request.target, *(["connection: close"] if close else [])))
            await writer.drain()
            if close:
                return

    server = Server(handler)
    async with server as url, client(url) as http:
        assert (await http.get("/a?x=1")).content == b"/a?x=1"
        assert (await http.get("/b")).content == b"/b"
        assert server.connections == 1
        assert (await http.get("/close")).content == b"/close"
        assert (await http.get("/c")).content == b"/c"
        assert server.connections == 2


async def test_informational_answers_are_skipped_and_chunked_bodies_arrive_whole() -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for request, body in requests(reader):
            received.append(body)
            assert (b"transfer-encoding", b"chunked") in request.headers
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n")
            for part in (b"hello ", b"world"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")

    async def upload() -> AsyncIterator[bytes]:
        for part in (b"a" * 70_000, b"", b"b" * 10):
            yield part

    async with Server(handler) as url, client(url) as http:
        response = await http.post("/up", content=upload())
    assert (response.status_code, response.content) == (201, b"hello world")
    assert received == [b"a" * 70_000 + b"b" * 10]


async def test_a_server_gone_before_answering_is_a_protocol_error_and_a_silent_one_times_out():
    async def vanish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await reader.read(65536)  # never answers; returns when the client gives up and closes

    async with Server(vanish) as url, client(url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/x")
    async with Server(silent) as url, client(url) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/x", timeout=httpx.Timeout(5.0, read=0.2))


async def test_a_header_that_would_split_the_request_is_never_written() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))

    async with Server(handler) as url, client(url) as http:
        with pytest.raises(httpx.LocalProtocolError):
            await http.get("/x", headers={"x-pad": "a\r\nx-injected: 1"})
    assert not any(b"x-injected" in data for data in seen)


async def test_an_answer_head_without_end_is_refused_before_it_fills_memory() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        line = b"x-filler: " + b"a" * 1000 + b"\r\n"
        with contextlib.suppress(ConnectionError):
            for _ in range(2 * MAX_HEAD // len(line)):
                writer.write(line)
                await writer.drain()

    async with Server(endless) as url, client(url) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="head is over"):
            await http.get("/x")
