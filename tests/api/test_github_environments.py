"""GitHub environments: Signoff as a GitHub App's custom deployment protection rule, end to end.

One stack (API and worker as processes, real Temporal and MLflow) with a loopback GitHub
(`tests.support.github.FakeGithub`: the App's token exchange and the protection-rule review
endpoint, on their real paths and shapes) and a loopback OIDC issuer playing GitHub Actions'
token service. A run's earlier job opens the request with its OIDC token; GitHub's
`deployment_protection_rule` event arrives for the deploy job (`environment: production`);
Signoff answers GitHub once the request is decided, as the App.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.client import Client

from tests.support.github import FakeGithub, Recorded, deliver_webhook, deployment_event
from tests.support.http import SIGNOFF, TRANSITIONS
from tests.support.mlflow import MlflowServer, SeededVersion, seed_version
from tests.support.oidc_provider import LoopbackOidcProvider
from tests.support.polling import wait_until
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer

REPO, REPO_ID, INSTALLATION, APP_ID = "acme/models", 123456, 777, "424242"
WEBHOOK_SECRET = "github-app-webhook-secret-for-tests"
HOOK = f"{SIGNOFF}/hooks/github"
AUDIENCE = "signoff"
WAIT = "2s"


def policy(issuer: str) -> str:
    return f"""roles:
  ci-deployer: {{"*": CAN_READ}}
  ml-lead: {{"*": CAN_MANAGE_PRODUCTION_VERSIONS}}
transitions:
  - to: Production
    approvals: {{quorum: 1, roles: [ml-lead]}}
    github: {{environment: production, wait: {WAIT}}}
  - to: Staging
    approvals: {{quorum: 1, roles: [ml-lead]}}
identities:
  - issuer: {issuer}
    claims: {{repository_id: "{REPO_ID}"}}
    roles: [ci-deployer]
"""


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def github(app_key: rsa.RSAPrivateKey, stack_ledger: str) -> Iterator[FakeGithub]:
    """GitHub as the App meets it: one per ledger's stack, so what it counts (the App's token
    exchanges) is that stack's worker's alone."""
    public = app_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with FakeGithub() as fake:
        fake.install_app(APP_ID, public.decode(), {INSTALLATION: {REPO}})
        yield fake


@pytest.fixture(scope="module")
def actions(stack_ledger: str) -> Iterator[LoopbackOidcProvider]:
    """GitHub Actions' OIDC token service, one per ledger's stack (`stack_ledger`)."""
    provider = LoopbackOidcProvider(client_id=AUDIENCE).start()
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    github: FakeGithub,
    actions: LoopbackOidcProvider,
    app_key: rsa.RSAPrivateKey,
) -> Iterator[SignoffStack]:
    pem = app_key.private_bytes(  # PKCS#1, as GitHub generates an App's key
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    issuers = [
        {"issuer": actions.issuer, "audience": AUDIENCE, "jwks_url": f"{actions.issuer}/jwks"}
    ]
    with running_stack(
        tmp_path_factory,
        "github-environments",
        temporal_server.address,
        mlflow_server.url,
        policy=policy(actions.issuer),
        SIGNOFF_OIDC_ISSUERS=json.dumps(issuers),
        SIGNOFF_GITHUB_API_URL=github.url,
        SIGNOFF_GITHUB_APP_ID=APP_ID,
        SIGNOFF_GITHUB_APP_PRIVATE_KEY=pem,
        SIGNOFF_GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SIGNOFF_GITHUB_GATE_POLL_S="0.3",
    ) as running:
        yield running
        logs = (running.root / "api.log").read_text() + (running.root / "worker.log").read_text()
        assert "ghs_" not in logs and "PRIVATE KEY" not in logs, "a secret was logged"


# -- the run, GitHub, the approvers ---------------------------------------------------------


def run_token(actions: LoopbackOidcProvider, run_id: int) -> str:
    """The OIDC token of the run's request job (no environment: it is not the gated job)."""
    now = int(time.time())
    return actions.mint(
        {
            "sub": f"repo:{REPO}:ref:refs/heads/main",
            "aud": AUDIENCE,
            "repository": REPO,
            "repository_id": str(REPO_ID),
            "repository_owner": "acme",
            "ref": "refs/heads/main",
            "workflow": "deploy",
            "run_id": str(run_id),
            "run_attempt": "1",
            "iat": now,
            "exp": now + 300,
        }
    )


def open_request(stack: SignoffStack, token: str, version: SeededVersion) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.api_url}{TRANSITIONS}/create",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": version.name, "version": version.version, "stage": "Production"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()["request"]


def deployment_waits(stack: SignoffStack, github: FakeGithub, run_id: int, **extra: Any) -> str:
    """The deploy job reaches `production`: GitHub sends the App its event. The gate's id."""
    github.request_deployment(REPO, run_id, "production")
    payload = deployment_event(
        github,
        repo=REPO,
        repository_id=REPO_ID,
        run_id=run_id,
        environment="production",
        installation_id=INSTALLATION,
        **extra,
    )
    response = deliver_webhook(
        stack.api_url + HOOK, WEBHOOK_SECRET, "deployment_protection_rule", payload
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] is True
    return response.json()["gate_id"]


def decide(stack: SignoffStack, action: str, version: SeededVersion, comment: str) -> None:
    with stack.client("lena", "ml-lead") as lead:
        response = lead.post(
            f"{TRANSITIONS}/{action}",
            json={
                "name": version.name,
                "version": version.version,
                "stage": "Production",
                "archive_existing_versions": False,
                "comment": comment,
            },
        )
    assert response.status_code == 200, response.text


