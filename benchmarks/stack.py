"""The embedded stack a benchmark runs on: `signoff dev` in a temporary directory, on free
loopback ports, with the clients, tokens and MLflow seeding the figures share."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from api.auth import issue_dev_token
from api.settings import ApiSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedStack:
    """`signoff dev` (Temporal dev server, MLflow on SQLite, worker and API in one process)."""

    def __init__(
        self, root: Path, *, mlflow_url: str | None = None, temporal_address: str | None = None
    ) -> None:
        """`mlflow_url`, `temporal_address`: servers already running, which `signoff dev`
        reuses instead of starting its own (its task queue is the stack's own either way)."""
        self.root = root
        self.mlflow_url = mlflow_url or f"http://127.0.0.1:{free_port()}"
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.temporal_address = temporal_address or f"127.0.0.1:{free_port()}"
        self.ledger_url = f"sqlite:///{root / 'signoff.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")} | {
            "SIGNOFF_DATA_DIR": str(root),
            "SIGNOFF_TEMPORAL_ADDRESS": self.temporal_address,
            "SIGNOFF_MLFLOW_TRACKING_URI": self.mlflow_url,
            "SIGNOFF_DATABASE_URL": self.ledger_url,
            "SIGNOFF_JWT_SECRET": secrets.token_urlsafe(32),
            "SIGNOFF_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # One principal makes every call of a benchmark: the per-principal limiter stays on
            # the path, with room for the rates measured (its 50/s default refused them).
            "SIGNOFF_RATE_LIMIT_PER_S": "100000",
            "SIGNOFF_RATE_LIMIT_BURST": "100000",
        }
        self.log = root / "dev.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.mlflow = httpx.Client(base_url=self.mlflow_url, timeout=60)
        self.api = httpx.Client(base_url=self.api_url, timeout=60)
        self._experiment: str | None = None

    # -- life -------------------------------------------------------------------------------

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
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if self.api.get("/readyz").status_code == 200:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise SystemExit(f"the stack did not start; see {self.log}:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.mlflow.close()
        self.api.close()

    @property
    def pid(self) -> int:
        """The `signoff dev` process: the API and the worker (not Temporal's or MLflow's)."""
        assert self.process is not None
        return self.process.pid

    def rss_mb(self) -> float:
        """Resident memory of the API-and-worker process, in MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    # -- who calls --------------------------------------------------------------------------

    def token(self, sub: str, *roles: str) -> dict[str, str]:
        settings = ApiSettings(jwt_secret=self.env["SIGNOFF_JWT_SECRET"])
        return {"Authorization": f"Bearer {issue_dev_token(settings, sub, list(roles))}"}

    # -- MLflow -----------------------------------------------------------------------------

    def mlflow_post(self, path: str, body: dict) -> dict:
        response = self.mlflow.post(f"/api/2.0/mlflow/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def experiment(self) -> str:
        if self._experiment is None:
            found = self.mlflow.get(
                "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "Default"}
            ).json()
            self._experiment = found["experiment"]["experiment_id"]
        return self._experiment

    def new_model(self, versions: int = 1) -> list[tuple[str, str]]:
        """A new registered model with `versions` versions, each from a run of its own."""
        name = f"bench-{uuid.uuid4().hex[:10]}"
        self.mlflow_post("registered-models/create", {"name": name})
        made = []
        for _ in range(versions):
            run = self.mlflow_post("runs/create", {"experiment_id": self.experiment()})
            run_id = run["run"]["info"]["run_id"]
            version = self.mlflow_post(
                "model-versions/create",
                {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
            )["model_version"]["version"]
            made.append((name, str(version)))
        return made

    def new_versions(self, count: int, *, parallel: int = 4) -> list[tuple[str, str]]:
        """`count` fresh versions, each of a model of its own (so moving one to a stage
        archives nothing else), made `parallel` at a time."""
        with ThreadPoolExecutor(parallel) as pool:
            return [made[0] for made in pool.map(lambda _: self.new_model(), range(count))]

    def version_of(self, name: str, version: str) -> dict:
        return self.mlflow.get(
            "/api/2.0/mlflow/model-versions/get", params={"name": name, "version": version}
        ).json()["model_version"]


def wait_for_entries(stack: EmbeddedStack, name: str, version: str, entries: int, headers) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = stack.api.get(
            "/api/2.0/signoff/activities/list",
            params={"name": name, "version": version},
            headers=headers,
        ).json()["activities"]
        if len(listed) >= entries:
            return
        time.sleep(0.01)
    raise SystemExit(f"the ledger never recorded {entries} entries for {name} v{version}")


@contextlib.contextmanager
def running_stack(
    mlflow_url: str | None = None,
    temporal_address: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[EmbeddedStack]:
    """`env`: settings for `signoff dev` (`SIGNOFF_*`) beyond the stack's own."""
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        stack = EmbeddedStack(Path(tmp), mlflow_url=mlflow_url, temporal_address=temporal_address)
        stack.env |= env or {}
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
