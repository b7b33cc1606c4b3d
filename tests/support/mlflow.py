"""MLflow as tests use it: a real `mlflow server`, model versions seeded through its REST API, and
versions read back from it without going through Signoff."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import http_ok, start_process, venv_executable

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
    run_id = _seed_run(client, _seed_experiment(client), f"seed-{name}", metrics or {})
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


def _seed_experiment(client: httpx.Client) -> str:
    """The id of the experiment seeded runs go to, created on first use."""
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
    return experiment_id


def _seed_run(
    client: httpx.Client, experiment_id: str, run_name: str, metrics: dict[str, float]
) -> str:
    """A finished run with `metrics`; returns its id."""
    now = int(time.time() * 1000)
    run = _mlflow_call(
        client,
        "POST",
        "runs/create",
        json={"experiment_id": experiment_id, "start_time": now, "run_name": run_name},
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
    return run_id


def mlflow_version(mlflow_url: str, seeded: SeededVersion) -> dict[str, Any]:
    """The version as MLflow itself has it, read without going through Signoff."""
    response = httpx.get(
        f"{mlflow_url}/api/2.0/mlflow/model-versions/get",
        params={"name": seeded.name, "version": seeded.version},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["model_version"]


def stage_in_mlflow(mlflow_url: str, seeded: SeededVersion) -> str:
    return mlflow_version(mlflow_url, seeded)["current_stage"]


def start_mlflow(
    root: Path, port: int, *, proxy_artifacts: bool = False, **extra_env: str
) -> MlflowServer:
    """A real `mlflow server` on SQLite in `root`, on `port`, its artifacts under
    `root/artifacts`, with `extra_env` (MLflow's settings). With `proxy_artifacts` it serves
    them itself (`mlflow-artifacts:/`), so clients upload and download them over HTTP through
    whatever address they were given; otherwise runs write them to the directory directly.
    Start it again with the same `root` and `port` to bring it back with its data."""
    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SIGNOFF_"))} | {
        "PYTHONUNBUFFERED": "1",
        # No huey job runner: three fewer processes and nothing Signoff needs.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    direct = [] if proxy_artifacts else ["--default-artifact-root", str(artifacts)]
    cmd = [
        venv_executable("mlflow", "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        *direct,
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
        cmd,
        env=env | extra_env,
        log_path=log_path,
        ready=http_ok(f"{url}/health"),
        timeout=90,
        cwd=root,
    )
    return MlflowServer(url=url, process=proc, log_path=log_path, artifact_root=artifacts)
