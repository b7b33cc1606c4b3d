"""`python -m benchmarks.run_all --quick` keeps working: on the session's MLflow and Temporal
servers (which `signoff dev` reuses), at tiny sizes, it prints the summary table with every
figure of the performance goals. It asserts what is printed, never how fast anything was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mlflow import MlflowServer
from tests.support.temporal import TemporalServer

ROOT = Path(__file__).resolve().parents[2]

FIGURES = (
    "history events, applied request (2 approvals, no checks)",
    "approval latency p50",
    "approval latency p95",
    "governed transitions/s, 16 in flight",
    "transition-requests/list/s",
    "activities/list/s",
    "transition-requests/search/s",
    "RSS, API + worker",
    "inbox query p95",
)


@pytest.mark.own_ledger  # the benchmarks start their own embedded stack, on its own ledger
def test_run_all_quick_prints_every_figure(
    mlflow_server: MlflowServer, temporal_server: TemporalServer
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run_all",
            "--quick",
            "--mlflow",
            mlflow_server.url,
            "--temporal",
            temporal_server.address,
        ],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    summary = done.stdout.rsplit("Signoff performance (quick sizes", 1)[-1]
    for figure in FIGURES:
        assert figure in summary, f"{figure!r} missing from:\n{summary}"
    # The events of the history are listed by type, and each ratio has its baseline.
    assert "WORKFLOW_EXECUTION_COMPLETED" in summary
    assert "ratio >= 5" in summary and "ratio <= 2" in summary
