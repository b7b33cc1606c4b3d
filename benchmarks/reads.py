"""Signoff's reads with 100,000 audit entries on the record: `transition-requests/list`,
`activities/list` and `transition-requests/search` per second, against MLflow's
`model-versions/get` per second, with the same client and concurrency, in one run. The ledger
is seeded first (`benchmarks.seed`, the path a request's own ledger writes take); the version
read has one applied and one open request of its own.

Then one approver's inbox (`/ui/api/inbox`, the waiting tab) at p95 with 10,000 requests open
and waiting for them, written to the ledger as the workflow's opening write is (the inbox is a
ledger query: no workflow runs for them).

    python -m benchmarks.reads [--entries 100000] [--waiting 10000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import httpx

from benchmarks.cpu import cpu_s, mlflow_pids
from benchmarks.load import checked, client, rate
from benchmarks.report import Figure, Goal, percentile, print_figures
from benchmarks.seed import request_writes, seed
from benchmarks.stack import EmbeddedStack, running_stack, wait_for_entries
from workflows.ledger import Ledger

CONCURRENCY = 16
SIZES = {"full": (100_000, 2000), "quick": (200, 16)}
WAITING = {"full": 10_000, "quick": 20}
INBOX_CALLS = {"full": 100, "quick": 5}


def seed_ledger(stack: EmbeddedStack, entries: int) -> None:
    async def run() -> float:
        ledger = Ledger(stack.ledger_url)
        try:
            return await seed(ledger, entries)
        finally:
            ledger.dispose()

    took = asyncio.run(run())
    print(f"\nseeded {entries} audit entries in {took:.1f} s ({entries / took:.0f}/s)")


def version_with_history(stack: EmbeddedStack) -> tuple[str, str]:
    """A version with an applied request (to Staging), then an open one (to Production, from
    Staging: opened before the move, it would be closed as superseded by it)."""
    lee, mia = stack.token("lee", "ml-lead"), stack.token("mia", "ml-lead")
    name, version = stack.new_versions(1)[0]
    staging = {"name": name, "version": version, "stage": "Staging"}
    stack.api.post(
        "/api/2.0/mlflow/transition-requests/create", json=staging, headers=lee
    ).raise_for_status()
    stack.api.post(
        "/api/2.0/mlflow/transition-requests/approve", json=staging, headers=mia
    ).raise_for_status()
    wait_for_entries(stack, name, version, 3, mia)
    stack.api.post(
        "/api/2.0/mlflow/transition-requests/create",
        json={**staging, "stage": "Production"},
        headers=lee,
    ).raise_for_status()
    listed = stack.api.get(
        "/api/2.0/mlflow/transition-requests/list",
        params={"name": name, "version": version},
        headers=mia,
    ).json()["requests"]
    if len(listed) != 1:
        raise SystemExit(f"expected one open request on {name} v{version}, found {listed}")
    return name, version


async def _rate(base_url: str, path: str, params: dict, headers: dict, calls: int) -> float:
    async with client(base_url, CONCURRENCY) as http:

        async def read(_: int) -> None:
            try:
                response = await http.get(path, params=params, headers=headers)
            except httpx.TransportError:  # a keep-alive connection the server closed: once more
                response = await http.get(path, params=params, headers=headers)
            checked(response)

        await rate(read, total=CONCURRENCY, concurrency=CONCURRENCY)  # connections open
        return await rate(read, total=calls, concurrency=CONCURRENCY)


def seed_waiting(stack: EmbeddedStack, total: int, *, parallel: int = 4) -> None:
    """`total` PENDING requests (lee's, to Production, which risk officers approve), as the
    workflow's opening ledger write stores them."""

    async def run() -> None:
        ledger = Ledger(stack.ledger_url)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(total):
            queue.put_nowait(n)

        async def lane() -> None:
            while not queue.empty():
                snapshot, entries = request_writes(queue.get_nowait(), prefix="waiting")[0]
                await ledger.requests.record(snapshot=snapshot, entries=entries)

        try:
            await asyncio.gather(*(lane() for _ in range(parallel)))
        finally:
            ledger.dispose()

    asyncio.run(run())


def inbox_figure(stack: EmbeddedStack, *, quick: bool, waiting: int | None) -> Figure:
    total = waiting or WAITING["quick" if quick else "full"]
    started = time.perf_counter()
    seed_waiting(stack, total)
    print(f"\nseeded {total} waiting requests in {time.perf_counter() - started:.1f} s")
    rita = stack.token("rita", "risk-officer")
    timings, counts = [], {}
    for _ in range(INBOX_CALLS["quick" if quick else "full"]):
        started = time.perf_counter()
        response = stack.api.get("/ui/api/inbox", params={"tab": "waiting"}, headers=rita)
        timings.append(time.perf_counter() - started)
        counts = checked(response).json()["counts"]
    p50, p95 = (percentile(timings, q) * 1000 for q in (50, 95))
    shown = f"{counts['waiting']}{'+' if 'waiting' in counts.get('capped', []) else ''}"
    print(f"  inbox (waiting tab): p50 {p50:.1f} ms, p95 {p95:.1f} ms; counted {shown}")
    return Figure(
        f"inbox query p95, {total} waiting",
        p95,
        "ms",
        Goal("value", "<=", 50),
        note=f"p50 {p50:.1f} ms; the tab's count is capped at {counts.get('cap', 'no cap')}",
    )


def measure(
    stack: EmbeddedStack,
    *,
    quick: bool = False,
    entries: int | None = None,
    waiting: int | None = None,
) -> list[Figure]:
    default_entries, calls = SIZES["quick" if quick else "full"]
    seed_ledger(stack, entries or default_entries)
    name, version = version_with_history(stack)
    reader = stack.token("mia", "ml-lead")
    one = {"name": name, "version": version}
    reads = [
        ("transition-requests/list", "/api/2.0/mlflow/transition-requests/list", one),
        ("activities/list", "/api/2.0/signoff/activities/list", one),
        (
            "transition-requests/search",
            "/api/2.0/signoff/transition-requests/search",
            {"name": name},
        ),
    ]
    figures = []
    mlflow = mlflow_pids(stack.pid)
    for label, path, params in reads:
        spent = cpu_s(mlflow)
        baseline = asyncio.run(
            _rate(stack.mlflow_url, "/api/2.0/mlflow/model-versions/get", one, {}, calls)
        )
        theirs_ms = (cpu_s(mlflow) - spent) * 1000 / (calls + CONCURRENCY)
        started, spent = time.perf_counter(), cpu_s([stack.pid])
        ours = asyncio.run(_rate(stack.api_url, path, params, reader, calls))
        ours_ms = (cpu_s([stack.pid]) - spent) * 1000 / (calls + CONCURRENCY)
        theirs = f"{theirs_ms:.2f} ms" if mlflow else "n/a (not the stack's own MLflow)"
        print(
            f"  {label}: {ours:.0f}/s, {ours_ms:.2f} ms of Signoff's CPU a call; MLflow "
            f"model-versions/get {baseline:.0f}/s, {theirs} of MLflow's CPU a call "
            f"({time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.1f})"
        )
        figures.append(
            Figure(
                f"{label}/s",
                ours,
                "/s",
                Goal("ratio", ">=", 5.0),
                baseline=baseline,
                note=f"{entries or default_entries} audit entries; {CONCURRENCY} in flight; "
                f"CPU a call {ours_ms:.2f} ms (MLflow's get {theirs})",
            )
        )
    return [*figures, inbox_figure(stack, quick=quick, waiting=waiting)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: it runs, no more")
    parser.add_argument("--entries", type=int, default=None, help="audit entries to seed")
    parser.add_argument("--waiting", type=int, default=None, help="waiting requests to seed")
    args = parser.parse_args()
    with running_stack() as stack:
        figures = measure(stack, quick=args.quick, entries=args.entries, waiting=args.waiting)
        print_figures("Reads", figures)


if __name__ == "__main__":
    main()
