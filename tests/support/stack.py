"""The Signoff stack as real processes (`python -m api.cli worker` and `api`) over a real Temporal
and MLflow, configured only by SIGNOFF_* environment variables."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ledger import migrate
from tests.support.processes import (
    free_port,
    http_ok,
    log_tail,
    spawn_process,
    start_process,
    stop_process,
    wait_ready,
)
from tests.support.tokens import TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET, mint_token

ENTRYPOINT = Path(__file__).resolve().parents[2] / "infra" / "docker" / "entrypoint.sh"
"""The container image's entrypoint (`api` | `worker` | `db-upgrade`)."""


_sqlite_template: list[Path] = []
"""The SQLite ledger migrated once in this process that `sqlite_ledger` copies."""


def sqlite_ledger(root: Path) -> str:
    """A SQLite ledger in `root` with the schema at the newest migration: a copy of one migrated
    once per session, so a stack does not run every migration again at start-up."""
    if not _sqlite_template:
        template = root.parent / f"ledger-template-{uuid.uuid4().hex[:8]}.db"
        migrate(f"sqlite:///{template}")
        _sqlite_template.append(template)
    shutil.copyfile(_sqlite_template[0], root / "ledger.db")
    return f"sqlite:///{root / 'ledger.db'}"


def empty_sqlite_ledger(root: Path) -> str:
    """A SQLite ledger in `root` that the stack's own start-up migrates."""
    return f"sqlite:///{root / 'ledger.db'}"


new_ledger: Callable[[Path], str] = sqlite_ledger
"""Where each stack's ledger lives, migrated: a SQLite file in its directory, or, for the tests
that run on PostgreSQL, a fresh database on the session's PostgreSQL (set by `conftest.py`)."""


@dataclass
class SignoffStack:
    api_url: str
    env: dict[str, str]
    root: Path
    database_url: str
    mlflow_url: str
    worker: subprocess.Popen[bytes] | None = None
    api: subprocess.Popen[bytes] | None = None
    entrypoint: bool = False
    """Started as the image does (`infra/docker/entrypoint.sh worker` / `api`), else as
    `python -m api.cli worker` / `api --port N`."""

    def token(self, sub: str, *roles: str, ttl_s: int = 3600, **claims: Any) -> str:
        """A valid token for this stack (HS256, right issuer and audience)."""
        return mint_token(sub, *roles, ttl_s=ttl_s, **claims)

    def client(self, sub: str | None = None, *roles: str) -> httpx.Client:
        """An HTTP client of the API, authenticated as `sub` with `roles` (anonymous if None)."""
        headers = {"Authorization": f"Bearer {self.token(sub, *roles)}"} if sub else {}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=60)

    def command(self, role: str) -> list[str]:
        if self.entrypoint:
            return [str(ENTRYPOINT), role]
        port = self.api_url.rsplit(":", 1)[1]
        return [sys.executable, "-m", "api.cli", role, *(["--port", port] if role == "api" else [])]

    def _spawn(self, role: str) -> subprocess.Popen[bytes]:
        return spawn_process(self.command(role), env=self.env, log_path=self.root / f"{role}.log")

    def _await(self, role: str, proc: subprocess.Popen[bytes]) -> None:
        """Until the worker says it polls its task queue, the API that it is ready."""
        log_path = self.root / f"{role}.log"
        if role == "worker":
            ready = lambda: "worker polling" in log_tail(log_path, 20)  # noqa: E731
        else:
            ready = http_ok(f"{self.api_url}/readyz")
        wait_ready(proc, self.command(role), log_path=log_path, ready=ready, timeout=60)

    def start_worker(self) -> None:
        self.worker = self._spawn("worker")
        self._await("worker", self.worker)

    def start_api(self) -> None:
        self.api = self._spawn("api")
        self._await("api", self.api)

    def start(self) -> None:
        """The worker and the API, both starting at once. Only on a migrated ledger: the start-up
        of each migrates it, and two processes migrating one SQLite file race."""
        self.worker, self.api = self._spawn("worker"), self._spawn("api")
        try:
            self._await("worker", self.worker)
            self._await("api", self.api)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in (self.api, self.worker):
            if proc is not None:
                stop_process(proc)
        self.api = self.worker = None

    def kill_worker(self) -> None:
        """SIGKILL the worker: no chance to finish anything it was doing."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()
        self.worker = None


def _stack(
    root: Path,
    temporal_address: str,
    mlflow_url: str,
    port: int | None,
    extra_env: dict[str, str],
    *,
    entrypoint: bool = False,
) -> SignoffStack:
    port = port or free_port()
    database_url = extra_env.pop("SIGNOFF_DATABASE_URL", None) or new_ledger(root)
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
        | {
            "PYTHONUNBUFFERED": "1",
            "SIGNOFF_DATA_DIR": str(root),
            "SIGNOFF_DATABASE_URL": database_url,
            "SIGNOFF_TEMPORAL_ADDRESS": temporal_address,
            "SIGNOFF_TASK_QUEUE": f"signoff-tests-{uuid.uuid4().hex[:8]}",
            "SIGNOFF_MLFLOW_TRACKING_URI": mlflow_url,
            "SIGNOFF_JWT_SECRET": TEST_JWT_SECRET,
            "SIGNOFF_JWT_ISSUER": TEST_ISSUER,
            "SIGNOFF_JWT_AUDIENCE": TEST_AUDIENCE,
            # Reconciler passes only when a test asks for one: a scheduled pass in the middle of
            # a test would record the other suites' direct MLflow changes as bypasses.
            "SIGNOFF_RECONCILE_INTERVAL_S": "86400",
            # Stop at once on SIGTERM (production waits for load balancers: 5 s by default).
            "SIGNOFF_SHUTDOWN_DRAIN_S": "0",
            # Suites fire bursts from one principal (races, replicas); the limit has its own
            # test (tests/faults/test_graceful_shutdown.py).
            "SIGNOFF_RATE_LIMIT_PER_S": "0",
            # How the image's entrypoint finds the API's address and the `signoff` command.
            "SIGNOFF_HOST": "127.0.0.1",
            "SIGNOFF_PORT": str(port),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        | extra_env
    )
    return SignoffStack(
        api_url=f"http://127.0.0.1:{port}",
        env=env,
        root=root,
        database_url=database_url,
        mlflow_url=mlflow_url,
        entrypoint=entrypoint,
    )


def launch_stack(
    root: Path,
    temporal_address: str,
    mlflow_url: str,
    port: int | None = None,
    *,
    entrypoint: bool = False,
    **extra_env: str,
) -> SignoffStack:
    """Start `signoff worker` and `signoff api` as subprocesses, configured only by SIGNOFF_*
    environment variables (plus `extra_env`), with their own ledger and task queue; the API on
    `port` (default: a free one). `entrypoint`: through the image's entrypoint script."""
    migrated = "SIGNOFF_DATABASE_URL" not in extra_env
    stack = _stack(root, temporal_address, mlflow_url, port, extra_env, entrypoint=entrypoint)
    if migrated:  # a copy of a migrated ledger (`new_ledger`)
        stack.start()
    else:  # the caller's ledger, perhaps empty: the worker migrates it before the API starts
        stack.start_worker()
        stack.start_api()
    return stack


