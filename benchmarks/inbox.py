"""One approver's inbox (the waiting tab of the web page, `/ui/api/inbox`) at p50/p95 with
10,000 requests open and waiting for them: the figure is the call through the API; beside it,
the ledger's own statements for the same page (`ledger.inbox`, what the route asks the
ledger), timed in process. The requests are written to the ledger as the workflow's opening
write stores them (`ledger.requests.record`, the path `benchmarks.seed` takes; the inbox is a
ledger query, so no workflow runs for them).

    python -m benchmarks.inbox [--waiting 10000] [--quick]
    python -m benchmarks.inbox --ledger postgresql://... [--waiting 10000]   # in process only

`--ledger`: no stack; the ledger at that URL is migrated, seeded and queried in process
(PostgreSQL, say).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from benchmarks.load import checked
from benchmarks.report import Figure, Goal, percentile, print_figures
from benchmarks.seed import request_writes
from benchmarks.stack import EmbeddedStack, running_stack
from workflows.ledger import InboxQuery, Ledger

WAITING = {"full": 10_000, "quick": 20}
CALLS = {"full": 100, "quick": 5}
RITA = InboxQuery(tab="waiting", subject="rita", roles=["risk-officer"], readable=None)
"""Rita, a risk officer (who reads every model): the seeded requests wait for her."""


async def seed_waiting(ledger: Ledger, total: int, *, parallel: int = 4) -> float:
    """`total` PENDING requests (lee's, to Production, which risk officers approve), as the
    workflow's opening ledger write stores them; returns the seconds taken."""
    started = time.perf_counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)

    async def lane() -> None:
        while not queue.empty():
            snapshot, entries = request_writes(queue.get_nowait(), prefix="waiting")[0]
            await ledger.requests.record(snapshot=snapshot, entries=entries)

    await asyncio.gather(*(lane() for _ in range(parallel)))
    return time.perf_counter() - started


async def _timed(call: Callable[[], Awaitable[object]], calls: int) -> list[float]:
    for _ in range(3):  # connections open, statements compiled
        await call()
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        timings.append(time.perf_counter() - started)
    return timings


async def in_process(ledger: Ledger, calls: int) -> tuple[list[float], dict]:
    """The route's ledger reads for Rita's first page: requests still to index, the page."""

    async def one() -> object:
        await ledger.inbox.unindexed_pending()
        return await ledger.inbox.page(RITA)

    timings = await _timed(one, calls)
    found = await ledger.inbox.page(RITA)
    return timings, {"counts": found.counts, "capped": found.capped}


def _ms(timings: list[float]) -> tuple[float, float]:
    return percentile(timings, 50) * 1000, percentile(timings, 95) * 1000


def _counted(counts: dict, capped: list[str]) -> str:
    return f"{counts['waiting']}{'+' if 'waiting' in capped else ''}"


def measure(
    stack: EmbeddedStack, *, quick: bool = False, waiting: int | None = None
) -> list[Figure]:
    total = waiting or WAITING["quick" if quick else "full"]
    calls = CALLS["quick" if quick else "full"]
    ledger = Ledger(stack.ledger_url)
    try:
        took = asyncio.run(seed_waiting(ledger, total))
        print(f"\nseeded {total} waiting requests in {took:.1f} s", flush=True)
        local, shown = asyncio.run(in_process(ledger, calls))
    finally:
        ledger.dispose()
    rita = stack.token("rita", "risk-officer")
    api, body = [], {}
    for _ in range(calls + 3):
        started = time.perf_counter()
        response = stack.api.get("/ui/api/inbox", params={"tab": "waiting"}, headers=rita)
        api.append(time.perf_counter() - started)
        body = checked(response).json()
    api = api[3:]
    (lp50, lp95), (ap50, ap95) = _ms(local), _ms(api)
    counted = _counted(body["counts"], body["counts"].get("capped", []))
    print(
        f"  inbox, waiting tab, {total} waiting: through the API p50 {ap50:.1f} ms, p95 "
        f"{ap95:.1f} ms; the ledger's statements in process p50 {lp50:.1f} ms, p95 "
        f"{lp95:.1f} ms; counted {counted} (in process {_counted(**shown)})",
        flush=True,
    )
    figure = Figure(
        f"inbox query p95 through the API, {total} waiting",
        ap95,
        "ms",
        Goal("value", "<=", 50),
        note=f"p50 {ap50:.1f} ms; the ledger's statements alone, in process: p50 {lp50:.1f} "
        f"ms, p95 {lp95:.1f} ms; the tab's count is capped at {body['counts'].get('cap')}",
    )
    return [figure]


def on_ledger(url: str, total: int, calls: int) -> Figure:
    """In process only, on the ledger at `url` (migrated and seeded here)."""

    async def run() -> tuple[list[float], dict]:
        ledger = Ledger(url)
        try:
            await ledger.migrate()
            took = await seed_waiting(ledger, total)
            print(f"\nseeded {total} waiting requests in {took:.1f} s", flush=True)
            return await in_process(ledger, calls)
        finally:
            ledger.dispose()

    timings, shown = asyncio.run(run())
    p50, p95 = _ms(timings)
    print(f"  inbox in process: p50 {p50:.1f} ms, p95 {p95:.1f} ms; counted {_counted(**shown)}")
    return Figure(
        f"inbox query p95 in process, {total} waiting",
        p95,
        "ms",
        Goal("value", "<=", 50),
        note=f"p50 {p50:.1f} ms; the ledger's statements alone",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: it runs, no more")
    parser.add_argument("--waiting", type=int, default=None, help="waiting requests to seed")
    parser.add_argument("--ledger", default=None, help="no stack: this ledger, in process")
    args = parser.parse_args()
    if args.ledger:
        total = args.waiting or WAITING["quick" if args.quick else "full"]
        figure = on_ledger(args.ledger, total, CALLS["quick" if args.quick else "full"])
        print_figures("Inbox", [figure])
        return
    with running_stack() as stack:
        print_figures("Inbox", measure(stack, quick=args.quick, waiting=args.waiting))


if __name__ == "__main__":
    main()
