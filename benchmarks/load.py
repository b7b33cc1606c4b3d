"""Concurrent load: a fixed number of calls (or of whole operations) kept `concurrency` in
flight, on one asyncio event loop and one HTTP connection pool, timed as a rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx


async def rate(
    operation: Callable[[int], Awaitable[None]], *, total: int, concurrency: int
) -> float:
    """Operations per second: `operation(i)` for i in 0..total-1, `concurrency` at a time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(total):
        queue.put_nowait(index)

    async def lane() -> None:
        while not queue.empty():
            await operation(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


def client(base_url: str, concurrency: int) -> httpx.AsyncClient:
    """One client for both sides of a comparison, with a connection per lane."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits)


def checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.url} answered {response.status_code}: {response.text}"
        )
    return response
