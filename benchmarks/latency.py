"""What the approver waits for: the approval that completes a request, from sending it to its
answer (which comes once MLflow has the version at its target), against a direct MLflow
`transition-stage` call, interleaved in one run.

  (a) direct:   POST transition-stage to MLflow (to Production, archiving others);
  (b) governed: the last approval of a Production request (quorum 2; the first approval is on
                the record before the clock starts, as approvals come minutes apart in life).

Also printed: (b) from sending to MLflow's own `last_updated_timestamp` of the version (same
clock; nothing polls MLflow while the approval is in flight).

    python -m benchmarks.latency [--n 40] [--warmup 5] [--quick]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.history import approval_phases, fetch_histories
from benchmarks.report import Figure, Goal, describe_ms, percentile, print_figures
from benchmarks.stack import EmbeddedStack, running_stack, wait_for_entries

SIZES = {"full": (40, 5), "quick": (2, 0)}


def direct(stack: EmbeddedStack, name: str, version: str) -> tuple[float, float]:
    """(the call, sent → MLflow's timestamp), in seconds."""
    sent_wall, started = time.time(), time.perf_counter()
    answer = stack.mlflow_post(
        "model-versions/transition-stage",
        {
            "name": name,
            "version": version,
            "stage": "Production",
            "archive_existing_versions": True,
        },
    )
    call = time.perf_counter() - started
    return call, answer["model_version"]["last_updated_timestamp"] / 1000 - sent_wall


def governed(stack: EmbeddedStack, name: str, version: str) -> tuple[float, float, float]:
    """(the completing approve call, sent → MLflow's timestamp, sent), in seconds."""
    body = {"name": name, "version": version, "stage": "Production"}
    lee, mia = stack.token("lee", "ml-lead"), stack.token("mia", "ml-lead")
    rita = stack.token("rita", "risk-officer")
    stack.api.post(
        "/api/2.0/mlflow/transition-requests/create", json=body, headers=lee
    ).raise_for_status()
    approve = {**body, "archive_existing_versions": True}
    stack.api.post(
        "/api/2.0/mlflow/transition-requests/approve", json=approve, headers=mia
    ).raise_for_status()
    wait_for_entries(stack, name, version, 2, mia)

    sent_wall, started = time.time(), time.perf_counter()
    response = stack.api.post(
        "/api/2.0/mlflow/transition-requests/approve", json=approve, headers=rita
    )
    call = time.perf_counter() - started
    response.raise_for_status()
    if response.json()["request"]["state"] != "APPLIED":
        raise SystemExit(f"the last approval answered {response.json()} (not APPLIED)")
    now = stack.version_of(name, version)
    if now["current_stage"] != "Production":
        raise SystemExit(f"{name} v{version} is not in Production after the last approval")
    return call, now["last_updated_timestamp"] / 1000 - sent_wall, sent_wall


def print_profile(stack: EmbeddedStack, timed: list[tuple[str, float, float]]) -> None:
    """Where the completing approval's time goes: each phase's median over the measured
    rounds, from the requests' Temporal histories."""
    histories = fetch_histories(stack, [workflow_id for workflow_id, _, _ in timed])
    phases: dict[str, list[float]] = {}
    for events, (_, sent, answered) in zip(histories, timed, strict=True):
        for phase, seconds in approval_phases(events, sent, answered).items():
            phases.setdefault(phase, []).append(seconds)
    print("\nWhere the completing approval's time goes (median of each phase, ms):")
    for phase, values in phases.items():
        print(f"  {phase:<40} {percentile(values, 50) * 1000:7.1f}  (n={len(values)})")


def measure(stack: EmbeddedStack, *, quick: bool = False, n: int | None = None) -> list[Figure]:
    rounds, warmup = SIZES["quick" if quick else "full"]
    rounds = n or rounds
    versions = stack.new_versions(2 * (rounds + warmup))
    pairs = [(versions[2 * i], versions[2 * i + 1]) for i in range(rounds + warmup)]
    direct_calls, direct_ts, governed_calls, governed_ts = [], [], [], []
    timed: list[tuple[str, float, float]] = []
    for i, (mine, theirs) in enumerate(pairs):
        call, ts = direct(stack, *theirs)
        g_call, g_ts, sent = governed(stack, *mine)
        if i >= warmup:
            direct_calls.append(call)
            direct_ts.append(ts)
            governed_calls.append(g_call)
            governed_ts.append(g_ts)
            timed.append((f"transition/{mine[0]}/{mine[1]}/Production", sent, sent + g_call))
    print_profile(stack, timed)
    print("\nApproval latency (one run, interleaved):")
    print(describe_ms("(a) direct MLflow transition-stage call", direct_calls))
    print(describe_ms("    sent → MLflow's last_updated_timestamp", direct_ts))
    print(describe_ms("(b) completing approve call (answers APPLIED)", governed_calls))
    print(describe_ms("    sent → MLflow's last_updated_timestamp", governed_ts))
    to_ms = 1000.0
    return [
        Figure(
            "approval latency p50",
            percentile(governed_calls, 50) * to_ms,
            "ms",
            Goal("ratio", "<=", 2.0),
            baseline=percentile(direct_calls, 50) * to_ms,
            note=f"sent → in MLflow p50 {percentile(governed_ts, 50) * to_ms:.1f} ms",
        ),
        Figure(
            "approval latency p95",
            percentile(governed_calls, 95) * to_ms,
            "ms",
            Goal("ratio", "<=", 3.0),
            baseline=percentile(direct_calls, 95) * to_ms,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: it runs, no more")
    parser.add_argument("--n", type=int, default=None, help="measured rounds")
    args = parser.parse_args()
    with running_stack() as stack:
        print_figures("Approval latency", measure(stack, quick=args.quick, n=args.n))


if __name__ == "__main__":
    main()
