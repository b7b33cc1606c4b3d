"""10,000 requests open and waiting: the resident memory of the `signoff dev` process (the API
and the worker). The requests are real, opened through the API, many at a time: each is an
alias move (`@b<n>`) on one of a few hundred versions, so MLflow needs few versions for many
requests. (One approver's inbox with 10,000 waiting is `benchmarks.inbox`'s figure; the inbox
call printed here, among requests whose workflows run, is for comparison.)

Also timed: cancelling the first requests opened, long out of the worker's cache when more are
open than it holds (each decision replays its request's history first), against cancelling the
last ones opened. `--max-cached N` runs the stack with SIGNOFF_WORKER_MAX_CACHED_WORKFLOWS=N.

    python -m benchmarks.memory [--open 10000] [--max-cached N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.load import checked, client, rate
from benchmarks.report import REPORT_ONLY, Figure, Goal, percentile, print_figures
from benchmarks.stack import EmbeddedStack, running_stack

CONCURRENCY = 16
ALIASES_PER_VERSION = 50
SIZES = {"full": 10_000, "quick": 8}


async def _open_all(
    stack: EmbeddedStack, versions: list[tuple[str, str]], total: int
) -> tuple[float, list[str]]:
    """The rate the requests opened at, and their ids in the order of their aliases."""
    lee = stack.token("lee", "ml-lead")
    ids = [""] * total
    async with client(stack.api_url, CONCURRENCY) as http:

        async def open_one(i: int) -> None:
            name, version = versions[i // ALIASES_PER_VERSION]
            body = {"name": name, "version": version, "stage": f"@b{i}"}
            created = checked(
                await http.post(
                    "/api/2.0/mlflow/transition-requests/create", json=body, headers=lee
                )
            )
            ids[i] = created.json()["request"]["id"]

        return await rate(open_one, total=total, concurrency=CONCURRENCY), ids


def _caught_up(stack: EmbeddedStack, request_id: str, timeout_s: float = 1800) -> float:
    """Seconds until the worker has pinned the artifacts of `request_id` (its workflow's first
    work, recorded in the ledger): opened faster than the worker starts them, requests queue
    in Temporal, and a decision on one waits its turn behind them."""
    mia, started = stack.token("mia", "ml-lead"), time.monotonic()
    while time.monotonic() - started < timeout_s:
        answer = stack.api.get(
            "/api/2.0/signoff/transition-requests/get", params={"id": request_id}, headers=mia
        )
        if checked(answer).json()["request"].get("digest") is not None:
            break
        time.sleep(1)
    return time.monotonic() - started


def _inbox_p95(stack: EmbeddedStack, calls: int) -> tuple[float, int]:
    """Through the API, Rita's waiting tab: p95 in ms, and its count."""
    rita = stack.token("rita", "risk-officer")
    timings, waiting = [], 0
    for _ in range(calls):
        started = time.perf_counter()
        response = stack.api.get("/ui/api/inbox", params={"tab": "waiting"}, headers=rita)
        timings.append(time.perf_counter() - started)
        waiting = checked(response).json()["counts"]["waiting"]
    return percentile(timings, 95) * 1000, waiting


def _cancel_ms(stack: EmbeddedStack, versions: list[tuple[str, str]], which: range) -> float:
    """p50 of cancelling each request `which` names (the requester cancels it), in ms."""
    lee = stack.token("lee", "ml-lead")
    timings = []
    for i in which:
        name, version = versions[i // ALIASES_PER_VERSION]
        params = {"name": name, "version": version, "stage": f"@b{i}", "creator": "lee"}
        started = time.perf_counter()
        response = stack.api.delete(
            "/api/2.0/mlflow/transition-requests/delete", params=params, headers=lee
        )
        if response.status_code == 200:
            timings.append(time.perf_counter() - started)
        else:
            print(f"  cancelling @b{i} answered {response.status_code}: {response.text[:200]}")
    return percentile(timings, 50) * 1000 if timings else float("nan")


def _settle(stack: EmbeddedStack, seconds: float = 20) -> float:
    """RSS once the process is idle again (it stops changing, or after `seconds`)."""
    last, deadline = stack.rss_mb(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(2)
        now = stack.rss_mb()
        if abs(now - last) < 1:
            return now
        last = now
    return last


def measure(stack: EmbeddedStack, *, quick: bool = False, total: int | None = None) -> list[Figure]:
    total = total or SIZES["quick" if quick else "full"]
    before = _settle(stack, 2 if quick else 10)
    versions = stack.new_versions(-(-total // ALIASES_PER_VERSION))
    opened, ids = asyncio.run(_open_all(stack, versions, total))
    behind_s = _caught_up(stack, ids[-1])
    rss = _settle(stack, 2 if quick else 30)
    inbox_ms, waiting = _inbox_p95(stack, 5 if quick else 100)
    print(
        f"\nMemory: {total} requests opened at {opened:.1f}/s; RSS {before:.0f} MB before, "
        f"{rss:.0f} MB after ({(rss - before) * 1024 / max(total, 1):.1f} KB per open request); "
        f"inbox through the API p95 {inbox_ms:.1f} ms ({waiting} waiting; the figure is "
        f"benchmarks.inbox's); the worker started the last one {behind_s:.0f} s after the "
        "opening ended",
        flush=True,
    )
    sample = min(20, total // 2)
    oldest = _cancel_ms(stack, versions, range(sample))
    newest = _cancel_ms(stack, versions, range(total - sample, total))
    print(f"Cancel p50: one of the first opened {oldest:.1f} ms, one of the last {newest:.1f} ms")
    return [
        Figure(
            f"RSS, API + worker, {total} open",
            rss,
            "MB",
            Goal("value", "<=", 400),
            note=f"{before:.0f} MB before opening them",
        ),
        Figure("requests opened/s (seeding)", opened, "/s", REPORT_ONLY),
        Figure(
            "cancel p50, one of the first opened",
            oldest,
            "ms",
            REPORT_ONLY,
            note=f"one of the last opened: {newest:.1f} ms",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: it runs, no more")
    parser.add_argument("--open", type=int, default=None, help="requests to open")
    parser.add_argument("--max-cached", type=int, default=None, help="the worker's cache size")
    args = parser.parse_args()
    env = {}
    if args.max_cached is not None:
        env["SIGNOFF_WORKER_MAX_CACHED_WORKFLOWS"] = str(args.max_cached)
    with running_stack(env=env) as stack:
        print_figures("Memory", measure(stack, quick=args.quick, total=args.open))


if __name__ == "__main__":
    main()
