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
from collections.abc import Callable

from benchmarks.load import checked
from benchmarks.report import Figure, Goal, percentile, print_figures
from benchmarks.seed import request_writes
from benchmarks.stack import EmbeddedStack, running_stack
from workflows.ledger import InboxQuery, InboxSlice, Ledger
from workflows.ledger.inbox import COUNT_CAP

WAITING = {"full": 10_000, "quick": 20}
CALLS = {"full": 100, "quick": 5}
RITA = InboxQuery(tab="waiting", subject="rita", roles=["risk-officer"], readable=None)
"""Rita, a risk officer (who reads every model): the seeded requests wait for her."""
QUIET = {"SIGNOFF_RECONCILE_INTERVAL_S": str(24 * 3600)}
"""The stack of this benchmark alone: no reconciler pass (every 5 minutes by default) while it
runs, since a pass records the seeded requests, which have no workflow, as FAILED one by one."""


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


async def _rita_page(ledger: Ledger) -> InboxSlice:
    """The route's ledger reads for Rita's first page: requests still to index, the page."""
    await ledger.inbox.unindexed_pending()
    return await ledger.inbox.page(RITA)


def _ms(timings: list[float]) -> tuple[float, float]:
    return percentile(timings, 50) * 1000, percentile(timings, 95) * 1000


def _counted(counts: dict, capped: list[str]) -> str:
    return f"{counts['waiting']}{'+' if 'waiting' in capped else ''}"


async def _interleaved(
    ledger: Ledger, api: Callable[[], dict] | None, calls: int
) -> tuple[list[float], list[float], str, str]:
    """`calls` of the ledger's reads in process and (with `api`) of the API, one after the
    other, so both see the same load; the first 3 of each (connections, compiling) untimed.
    Returns their timings and the waiting counts each found."""
    local: list[float] = []
    through_api: list[float] = []
    found, body = None, {}
    for n in range(calls + 3):
        started = time.perf_counter()
        found = await _rita_page(ledger)
        if n >= 3:
            local.append(time.perf_counter() - started)
        if api is not None:
            started = time.perf_counter()
            body = api()
            if n >= 3:
                through_api.append(time.perf_counter() - started)
    assert found is not None
    counts = body.get("counts", {})
    shown = _counted(counts, counts.get("capped", [])) if counts else "–"
    return local, through_api, _counted(found.counts, found.capped), shown


def measure(
    stack: EmbeddedStack, *, quick: bool = False, waiting: int | None = None
) -> list[Figure]:
    total = waiting or WAITING["quick" if quick else "full"]
    calls = CALLS["quick" if quick else "full"]
    rita = stack.token("rita", "risk-officer")

    def api() -> dict:
        response = stack.api.get("/ui/api/inbox", params={"tab": "waiting"}, headers=rita)
        return checked(response).json()

    async def run() -> tuple[list[float], list[float], str, str]:
        ledger = Ledger(stack.ledger_url)
        try:
            began_ms = int(time.time() * 1000)
            took = await seed_waiting(ledger, total)
            print(f"\nseeded {total} waiting requests in {took:.1f} s", flush=True)
            timed = await _interleaved(ledger, api, calls)
            if any(run.finished_ms >= began_ms for run in await ledger.runs.latest(1)):
                print(
                    "  a reconciler pass ran meanwhile: it records the seeded requests, which "
                    "have no workflow, as FAILED one by one (the figure is pessimistic; "
                    "`python -m benchmarks.inbox` runs without one)",
                    flush=True,
                )
            return timed
        finally:
            ledger.dispose()

    local, through_api, local_count, api_count = asyncio.run(run())
    (lp50, lp95), (ap50, ap95) = _ms(local), _ms(through_api)
    print(
        f"  inbox, waiting tab, {total} waiting: through the API p50 {ap50:.1f} ms, p95 "
        f"{ap95:.1f} ms; the ledger's statements in process p50 {lp50:.1f} ms, p95 "
        f"{lp95:.1f} ms; counted {api_count} (in process {local_count})",
        flush=True,
    )
    figure = Figure(
        f"inbox query p95 through the API, {total} waiting",
        ap95,
        "ms",
        Goal("value", "<=", 50),
        note=f"p50 {ap50:.1f} ms; the ledger's statements alone, in process (interleaved): "
        f"p50 {lp50:.1f} ms, p95 {lp95:.1f} ms; the tab's count stops at {COUNT_CAP}",
    )
    return [figure]


def on_ledger(url: str, total: int, calls: int) -> Figure:
    """In process only, on the ledger at `url` (migrated and seeded here)."""

    async def run() -> tuple[list[float], list[float], str, str]:
        ledger = Ledger(url)
        try:
            await ledger.migrate()
            took = await seed_waiting(ledger, total)
            print(f"\nseeded {total} waiting requests in {took:.1f} s", flush=True)
            return await _interleaved(ledger, None, calls)
        finally:
            ledger.dispose()

    timings, _, counted, _ = asyncio.run(run())
    p50, p95 = _ms(timings)
    print(f"  inbox in process: p50 {p50:.1f} ms, p95 {p95:.1f} ms; counted {counted}")
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
    with running_stack(env=QUIET) as stack:
        print_figures("Inbox", measure(stack, quick=args.quick, waiting=args.waiting))


if __name__ == "__main__":
    main()
