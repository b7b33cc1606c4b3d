"""`signoff dev`: the whole embedded stack from one command, stopped cleanly, restartable."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import issue_dev_token
from api.settings import ApiSettings
from tests.support.mlflow import MlflowServer, seed_version
from tests.support.polling import wait_until
from tests.support.processes import free_port, http_ok, log_tail, port_open, start_process
from tests.support.temporal import TemporalServer

# `signoff dev` keeps its embedded ledger (not the `--ledger` backend).
pytestmark = pytest.mark.own_ledger


def dev_env(root: Path, temporal_address: str, mlflow_url: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")} | {
        "PYTHONUNBUFFERED": "1",
        "SIGNOFF_DATA_DIR": str(root / "data"),
        "SIGNOFF_TEMPORAL_ADDRESS": temporal_address,
        "SIGNOFF_MLFLOW_TRACKING_URI": mlflow_url,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def start_dev(env: dict[str, str], api_port: int, log: Path) -> subprocess.Popen[bytes]:
    return start_process(
        [sys.executable, "-m", "api.cli", "dev", "--port", str(api_port)],
        env=env,
        log_path=log,
        ready=http_ok(f"http://127.0.0.1:{api_port}/readyz"),
        timeout=180,
        cwd=Path(env["SIGNOFF_DATA_DIR"]).parent,
    )


def terminate(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM only the `signoff dev` process: it must stop its children itself."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def headers(sub: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_dev_token(ApiSettings(), sub, [role])}"}


def test_dev_runs_everything_and_keeps_open_requests_across_a_restart(tmp_path: Path) -> None:
    temporal_port, mlflow_port, api_port = free_port(), free_port(), free_port()
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    env = dev_env(tmp_path, f"127.0.0.1:{temporal_port}", mlflow_url)
    (tmp_path / "data").mkdir()
    log = tmp_path / "dev.log"
    api = f"http://127.0.0.1:{api_port}"

    dev = start_dev(env, api_port, log)
    try:
        printed = log.read_text()
        for label in ("API", "Web page", "OpenAPI docs", "Temporal UI", "MLflow UI"):
            assert re.search(rf"{label}\s+http://", printed), printed
        tokens = dict(re.findall(r"^\s{4}(\S+)\s+(eyJ\S+)$", printed, re.MULTILINE))
        key_file = tmp_path / "data" / "encryption.key"
        assert f"encrypted with the development key in {key_file}" in printed
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert set(tokens) == {"data-scientist", "ml-lead", "platform-admin", "risk-officer"}
        assert f"MLflow webhooks: new versions and direct changes are sent to {api}" in printed

        with httpx.Client(base_url=mlflow_url, timeout=30) as mlflow:
            version = seed_version(mlflow)
        body = {"name": version.name, "version": version.version, "stage": "Production"}
        created = httpx.post(
            f"{api}/api/2.0/mlflow/transition-requests/create",
            json=body,
            headers={"Authorization": f"Bearer {tokens['ml-lead']}"},
        )
        assert created.status_code == 200, created.text
        request_id = created.json()["request"]["id"]
    finally:
        assert terminate(dev) == 0, log_tail(log)
    assert not port_open("127.0.0.1", temporal_port)(), "the Temporal dev server still runs"
    assert not port_open("127.0.0.1", mlflow_port)(), "the MLflow server still runs"
    assert not port_open("127.0.0.1", api_port)(), "the API still runs"

    dev = start_dev(env, api_port, log)
    try:
        got = httpx.get(
            f"{api}/api/2.0/signoff/transition-requests/get",
            params={"id": request_id},
            headers=headers("auditor", "ml-lead"),
        )
        assert got.json()["request"]["state"] == "PENDING", got.text
        approve = body | {"archive_existing_versions": True}
        for sub, role in (("mia", "ml-lead"), ("rita", "risk-officer")):
            answer = httpx.post(
                f"{api}/api/2.0/mlflow/transition-requests/approve",
                json=approve,
                headers=headers(sub, role),
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
        stage = httpx.get(
            f"{mlflow_url}/api/2.0/mlflow/model-versions/get",
            params={"name": version.name, "version": version.version},
        ).json()["model_version"]["current_stage"]
        assert stage == "Production"

        # MLflow's webhook to Signoff survived the restart (its secret too): an alias set
        # directly in MLflow is recorded as an out-of-band change.
        assert "MLflow webhooks: already sent to" in log.read_text()
        alias = httpx.post(
            f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
            json={"name": version.name, "alias": "shadow", "version": version.version},
        )
        assert alias.status_code == 200, alias.text

        def comments() -> list[str]:
            listed = httpx.get(
                f"{api}/api/2.0/signoff/activities/list",
                params={"name": version.name, "version": version.version},
                headers=headers("auditor", "ml-lead"),
            )
            return [a.get("system_comment") or "" for a in listed.json()["activities"]]

        seen = wait_until(lambda: [c for c in comments() if "@shadow" in c], "the alias recorded")
        assert any(c.startswith("Out-of-band change") for c in seen)
    finally:
        assert terminate(dev) == 0, log_tail(log)


def run_dev(env: dict[str, str], api_port: int) -> subprocess.CompletedProcess[str]:
    """`signoff dev` expected to stop by itself (a port it cannot have)."""
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "dev", "--port", str(api_port)],
        env=env,
        cwd=Path(env["SIGNOFF_DATA_DIR"]).parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_refused_before_starting(result: subprocess.CompletedProcess[str], data: Path) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert "Press Ctrl-C" not in result.stdout
    assert "starting" not in result.stdout  # no server was started
    assert not (data / "logs").exists() and not (data / "signoff.db").exists()


def test_dev_reuses_servers_already_running_and_a_second_one_stops_on_the_busy_api_port(
    tmp_path: Path, temporal_server: TemporalServer, mlflow_server: MlflowServer
) -> None:
    env = dev_env(tmp_path, temporal_server.address, mlflow_server.url)
    (tmp_path / "data").mkdir()
    api_port = free_port()
    log = tmp_path / "dev.log"
    dev = start_dev(env, api_port, log)
    try:
        printed = log.read_text()
        assert (
            f"Temporal: reusing the Temporal server already running at {temporal_server.address}"
        ) in printed
        assert (
            f"MLflow: reusing the MLflow server already running at {mlflow_server.url}" in printed
        )
        # The fixture's Temporal runs headless: no UI to point at.
        assert "Temporal UI   (the reused Temporal server has none)" in printed

        # A second stack (its own data dir) on the same API port stops before starting anything,
        # saying what holds the port and how to move it.
        second_root = tmp_path / "second"
        second_env = dev_env(second_root, temporal_server.address, mlflow_server.url)
        (second_root / "data").mkdir(parents=True)
        second = run_dev(second_env, api_port)
        assert_refused_before_starting(second, second_root / "data")
        assert f"port {api_port} (the API, --port) is taken by a Signoff API" in second.stderr
        assert "move the API with --port, e.g. --port " in second.stderr
        assert "reusing" not in second.stdout  # said only once every port is fine
    finally:
        assert terminate(dev) == 0, log_tail(log)
    # Servers it did not start, it does not stop.
    assert temporal_server.process.poll() is None
    assert http_ok(f"{mlflow_server.url}/health")()


@pytest.mark.parametrize("command", [["worker"], ["api", "--port", "1"]])
def test_processes_refuse_the_placeholder_secret(tmp_path: Path, command: list[str]) -> None:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", *command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "SIGNOFF_JWT_SECRET is still the development placeholder" in result.stderr


class _NotAServer(BaseHTTPRequestHandler):
    """Something else entirely: an HTML page on every path."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        page = b"<!doctype html><title>not it</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def other_servers() -> Iterator[list[int]]:
    """Two ports held by HTTP servers that are neither Signoff, MLflow nor Temporal."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _NotAServer) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [server.server_address[1] for server in servers]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_dev_names_every_busy_port_what_holds_it_and_what_moves_it(
    tmp_path: Path, mlflow_server: MlflowServer, other_servers: list[int]
) -> None:
    api_port, other_mlflow_port = other_servers
    mlflow_port = int(mlflow_server.url.rsplit(":", 1)[1])
    # Temporal pointed at MLflow, MLflow pointed at something else: nothing may be reused.
    env = dev_env(tmp_path, f"127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{other_mlflow_port}")
    (tmp_path / "data").mkdir()
    result = run_dev(env, api_port)
    assert_refused_before_starting(result, tmp_path / "data")
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stderr
    api, temporal, mlflow = problems
    assert f"port {api_port} (the API, --port) is taken by something that is not Signoff" in api
    assert f"pid {os.getpid()}" in api  # this test's process holds it
    assert "move the API with --port, e.g. --port " in api
    assert f"port {mlflow_port} (Temporal's frontend" in temporal
    assert "is taken by an MLflow server" in temporal
    assert (
        "point SIGNOFF_TEMPORAL_ADDRESS at a free port, e.g. SIGNOFF_TEMPORAL_ADDRESS=" in temporal
    )
    assert f"port {other_mlflow_port} (MLflow, SIGNOFF_MLFLOW_TRACKING_URI=" in mlflow
    assert "is taken by something that is not Signoff, MLflow or Temporal" in mlflow
    assert "exited with code" not in result.stderr
    assert "point SIGNOFF_MLFLOW_TRACKING_URI at a free port, e.g. " in mlflow

    # Temporal's own port free, but the port of its UI (1000 above) taken.
    ui_holder, temporal_port = _hold_port_1000_above_a_free_one()
    try:
        env = dev_env(tmp_path, f"127.0.0.1:{temporal_port}", mlflow_server.url)
        ui = run_dev(env, free_port())
    finally:
        ui_holder.shutdown()
        ui_holder.server_close()
    assert_refused_before_starting(ui, tmp_path / "data")
    assert f"port {temporal_port + 1000} (the Temporal UI" in ui.stderr
    assert "move both with SIGNOFF_TEMPORAL_ADDRESS" in ui.stderr


def _hold_port_1000_above_a_free_one() -> tuple[ThreadingHTTPServer, int]:
    for _ in range(50):
        port = free_port()
        if port + 1000 > 65535:
            continue
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port + 1000), _NotAServer)
        except OSError:
            continue
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, port
    raise AssertionError("no free port pair found")