def launch_api(
    root: Path, temporal_address: str, mlflow_url: str, port: int | None = None, **extra_env: str
) -> SignoffStack:
    """`signoff api` alone (no worker), configured as `launch_stack` configures it: for what
    needs no workflow to run, such as signing in."""
    stack = _stack(root, temporal_address, mlflow_url, port, extra_env)
    stack.start_api()
    return stack


@contextlib.contextmanager
def replica(stack: SignoffStack, name: str) -> Iterator[SignoffStack]:
    """One more worker and API of `stack`, as a second pod would run them: the same settings,
    ledger, task queue, Temporal and MLflow; its own processes and logs (under `root/name`)."""
    root = stack.root / name
    root.mkdir()
    other = SignoffStack(
        api_url="",
        env=stack.env,
        root=root,
        database_url=stack.database_url,
        mlflow_url=stack.mlflow_url,
    )
    try:
        other.api_url = f"http://127.0.0.1:{free_port()}"
        other.start_worker()
        other.start_api()
        yield other
    finally:
        other.stop()


@contextlib.contextmanager
def running_stack(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    temporal_address: str,
    mlflow_url: str,
    *,
    policy: str | None = None,
    entrypoint: bool = False,
    **extra_env: str,
) -> Iterator[SignoffStack]:
    """A stack of a test module's own (with `policy`, YAML text, when given), stopped after."""
    root = tmp_path_factory.mktemp(name)
    if policy is not None:
        policy_file = root / "policy.yaml"
        policy_file.write_text(policy, encoding="utf-8")
        extra_env["SIGNOFF_POLICY_FILE"] = str(policy_file)
    stack = launch_stack(root, temporal_address, mlflow_url, entrypoint=entrypoint, **extra_env)
    try:
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def api_without_temporal(stack: SignoffStack, log_path: Path) -> Iterator[str]:
    """A second API process of `stack` (same ledger, MLflow and settings) whose Temporal is
    unreachable; yields its URL. What a user meets while Temporal is down."""
    port = free_port()
    env = stack.env | {"SIGNOFF_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    process = start_process(
        [sys.executable, "-m", "api.cli", "api", "--port", str(port)],
        env=env,
        log_path=log_path,
        ready=http_ok(f"http://127.0.0.1:{port}/healthz"),
        timeout=60,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)