def gate_result(stack: SignoffStack, gate_id: str) -> str:
    async def result() -> str:
        client = await Client.connect(stack.env["SIGNOFF_TEMPORAL_ADDRESS"])
        return await client.get_workflow_handle(gate_id).result()

    return asyncio.run(result())


def review_calls(github: FakeGithub, run_id: int) -> list[Recorded]:
    path = f"/repos/{REPO}/actions/runs/{run_id}/deployment_protection_rule"
    return [r for r in github.requests if r.method == "POST" and r.path == path]


@pytest.fixture
def version(stack: SignoffStack) -> SeededVersion:
    with httpx.Client(base_url=stack.mlflow_url, timeout=30) as mlflow:
        return seed_version(mlflow)


# -- the tests ------------------------------------------------------------------------------


def test_an_approved_request_releases_its_run_s_deployment_once_as_the_app(
    stack: SignoffStack, github: FakeGithub, actions: LoopbackOidcProvider, version: SeededVersion
) -> None:
    request = open_request(stack, run_token(actions, 5001), version)
    run = {"repository_id": str(REPO_ID), "run_id": "5001", "repository": REPO}
    assert request["github"] == run | {"run_attempt": "1", "environment": None}
    with stack.client("lena", "ml-lead") as lead:  # and the ledger has it
        stored = lead.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
    assert stored.json()["request"]["github"] == request["github"]

    gate_id = deployment_waits(stack, github, 5001)
    decide(stack, "approve", version, "looks good")

    (review,) = wait_until(lambda: github.reviews_of(REPO, 5001), "GitHub's review callback")
    assert review.body["environment_name"] == "production"
    assert review.body["state"] == "approved"
    assert request["id"] in review.body["comment"] and "lena" in review.body["comment"]
    assert github.app is not None
    token = review.headers["authorization"].removeprefix("Bearer ")
    assert github.app.tokens[token][0] == INSTALLATION  # an installation token of the App
    claims = github.app.jwt_claims[0]  # the exchange's App JWT, verified with its public key
    assert claims["iss"] == APP_ID and claims["iat"] < time.time()
    assert claims["exp"] - claims["iat"] <= 660

    assert gate_result(stack, gate_id) == "APPROVED"
    assert len(review_calls(github, 5001)) == 1


def test_a_rejected_request_rejects_the_deployment_with_the_reason(
    stack: SignoffStack, github: FakeGithub, actions: LoopbackOidcProvider, version: SeededVersion
) -> None:
    open_request(stack, run_token(actions, 5002), version)
    gate_id = deployment_waits(stack, github, 5002)
    decide(stack, "reject", version, "AUC regressed on the holdout")

    (review,) = wait_until(lambda: github.reviews_of(REPO, 5002), "GitHub's review callback")
    assert review.body["state"] == "rejected"
    assert "REJECTED" in review.body["comment"]
    assert "AUC regressed on the holdout" in review.body["comment"]
    assert gate_result(stack, gate_id) == "REJECTED"
    assert len(review_calls(github, 5002)) == 1
    assert github.app is not None and len(github.app.jwt_claims) == 1, "the token is cached"


def test_a_deployment_whose_run_opened_no_request_is_rejected_saying_what_to_do(
    stack: SignoffStack, github: FakeGithub
) -> None:
    gate_id = deployment_waits(stack, github, 5003)

    (review,) = wait_until(lambda: github.reviews_of(REPO, 5003), "GitHub's review callback")
    assert review.body["state"] == "rejected"
    comment = review.body["comment"]
    assert f"within {WAIT}" in comment and "signoff request" in comment
    assert "github: {environment: production}" in comment
    assert gate_result(stack, gate_id) == "REJECTED"


def test_forged_replayed_and_misdirected_events_are_refused(
    stack: SignoffStack, github: FakeGithub
) -> None:
    payload = deployment_event(
        github,
        repo=REPO,
        repository_id=REPO_ID,
        run_id=5004,
        environment="production",
        installation_id=INSTALLATION,
    )
    url, event = stack.api_url + HOOK, "deployment_protection_rule"
    forged = deliver_webhook(url, WEBHOOK_SECRET, event, payload, signature="sha256=" + "0" * 64)
    assert forged.status_code == 401
    assert forged.json()["error_code"] == "UNAUTHENTICATED"
    unsigned = deliver_webhook(url, "another-secret", event, payload)
    assert unsigned.status_code == 401

    delivery = str(uuid.uuid4())
    assert (
        deliver_webhook(url, WEBHOOK_SECRET, event, payload, delivery=delivery).status_code == 202
    )
    replayed = deliver_webhook(url, WEBHOOK_SECRET, event, payload, delivery=delivery)
    assert replayed.status_code == 409
    assert deliver_webhook(url, WEBHOOK_SECRET, event, payload).status_code == 409  # new id

    elsewhere = payload | {
        "deployment_callback_url": "http://169.254.169.254/repos/acme/models/actions/runs/5005"
        "/deployment_protection_rule"
    }
    misdirected = deliver_webhook(url, WEBHOOK_SECRET, event, elsewhere)
    assert misdirected.status_code == 400
    assert "SIGNOFF_GITHUB_API_URL" in misdirected.json()["message"]
    assert not [r for r in github.requests if "/runs/5005/" in r.path]
