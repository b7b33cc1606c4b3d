"""The ledger's database going away under a running API (PostgreSQL refusing every connection
to it, as when its server restarts or a failover is under way): each call that needs it
answers 503 naming the ledger, in MLflow's shape, with Retry-After (it used to be a 500
"internal error"), and the calls after it is back work again."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.support.http import SIGNOFF, assert_error
from tests.support.mlflow import MlflowServer
from tests.support.postgres import PostgresServer
from tests.support.stack import SignoffStack, launch_api
from tests.support.temporal import TemporalServer

pytestmark = pytest.mark.own_ledger


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    postgres_server: PostgresServer,
) -> Iterator[SignoffStack]:
    stack = launch_api(
        tmp_path_factory.mktemp("ledger-down"),
        temporal_server.address,
        mlflow_server.url,
        SIGNOFF_DATABASE_URL=postgres_server.create_database(),
    )
    try:
        yield stack
    finally:
        stack.stop()


def allow_connections(server: PostgresServer, database_url: str, allowed: bool) -> None:
    """Let the ledger's database take connections or not; when not, end the ones it has."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(
        host=server.host, port=server.port, user=server.user, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_a_ledger_that_takes_no_connections_is_503_naming_it_then_works_again(
    api: SignoffStack, postgres_server: PostgresServer
) -> None:
    reads = [
        (f"{SIGNOFF}/transition-requests/search", {}),
        (f"{SIGNOFF}/audit/export", {"format": "csv"}),
        (f"{SIGNOFF}/audit/anchors/list", {}),
    ]
    with api.client("pat", "platform-admin") as pat:
        for path, params in reads:
            assert pat.get(path, params=params).status_code == 200, path

        allow_connections(postgres_server, api.database_url, False)
        try:
            for path, params in reads:
                answer = pat.get(path, params=params)
                assert_error(answer, 503, "TEMPORARILY_UNAVAILABLE")
                assert answer.json()["dependency"] == "ledger", answer.text
                assert "ledger's database (postgresql at 127.0.0.1" in answer.json()["message"]
                assert answer.headers["Retry-After"].isdigit()
            ready = httpx.get(f"{api.api_url}/readyz", timeout=30)
            assert ready.status_code == 503 and "database" in ready.json()["checks"], ready.text
        finally:
            allow_connections(postgres_server, api.database_url, True)

        for path, params in reads:
            assert pat.get(path, params=params).status_code == 200, path
