"""How close does a governed transition get to a direct MLflow call?

Starts the embedded stack (`signoff dev`: Temporal dev server, MLflow on SQLite, worker, API)
in a temporary directory, then, interleaved in one run:

  (a) direct:   POST transition-stage to MLflow (to Production, archiving others);
  (b) governed: the last approval of a Production request (quorum 2) → the moment MLflow
                records the version in Production (its own `last_updated_timestamp`, on the
                same clock: nothing polls MLflow while the approval is in flight).

Prints p50/p95/mean of each and the ratio governed/direct. Usage:

    python benchmarks/transition_latency.py [--n 40] [--warmup 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from api.auth import issue_dev_token
from api.settings import ApiSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Bench:
    def __init__(self, root: Path) -> None:
        self.mlflow_url = f"http://127.0.0.1:{free_port()}"
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")} | {
            "SIGNOFF_DATA_DIR": str(root),
            "SIGNOFF_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "SIGNOFF_MLFLOW_TRACKING_URI": self.mlflow_url,
            "SIGNOFF_JWT_SECRET": secrets.token_urlsafe(32),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        self.log = root / "dev.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.mlflow = httpx.Client(base_url=self.mlflow_url, timeout=30)
        self.api = httpx.Client(base_url=self.api_url, timeout=60)

    def start(self) -> None:
        port = self.api_url.rsplit(":", 1)[1]
        print(f"starting the embedded stack (log: {self.log}) …", flush=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "dev", "--port", port],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if self.api.get("/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise SystemExit(f"the stack did not start; see {self.log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)

    def token(self, sub: str, role: str) -> dict[str, str]:
        settings = ApiSettings(jwt_secret=self.env["SIGNOFF_JWT_SECRET"])
        return {"Authorization": f"Bearer {issue_dev_token(settings, sub, [role])}"}

    def _mlflow(self, path: str, body: dict) -> dict:
        response = self.mlflow.post(f"/api/2.0/mlflow/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def new_version(self) -> tuple[str, str]:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        self._mlflow("registered-models/create", {"name": name})
        experiment = self.mlflow.get(
            "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "Default"}
        ).json()["experiment"]["experiment_id"]
        run = self._mlflow("runs/create", {"experiment_id": experiment})["run"]["info"]["run_id"]
        version = self._mlflow(
            "model-versions/create",
            {"name": name, "source": f"runs:/{run}/model", "run_id": run},
        )["model_version"]["version"]
        return name, str(version)

    def direct(self) -> tuple[float, float]:
        """Returns (the call, from sending it to MLflow's own update time of the version)."""
        name, version = self.new_version()
        sent_wall = time.time()
        started = time.perf_counter()
        answer = self._mlflow(
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

    def wait_for_record(
        self, name: str, version: str, *, entries: int, headers: dict[str, str]
    ) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = self.api.get(
                "/api/2.0/signoff/activities/list",
                params={"name": name, "version": version},
                headers=headers,
            ).json()["activities"]
            if len(listed) >= entries:
                return
            time.sleep(0.01)
        raise SystemExit(f"the ledger never recorded {entries} entries for {name} v{version}")

    def governed(self) -> tuple[float, float]:
        """Returns (from sending the last approval to MLflow's own update time of the version,
        the approve call)."""
        name, version = self.new_version()
        body = {"name": name, "version": version, "stage": "Production"}
        requester, first, last = (
            self.token("lee", "ml-lead"),
            self.token("mia", "ml-lead"),
            self.token("rita", "risk-officer"),
        )
        create = self.api.post(
            "/api/2.0/mlflow/transition-requests/create", json=body, headers=requester
        )
        create.raise_for_status()
        approve = {**body, "archive_existing_versions": True}
        self.api.post(
            "/api/2.0/mlflow/transition-requests/approve", json=approve, headers=first
        ).raise_for_status()
        # Approvals come minutes apart in life: let the first one reach the ledger before the
        # clock starts, so its write is not timed as part of the last approval.
        self.wait_for_record(name, version, entries=2, headers=first)

        sent_wall = time.time()
        started = time.perf_counter()
        response = self.api.post(
            "/api/2.0/mlflow/transition-requests/approve", json=approve, headers=last
        )
        approve_call = time.perf_counter() - started
        response.raise_for_status()
        version_now = self.mlflow.get(
            "/api/2.0/mlflow/model-versions/get", params={"name": name, "version": version}
        ).json()["model_version"]
        if version_now["current_stage"] != "Production":
            raise SystemExit(f"{name} v{version} is not in Production after the last approval")
        return version_now["last_updated_timestamp"] / 1000 - sent_wall, approve_call


def report(label: str, seconds: list[float]) -> float:
    ms = [s * 1000 for s in seconds]
    p50 = percentile(ms, 50)
    print(
        f"  {label:<52} p50 {p50:7.1f} ms   p95 {percentile(ms, 95):7.1f} ms   "
        f"mean {statistics.fmean(ms):7.1f} ms   (n={len(ms)})"
    )
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="measured rounds of each")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured rounds first")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            bench.start()
            for _ in range(args.warmup):
                bench.direct()
                bench.governed()
            direct_calls: list[float] = []
            direct: list[float] = []
            governed: list[float] = []
            approve_calls: list[float] = []
            for i in range(args.n):
                call, to_production = bench.direct()
                direct_calls.append(call)
                direct.append(to_production)
                to_production, approve_call = bench.governed()
                governed.append(to_production)
                approve_calls.append(approve_call)
                print(f"\r  round {i + 1}/{args.n}", end="", flush=True)
            print("\n")
            print("Transition latency on the embedded stack (one run, interleaved):")
            call_p50 = report("(a) direct MLflow transition-stage call", direct_calls)
            direct_p50 = report("    sent → MLflow's last_updated_timestamp", direct)
            governed_p50 = report("(b) last approval sent → MLflow's timestamp", governed)
            report("    the approve call (answers after MLflow and ledger)", approve_calls)
            call_p95, governed_p95 = percentile(direct_calls, 95), percentile(governed, 95)
            print(f"\n  ratio (b)/(a) at p50: {governed_p50 / call_p50:.2f}x")
            print(f"  ratio (b)/(a) at p95: {governed_p95 / call_p95:.2f}x")
            same_span = governed_p50 / direct_p50
            print(f"  ratio (b) / (a) sent → timestamp, at p50: {same_span:.2f}x")
        finally:
            bench.stop()


if __name__ == "__main__":
    main()
