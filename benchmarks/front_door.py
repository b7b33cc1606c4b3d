"""What does the MLflow front door add to an MLflow call?

Starts the embedded stack (`signoff dev`, `benchmarks.stack`) in a temporary
directory, registers a version and stores a 10 MB artifact in MLflow, then, interleaved in one
run, times each call made directly to MLflow and through Signoff (with a data scientist's
token: authorized by the policy, then forwarded):

  (a) GET model-versions/get
  (b) GET get-artifact of the 10 MB file, read to the end

Prints p50/p95 of each, direct and through Signoff, and their ratios (goal for (a): ≤ 1.3×), and
the CPU a forwarded `get` costs the `signoff dev` process (API and worker) beside what one `get`
costs MLflow: on a shared machine those figures hold where the times do not.
Usage:

    python -m benchmarks.front_door [--n 200] [--downloads 30] [--warmup 10] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import httpx

from benchmarks.cpu import cpu_s, mlflow_pids
from benchmarks.report import describe_ms, percentile
from benchmarks.stack import EmbeddedStack, running_stack

SIZE = 10 * 1024 * 1024


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def get_version(client: httpx.Client, name: str, version: str) -> Callable[[], None]:
    def call() -> None:
        response = client.get(
            "/api/2.0/mlflow/model-versions/get", params={"name": name, "version": version}
        )
        response.raise_for_status()

    return call


def download(client: httpx.Client, run_id: str) -> Callable[[], None]:
    def call() -> None:
        size = 0
        params = {"run_id": run_id, "path": "ten.bin"}
        with client.stream("GET", "/get-artifact", params=params) as response:
            response.raise_for_status()
            for chunk in response.iter_raw(1024 * 1024):
                size += len(chunk)
        assert size == SIZE, size

    return call


def report(label: str, seconds: Sequence[float]) -> float:
    """Print p50/p95/mean of `seconds`; return the p50."""
    print(describe_ms(label, seconds))
    return percentile(seconds, 50)


def store_artifact(bench: EmbeddedStack, name: str, version: str) -> str:
    """A 10 MB artifact in the version's run (experiment 0: `mlflow-artifacts:/0`)."""
    run_id = bench.mlflow.get(
        "/api/2.0/mlflow/model-versions/get", params={"name": name, "version": version}
    ).json()["model_version"]["run_id"]
    bench.mlflow.put(
        f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts/ten.bin",
        content=bytes(SIZE),
    ).raise_for_status()
    return run_id


def measure(pairs: dict[str, tuple[Callable[[], None], Callable[[], None]]], n: int, warmup: int):
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
    for i in range(warmup + n):
        for label, (direct, door) in pairs.items():
            a, b = timed(direct), timed(door)
            if i >= warmup:
                times[label][0].append(a)
                times[label][1].append(b)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="measured model-versions/get pairs")
    parser.add_argument("--downloads", type=int, default=30, help="measured download pairs")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured rounds first")
    parser.add_argument("--quick", action="store_true", help="a short run: 30 gets, 5 downloads")
    args = parser.parse_args()
    if args.quick:
        args.n, args.downloads, args.warmup = 30, 5, 3

    with running_stack() as bench:
        [(name, version)] = bench.new_model()
        run_id = store_artifact(bench, name, version)
        headers = bench.token("bench", "data-scientist")
        with (
            httpx.Client(base_url=bench.mlflow_url, timeout=60) as direct,
            httpx.Client(base_url=bench.api_url, headers=headers, timeout=60) as door,
        ):
            api, mlflow = [bench.pid], mlflow_pids(bench.pid)
            before = cpu_s(api), cpu_s(mlflow)
            gets = measure(
                {"get": (get_version(direct, name, version), get_version(door, name, version))},
                args.n,
                args.warmup,
            )
            calls = args.n + args.warmup
            api_ms = (cpu_s(api) - before[0]) / calls * 1000
            mlflow_ms = (cpu_s(mlflow) - before[1]) / (2 * calls) * 1000
            downloads = measure(
                {"download": (download(direct, run_id), download(door, run_id))},
                args.downloads,
                min(args.warmup, 3),
            )
        print("\nThe front door on the embedded stack (one run, interleaved):")
        for label, (a, b) in (("model-versions/get", gets["get"]),
                              ("10 MB get-artifact", downloads["download"])):  # fmt: skip
            direct_p50 = report(f"{label}, direct to MLflow", a)
            door_p50 = report(f"{label}, through Signoff", b)
            ratio_p95 = percentile(b, 95) / percentile(a, 95)
            print(
                f"    ratio through/direct: p50 {door_p50 / direct_p50:.2f}x, p95 {ratio_p95:.2f}x"
            )
        print(
            f"  CPU a model-versions/get: the signoff dev process {api_ms:.2f} ms a forwarded "
            f"call, MLflow {mlflow_ms:.2f} ms a call" + ("" if mlflow else " (MLflow not found)")
        )


if __name__ == "__main__":
    main()
