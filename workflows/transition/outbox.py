"""One outbox for everything a TransitionWorkflow hands on without waiting for it: the
state changes copied to the ledger and the webhook events announced."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from temporalio import workflow

T = TypeVar("T")


class Outbox(Generic[T]):
    """A queue drained in order, one batch at a time, by `send` (an activity) from a task of
    its own, so the workflow never waits on it.

    While `hold()` is true (the transition is being applied) nothing is sent: an activity
    finishing then would queue a workflow task ahead of the one that reports the applied
    transition. `close()` lets the task send what is left and end; `drained()` awaits that.
    """

    def __init__(self, send: Callable[[list[T]], Awaitable[None]], *, hold: Callable[[], bool]):
        self._send = send
        self._hold = hold
        self._items: list[T] = []
        self._batch: list[T] = []
        self._pending = False
        self._sending = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._into: Outbox[Any] | None = None

    def forward_to(self, other: Outbox[Any]) -> None:
        """From now on, what is put here is put in `other` (sent in its batches); this outbox
        is not started."""
        self._into = other
        other.put(self._items)
        self._items = []

    def put(self, items: Iterable[T]) -> None:
        if self._into is not None:
            self._into.put(items)
            return
        added = list(items)
        self._items.extend(added)
        if added:
            self._pending = True

    def changed(self) -> None:
        """There is something to send although no item was added (the ledger: the request's
        snapshot, which `send` reads when it runs)."""
        self._pending = True

    @property
    def caught_up(self) -> bool:
        """Everything put so far has been sent."""
        return not self._pending and not self._sending

    def unconfirmed(self) -> list[T]:
        """What was put and is not known to be sent yet: the batch being sent, then the rest."""
        return [*self._batch, *self._items]

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain())

    def close(self) -> None:
        self._closed = True

    async def drained(self) -> None:
        if self._task is not None:
            await self._task

    async def _drain(self) -> None:
        while True:
            await workflow.wait_condition(
                lambda: (self._pending and not self._hold()) or self._closed
            )
            if not self._pending:
                return
            self._batch, self._items, self._pending = self._items, [], False
            self._sending = True
            await self._send(self._batch)
            self._sending = False
            self._batch = []
