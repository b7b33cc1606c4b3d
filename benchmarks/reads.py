"""Signoff's reads with 100,000 audit entries on the record: `transition-requests/list`,
`activities/list` and `transition-requests/search` per second, against MLflow's
`model-versions/get` per second, with the same client and concurrency, in one run. The ledger
is seeded first (`benchmarks.seed`, the path a request's own ledger writes take); the version
read has one applied and one open request of its own.

One approver's inbox with 10,000 requests waiting is `benchmarks.inbox` (`run_all` runs it
right after these reads, on the same ledger).

    python -m benchmarks.reads [--entries 100000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import httpx

from benchmarks.cpu import cpu_s, mlflow_pids
from benchmarks.load import checked, client, rate
from benchmarks.report import Figure, Goal, print_figures
from benchmarks.seed import seed
from benchmarks.stack import EmbeddedStack, running_stack, wait_for_entries
from workflows.ledger import Ledger

CONCURRENCY = 16
SIZES = {"full": (100_000, 2000), "quick": (200, 16)}


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


def measure(
    stack: EmbeddedStack,
    *,
    quick: bool = False,
    entries: int | None = None,
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
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: it runs, no more")
    parser.add_argument("--entries", type=int, default=None, help="audit entries to seed")
    args = parser.parse_args()
    with running_stack() as stack:
        figures = measure(stack, quick=args.quick, entries=args.entries)
        print_figures("Reads", figures)


if __name__ == "__main__":
    main()
