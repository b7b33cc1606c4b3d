"""Start-up of the production processes, as the image's entrypoint runs them: a bad setting stops
the process at once naming the variable (never its value), and a dependency that is not there
yet is waited for with backoff, saying which and where, until it answers or the start-up
timeout names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.mlflow_proxy import MlflowProxy
from tests.support.polling import wait_until
from tests.support.processes import free_port, log_tail, start_process, stop_process
from tests.support.stack import ENTRYPOINT
from tests.support.temporal import TemporalServer
from tests.support.tokens import TEST_JWT_SECRET

SECRET_PASSWORD = "pw-never-shown-4711"  # noqa: S105 - a test value that must not leak


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")} | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
        "SIGNOFF_DATA_DIR": str(tmp_path),
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "SIGNOFF_JWT_SECRET": TEST_JWT_SECRET,
        "SIGNOFF_HOST": "127.0.0.1",
        "SIGNOFF_PORT": str(free_port()),
        **settings,
    }


def _start(role: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(ENTRYPOINT), role], env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def test_a_bad_setting_stops_api_and_worker_at_once_naming_it(tmp_path: Path) -> None:
    cases = {
        "api": ("SIGNOFF_TEMPORAL_ADDRESS", "temporal"),
        "worker": ("SIGNOFF_DATABASE_URL", f"postgres-ish://signoff:{SECRET_PASSWORD}@db"),
    }
    runs = {
        role: _start(role, _env(tmp_path, **{variable: value}), tmp_path / f"{role}.log")
        for role, (variable, value) in cases.items()
    }
    for role, process in runs.items():
        assert process.wait(timeout=120) == 1, role
        said = (tmp_path / f"{role}.log").read_text()
        assert "invalid settings" in said and cases[role][0] in said, said
        assert SECRET_PASSWORD not in said


def test_the_worker_waits_for_postgresql_and_temporal_then_names_what_never_came(
    tmp_path: Path,
) -> None:
    port = free_port()
    database = f"postgresql+psycopg://signoff:{SECRET_PASSWORD}@127.0.0.1:{port}/signoff"
    temporal = f"127.0.0.1:{free_port()}"
    cases = {
        "postgres": (
            {"SIGNOFF_DATABASE_URL": database},
            f"waiting for PostgreSQL at postgresql+psycopg://signoff:***@127.0.0.1:{port}/signoff",
            "SIGNOFF_DATABASE_URL",
        ),
        "temporal": ({"SIGNOFF_TEMPORAL_ADDRESS": temporal}, f"waiting for Temporal at {temporal}",
                     "SIGNOFF_TEMPORAL_ADDRESS"),
    }  # fmt: skip
    runs = {}
    for name, (settings, _, _) in cases.items():
        env = _env(tmp_path / name, SIGNOFF_STARTUP_TIMEOUT_S="3", **settings)
        (tmp_path / name).mkdir()
        runs[name] = _start("worker", env, tmp_path / f"{name}.log")
    for name, (_, waiting, variable) in cases.items():
        assert runs[name].wait(timeout=120) == 1, name
        said = (tmp_path / f"{name}.log").read_text()
        assert waiting in said and "attempt 2" in said, said
        assert "did not answer within 3 s" in said and variable in said, said
        assert SECRET_PASSWORD not in said


def test_the_worker_waits_for_mlflow_and_starts_once_it_answers(
    tmp_path: Path, temporal_server: TemporalServer, proxy: MlflowProxy
) -> None:
    env = _env(
        tmp_path,
        SIGNOFF_TEMPORAL_ADDRESS=temporal_server.address,
        SIGNOFF_MLFLOW_TRACKING_URI=proxy.url,
        SIGNOFF_TASK_QUEUE=f"startup-{free_port()}",
        SIGNOFF_RECONCILE_INTERVAL_S="86400",
    )
    log = tmp_path / "worker.log"
    with proxy.down():
        worker = start_process(
            [str(ENTRYPOINT), "worker"],
            env=env,
            log_path=log,
            ready=lambda: f"waiting for MLflow at {proxy.url}" in log_tail(log, 40),
            timeout=120,
        )
    try:
        wait_until(lambda: "worker polling" in log_tail(log, 40), "the worker to start", 120)
        assert "MLflow at" in log_tail(log, 40) and "answers; going on" in log_tail(log, 40)
    finally:
        stop_process(worker)
