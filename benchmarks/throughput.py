"""Governed transitions per second end to end (create → approve → applied in MLflow), 16 in
flight, against MLflow's own `transition-stage` per second at the same concurrency, in one run.
Each move is a fresh version to Staging (one ML lead's approval under the default policy).

    python -m benchmarks.throughput [--total 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os

from benchmarks.cpu import CpuPerOperation
from benchmarks.load import checked, client, rate
from benchmarks.report import Figure, Goal, print_figures
from benchmarks.stack import EmbeddedStack, running_stack

CONCURRENCY = 16
SIZES = {"full": 200, "quick": 4}


async def _direct_rate(stack: EmbeddedStack, versions: list[tuple[str, str]]) -> float:
    async with client(stack.mlflow_url, CONCURRENCY) as http:

        async def move(i: int) -> None:
            name, version = versions[i]
            checked(
                await http.post(
                    "/api/2.0/mlflow/model-versions/transition-stage",
                    json={"name": name, "version": version, "stage": "Staging"},
                )
            )

        return await rate(move, total=len(versions), concurrency=CONCURRENCY)


async def _governed_rate(stack: EmbeddedStack, versions: list[tuple[str, str]]) -> float:
    lee, mia = stack.token("lee", "ml-lead"), stack.token("mia", "ml-lead")
    async with client(stack.api_url, CONCURRENCY) as http:

        async def promote(i: int) -> None:
            name, version = versions[i]
            body = {"name": name, "version": version, "stage": "Staging"}
            created = checked(
                await http.post(
                    "/api/2.0/mlflow/transition-requests/create", json=body, headers=lee
                )
            ).json()["request"]
            answer = checked(
                await http.post(
                    "/api/2.0/mlflow/transition-requests/approve", json=body, headers=mia
                )
            ).json()["request"]
            while answer["state"] != "APPLIED":
                if answer["state"] not in ("PENDING", "APPLYING"):
                    raise RuntimeError(f"{name} v{version} ended {answer}")
                answer = checked(
                    await http.get(
                        "/api/2.0/signoff/transition-requests/wait",
                        params={"id": created["id"], "timeout_s": 30},
                        headers=mia,
                    )
                ).json()["request"]

        return await rate(promote, total=len(versions), concurrency=CONCURRENCY)


def measure(stack: EmbeddedStack, *, quick: bool = False, total: int | None = None) -> list[Figure]:
    total = total or SIZES["quick" if quick else "full"]
    versions = stack.new_versions(2 * total)
    if not quick:
        asyncio.run(_governed_rate(stack, stack.new_versions(CONCURRENCY)))  # warm up
    meter = CpuPerOperation(stack.pid)
    meter.start()
    direct = asyncio.run(_direct_rate(stack, versions[:total]))
    direct_cpu = meter.stop(total)
    meter.start()
    governed = asyncio.run(_governed_rate(stack, versions[total:]))
    governed_cpu = meter.stop(total)
    print(
        f"\nThroughput, {CONCURRENCY} in flight: MLflow transition-stage {direct:.1f}/s, "
        f"governed create → approve → applied {governed:.1f}/s"
    )
    print_cpu(direct_cpu, governed_cpu, direct)
    return [
        Figure(
            f"governed transitions/s, {CONCURRENCY} in flight",
            governed,
            "/s",
            Goal("ratio", ">=", 0.5),
            baseline=direct,
            note=f"{total} moves each; baseline: MLflow transition-stage/s",
        )
    ]


def print_cpu(direct: dict[str, float], governed: dict[str, float], direct_rate: float) -> None:
    """Where each move's CPU goes, and what the goal asks of it: at half MLflow's rate, the
    machine's cores allow so many milliseconds of CPU per governed move, all processes
    together. What stands between the governed rate and the goal, whatever the latency."""
    cores = os.cpu_count() or 1
    print("CPU per move, by process (ms):        direct transition-stage   governed move")
    for name in governed:
        print(f"  {name:<34} {direct[name]:10.1f} {governed[name]:18.1f}")
    budget = cores * 1000 / (0.5 * direct_rate)
    others = sum(ms for name, ms in governed.items() if not name.startswith("Signoff"))
    print(
        f"  0.5x MLflow's {direct_rate:.0f}/s on {cores} cores allows {budget:.0f} ms of CPU per "
        f"governed move; it spends {sum(governed.values()):.0f} ms, Temporal and MLflow "
        f"{others:.0f} ms of it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: it runs, no more")
    parser.add_argument("--total", type=int, default=None, help="moves of each kind")
    args = parser.parse_args()
    with running_stack() as stack:
        print_figures("Throughput", measure(stack, quick=args.quick, total=args.total))


if __name__ == "__main__":
    main()
