"""Shared fixtures: real services started as subprocesses on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# ============================================================================================
# Process helpers (reusable for any service a suite starts: MLflow, Temporal, the API, ...)
# ============================================================================================


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log_path: Path, lines: int = 60) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def http_ok(url: str, timeout: float = 1.0) -> Callable[[], bool]:
    """A `ready` probe: true once GET `url` answers 200."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def start_process(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float = 60.0,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own process group, stdout+stderr to `log_path`, and wait until
    `ready()` is true. On timeout or early exit, stop it and fail with the log's tail."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop_process reaps its children too
        )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            problem = f"exited with code {proc.returncode} before it was ready"
            break
        if ready():
            return proc
        if time.monotonic() > deadline:
            problem = f"was not ready after {timeout:g} s"
            break
        time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError(f"{cmd[0]} {problem}. Last lines of {log_path}:\n{log_tail(log_path)}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group started by `start_process`, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# ============================================================================================
# MLflow: a real `mlflow server` on SQLite, and seeded model versions
# ============================================================================================

SEED_EXPERIMENT = "signoff-tests"


@dataclass(frozen=True)
class MlflowServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    artifact_root: Path


@dataclass(frozen=True)
class SeededVersion:
    name: str
    version: str
    run_id: str


def _mlflow_executable() -> str:
    candidate = Path(sys.executable).parent / "mlflow"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("mlflow")
    if not found:
        pytest.fail("The `mlflow` executable is not installed; install signoff[dev].")
    return found


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow")
    artifacts = root / "artifacts"
    artifacts.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SIGNOFF_"))} | {
        "PYTHONUNBUFFERED": "1",
        # No huey job runner: three fewer processes and nothing Signoff needs.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        # Let MLflow's own webhooks reach receivers on loopback over plain http.
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    }
    cmd = [
        _mlflow_executable(),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root",
        str(artifacts),
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log_path = root / "mlflow-server.log"
    proc = start_process(
        cmd, env=env, log_path=log_path, ready=http_ok(f"{url}/health"), timeout=90, cwd=root
    )
    try:
        yield MlflowServer(url=url, process=proc, log_path=log_path, artifact_root=artifacts)
    finally:
        stop_process(proc)


def _mlflow_call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> dict:
    response = client.request(method, f"/api/2.0/mlflow/{path}", **kwargs)
    body = response.json() if response.content else {}
    if response.status_code != 200:
        raise RuntimeError(f"MLflow {method} {path} -> {response.status_code}: {body}")
    return body


def seed_version(
    client: httpx.Client,
    name: str | None = None,
    *,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
) -> SeededVersion:
    """Create (through MLflow's REST API) a run with `metrics`, the registered model `name`
    if missing (a fresh unique name by default) and a new version of it with `tags`.

    `client` is an `httpx.Client` whose base_url is the MLflow server."""
    name = name or f"model-{uuid.uuid4().hex[:8]}"
    response = client.get(
        "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": SEED_EXPERIMENT}
    )
    if response.status_code == 200:
        experiment_id = response.json()["experiment"]["experiment_id"]
    else:
        created = client.post("/api/2.0/mlflow/experiments/create", json={"name": SEED_EXPERIMENT})
        if created.status_code == 200:
            experiment_id = created.json()["experiment_id"]
        else:  # created concurrently
            experiment_id = _mlflow_call(
                client,
                "GET",
                "experiments/get-by-name",
                params={"experiment_name": SEED_EXPERIMENT},
            )["experiment"]["experiment_id"]

    now = int(time.time() * 1000)
    run = _mlflow_call(
        client,
        "POST",
        "runs/create",
        json={"experiment_id": experiment_id, "start_time": now, "run_name": f"seed-{name}"},
    )["run"]
    run_id = run["info"]["run_id"]
    if metrics:
        _mlflow_call(
            client,
            "POST",
            "runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": [
                    {"key": k, "value": v, "timestamp": now, "step": 0} for k, v in metrics.items()
                ],
            },
        )
    _mlflow_call(
        client,
        "POST",
        "runs/update",
        json={"run_id": run_id, "status": "FINISHED", "end_time": now},
    )

    created = client.post("/api/2.0/mlflow/registered-models/create", json={"name": name})
    if created.status_code != 200 and created.json().get("error_code") != "RESOURCE_ALREADY_EXISTS":
        raise RuntimeError(f"MLflow registered-models/create -> {created.text}")

    # MLflow 3 accepts a `runs:/<run_id>/...` source only together with the same run_id (a local
    # path source must lie inside the run's artifact directory).
    version = _mlflow_call(
        client,
        "POST",
        "model-versions/create",
        json={
            "name": name,
            "source": f"runs:/{run_id}/model",
            "run_id": run_id,
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        },
    )["model_version"]
    return SeededVersion(name=name, version=str(version["version"]), run_id=run_id)


@pytest.fixture
def make_version(mlflow_server: MlflowServer) -> Iterator[Callable[..., SeededVersion]]:
    """`make_version(name=None, *, metrics=None, tags=None) -> SeededVersion` on the session's
    MLflow server. Pass the `name` of an earlier result to add another version to it."""
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as client:

        def make(
            name: str | None = None,
            *,
            metrics: dict[str, float] | None = None,
            tags: dict[str, str] | None = None,
        ) -> SeededVersion:
            return seed_version(client, name, metrics=metrics, tags=tags)

        yield make
