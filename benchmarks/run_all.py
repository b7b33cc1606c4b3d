"""Every figure of the performance goals from one run on one embedded stack, then one summary
table (Signoff, MLflow's baseline from the same run, the ratio, the goal).

    python -m benchmarks.run_all [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from benchmarks import history, inbox, latency, memory, reads, throughput
from benchmarks.report import print_figures
from benchmarks.stack import running_stack

ORDER = (history, latency, throughput, reads, inbox, memory)
"""The inbox after the reads (its requests wait among their audit entries); memory last: it
leaves thousands of requests open."""


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{platform.machine()}, {os.cpu_count()} cores, load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI): it runs, no more")
    parser.add_argument("--mlflow", default=None, help="reuse the MLflow server at this URL")
    parser.add_argument("--temporal", default=None, help="reuse the Temporal server at host:port")
    args = parser.parse_args()
    started = time.monotonic()
    figures = []
    with running_stack(args.mlflow, args.temporal) as stack:
        print(f"stack up in {time.monotonic() - started:.0f} s", flush=True)
        for module in ORDER:
            began = time.monotonic()
            figures += module.measure(stack, quick=args.quick)
            print(f"[{module.__name__}: {time.monotonic() - began:.0f} s]", flush=True)
    print_figures(
        f"Signoff performance ({'quick' if args.quick else 'full'} sizes; {machine()}; "
        f"{time.monotonic() - started:.0f} s)",
        figures,
    )


if __name__ == "__main__":
    main()
