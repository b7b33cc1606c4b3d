"""Several replicas, as a bank runs Signoff: two API processes and two workers on one Temporal
server and one PostgreSQL ledger, behind no sticky load balancer. A burst of requests is
decided from both APIs at once; every request ends once in the right state, MLflow makes one
move per applied request, and the ledger holds exactly the rows the decisions imply. A wait
and a web session opened on one replica are served by the other (no per-process state)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.support.http import TRANSITIONS, create, target, wait
from tests.support.ledger import ledger_rows
from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.mlflow_proxy import MlflowProxy
from tests.support.postgres import PostgresServer
from tests.support.stack import SignoffStack, launch_stack, replica
from tests.support.temporal import TemporalServer

BURST = 200
"""Requests in the burst: 150 approved by two people (one through each API), 25 rejected,
25 cancelled by their requester."""

IN_FLIGHT = 16
RESENDS = 5
"""How often a decision whose outcome came late is sent again."""

# On PostgreSQL whatever `--ledger` says: several processes sharing SQLite is not a deployment.
pytestmark = pytest.mark.own_ledger


@dataclass
class Replicas:
    first: SignoffStack
    second: SignoffStack


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    postgres_server: PostgresServer,
    proxy: MlflowProxy,
) -> Iterator[Replicas]:
    """Two workers and two APIs sharing one PostgreSQL ledger and one task queue; MLflow is
    reached through the recording proxy, so the test counts the moves MLflow made."""
    first = launch_stack(
        tmp_path_factory.mktemp("replicas"),
        temporal_server.address,
        proxy.url,
        SIGNOFF_DATABASE_URL=postgres_server.create_database(),
        SIGNOFF_WEB_DEV_LOGIN="true",
    )
    try:
        with replica(first, "second") as second:
            yield Replicas(first, second)
    finally:
        first.stop()


def _models(mlflow_url: str, count: int) -> list[SeededVersion]:
    """`count` registered models with one version each, from one run (fast to seed)."""
    prefix = f"replica-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=mlflow_url, timeout=30) as mlflow:
        experiment = mlflow.post(
            "/api/2.0/mlflow/experiments/create", json={"name": prefix}
        ).json()["experiment_id"]
        run_id = mlflow.post(
            "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment}
        ).json()["run"]["info"]["run_id"]

        def one(index: int) -> SeededVersion:
            name = f"{prefix}-{index:03d}"
            mlflow.post("/api/2.0/mlflow/registered-models/create", json={"name": name})
            created = mlflow.post(
                "/api/2.0/mlflow/model-versions/create",
                json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
            )
            assert created.status_code == 200, created.text
            return SeededVersion(name=name, version="1", run_id=run_id)

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, range(count)))


def _decide(client: httpx.Client, action: str, seeded: SeededVersion) -> httpx.Response:
    """The decision, sent again as the API's 503 says to when the decision is recorded but its
    outcome came late (a loaded machine): the same call reports it and never counts twice,
    which the ledger's trail below checks."""
    body = target(seeded, "Production") | {"archive_existing_versions": False}
    for _ in range(RESENDS):
        answer = client.post(f"{TRANSITIONS}/{action}", json=body)
        if answer.status_code != 503 or answer.json().get("recorded") is not True:
            return answer
    return answer


def test_a_burst_decided_from_both_apis_ends_once_each(
    replicas: Replicas, proxy: MlflowProxy, mlflow_server: MlflowServer
) -> None:
    first, second = replicas.first, replicas.second
    versions = _models(mlflow_server.url, BURST)
    plan = ["APPLIED"] * 150 + ["REJECTED"] * 25 + ["CANCELLED"] * 25
    lee = [stack.client("lee", "data-scientist") for stack in (first, second)]
    mia, rita = first.client("mia", "ml-lead"), second.client("rita", "risk-officer")
    moves_before = len(proxy.transitions)

    def one(index: int) -> tuple[str, str]:
        seeded, outcome = versions[index], plan[index]
        request = create(lee[index % 2], seeded, "Production")
        if outcome == "APPLIED":
            with ThreadPoolExecutor(2) as both:
                answers = list(both.map(lambda c: _decide(c, "approve", seeded), (mia, rita)))
            assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        elif outcome == "REJECTED":
            assert _decide(rita, "reject", seeded).status_code == 200
        else:
            cancelled = lee[1 - index % 2].delete(
                f"{TRANSITIONS}/delete",
                params=target(seeded, "Production") | {"creator": "lee"},
            )
            assert cancelled.status_code == 200, cancelled.text
        # The end is awaited on the other API than the one that took the request.
        return request["id"], wait(lee[1 - index % 2], request["id"], timeout_s=120)["state"]

    try:
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            ended = list(pool.map(one, range(BURST)))
    finally:
        for client in (*lee, mia, rita):
            client.close()

    assert [state for _, state in ended] == plan
    # MLflow made exactly one move per applied request, and none for the others.
    moved = Counter(move["name"] for move in proxy.transitions[moves_before:])
    applied = {versions[i].name for i, outcome in enumerate(plan) if outcome == "APPLIED"}
    assert moved == Counter({name: 1 for name in applied})
    # The ledger: one request row each, and exactly the audit entries the decisions imply.
    expected = {
        "APPLIED": ["APPLIED_TRANSITION", "APPROVED_REQUEST", "APPROVED_REQUEST",
                    "REQUESTED_TRANSITION"],
        "REJECTED": ["REJECTED_REQUEST", "REQUESTED_TRANSITION"],
        "CANCELLED": ["CANCELLED_REQUEST", "REQUESTED_TRANSITION"],
    }  # fmt: skip
    ids = [request_id for request_id, _ in ended]
    rows = ledger_rows(
        first.database_url,
        "SELECT request_id, activity_type FROM activities WHERE request_id = ANY(:ids)",
        ids=ids,
    )
    trail: dict[str, list[str]] = {request_id: [] for request_id in ids}
    for row in rows:
        trail[row["request_id"]].append(row["activity_type"])
    assert {rid: sorted(types) for rid, types in trail.items()} == {
        rid: expected[state] for rid, state in ended
    }
    requests = ledger_rows(
        first.database_url,
        "SELECT id, state FROM transition_requests WHERE id = ANY(:ids)",
        ids=ids,
    )
    assert sorted((r["id"], r["state"]) for r in requests) == sorted(ended)


def test_a_web_session_opened_on_one_replica_is_honoured_and_ended_on_the_other(
    replicas: Replicas,
) -> None:
    first, second = replicas.first, replicas.second
    with httpx.Client(base_url=first.api_url) as a, httpx.Client(base_url=second.api_url) as b:
        signed_in = a.post("/ui/auth/dev-login", json={"subject": "dana", "roles": ["ml-lead"]})
        assert signed_in.status_code == 200, signed_in.text
        # The cookie is `Secure` outside `signoff dev`; over loopback http it is sent by hand.
        cookie = {"Cookie": f"signoff_session={signed_in.cookies['signoff_session']}"}
        csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}

        seen = b.get("/ui/api/session", headers=cookie).json()
        assert seen["signed_in"] is True and seen["subject"] == "dana"
        assert b.get("/ui/api/inbox", headers=cookie).status_code == 200

        assert b.post("/ui/auth/logout", headers=cookie | csrf).is_success
        assert a.get("/ui/api/session", headers=cookie).json()["signed_in"] is False
