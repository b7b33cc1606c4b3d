"""`POST /api/2.0/signoff/ci/callback` over real HTTP, against the real stack (`signoff worker`
and `signoff api` as processes, Temporal's dev server, a real MLflow) configured only by
environment variables, with GitHub played by a loopback server speaking its REST API.

The policy's GitHub check polls every 10 minutes, so within these tests only callbacks decide
it: what the job reports, who may report it, and when.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.support.github import FakeGithub
from tests.support.http import SIGNOFF, assert_error, create, wait
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.polling import wait_until
from tests.support.stack import SignoffStack, launch_stack
from tests.support.temporal import TemporalServer
from workflows.ci.callback import CALLBACK_PATH, callback_token

REPO = "acme/models"
CHECK = f"github_actions:{REPO}/validate.yml"
PUBLIC_URL = "https://signoff.example.test"
POLICY = f"""
roles:
  data-scientist: {{"*": CAN_EDIT}}
  ml-lead: {{"*": CAN_MANAGE_PRODUCTION_VERSIONS}}
  ci-validator: {{"*": CAN_READ}}
  other-team: {{"other-*": CAN_READ}}
transitions:
  - to: Staging
    checks:
      - {{type: github_actions, repo: {REPO}, workflow: validate.yml, poll_interval: 10m,
          callback_roles: [ci-validator]}}
    approvals: {{quorum: 0}}
  - to: Production
    checks:
      - {{type: github_actions, repo: {REPO}, workflow: validate.yml, poll_interval: 10m}}
    approvals: {{quorum: 1, roles: [ml-lead]}}
"""
MakeVersion = Callable[..., SeededVersion]
CALLBACK_KEY = "ci-callback-test-key-" + "c" * 32


@pytest.fixture(scope="module")
def github(stack_ledger: str) -> Iterator[FakeGithub]:
    """One per ledger's stack (`stack_ledger`): what it records is that stack's alone."""
    with FakeGithub() as fake:
        fake.add_workflow(REPO)
        yield fake


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    github: FakeGithub,
) -> Iterator[SignoffStack]:
    root = tmp_path_factory.mktemp("ci-callback")
    policy_file = root / "policy.yaml"
    policy_file.write_text(POLICY)
    stack = launch_stack(
        root,
        temporal_server.address,
        mlflow_server.url,
        SIGNOFF_POLICY_FILE=str(policy_file),
        SIGNOFF_GITHUB_API_URL=github.url,
        SIGNOFF_GITHUB_TOKEN=github.token,
        SIGNOFF_PUBLIC_URL=PUBLIC_URL,
        SIGNOFF_CALLBACK_KEY=CALLBACK_KEY,
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def alice(stack: SignoffStack) -> Iterator[httpx.Client]:
    with stack.client("alice", "data-scientist") as client:
        yield client


@pytest.fixture
def anonymous(stack: SignoffStack) -> Iterator[httpx.Client]:
    with stack.client() as client:
        yield client


def dispatched(client: httpx.Client, github: FakeGithub, request_id: str) -> str:
    """Wait until the request's job runs on GitHub and Signoff knows it; the job's token."""
    run = github.wait_for_run(request_id)

    def recorded() -> bool:
        response = client.get(f"{SIGNOFF}/transition-requests/get", params={"id": request_id})
        assert response.status_code == 200, response.text
        return "run_url" in response.json()["request"]["checks"][0]["evidence"]

    wait_until(recorded, "Signoff to record the dispatched run")
    return run.inputs["callback_token"]


def callback(client: httpx.Client, request_id: str, **fields: Any) -> httpx.Response:
    body = {"request_id": request_id, "check": CHECK, "passed": True} | fields
    return client.post(CALLBACK_PATH, json=body)


def test_callback_with_its_token_passes_the_check_and_the_request_applies(
    stack: SignoffStack,
    alice: httpx.Client,
    anonymous: httpx.Client,
    github: FakeGithub,
    make_version: MakeVersion,
) -> None:
    version = make_version()
    request = create(alice, version, "Staging")
    token = dispatched(alice, github, request["id"])

    response = callback(
        anonymous,  # the token is the credential: no bearer token
        request["id"],
        callback_token=token,
        details_url="https://github.com/acme/models/actions/runs/1",
        summary="42 tests passed",
    )

    assert response.status_code == 200, response.text
    reported = response.json()
    assert reported["request_id"] == request["id"]
    assert reported["check"]["name"] == CHECK
    assert reported["check"]["status"] == "PASSED"
    assert reported["check"]["summary"] == "42 tests passed"
    decided = wait(alice, request["id"])
    assert decided["state"] == "APPLIED"
    assert stage_in_mlflow(stack.mlflow_url, version) == "Staging"
    [check] = decided["checks"]
    assert check["status"] == "PASSED"
    assert check["evidence"]["details_url"] == "https://github.com/acme/models/actions/runs/1"
    assert check["evidence"]["reported_by"] == "callback token"
    assert check["evidence"]["run_url"].startswith(f"https://github.com/{REPO}/actions/runs/")

    # What GitHub received: the dispatch, with the public callback URL and the token.
    [dispatch] = [d for d in github.dispatches() if d.body["inputs"]["request_id"] == request["id"]]
    assert dispatch.path == f"/repos/{REPO}/actions/workflows/validate.yml/dispatches"
    assert dispatch.headers["authorization"] == f"Bearer {github.token}"
    assert dispatch.body["ref"] == "main"
    assert dispatch.body["return_run_details"] is True
    assert dispatch.body["inputs"] == {
        "model": version.name,
        "version": version.version,
        "target": "Staging",
        "request_id": request["id"],
        "callback_url": PUBLIC_URL + CALLBACK_PATH,
        "callback_token": token,
    }
    # Derived, not stored: the API derives it again to check a callback.
    assert token == callback_token(
        SecretStr(CALLBACK_KEY), request_id=request["id"], check_id=CHECK
    )

    # The request is finished: a late callback (here, the same one again) is refused.
    again = callback(anonymous, request["id"], callback_token=token)
    message = assert_error(again, 400, "INVALID_PARAMETER_VALUE")
    assert message == (
        f"request {request['id']} is no longer open (it is APPLIED); its checks take no more "
        "results"
    )


def test_wrong_token_and_replayed_token_are_refused(
    stack: SignoffStack,
    alice: httpx.Client,
    anonymous: httpx.Client,
    github: FakeGithub,
    make_version: MakeVersion,
) -> None:
    version = make_version()
    request = create(alice, version, "Production")
    token = dispatched(alice, github, request["id"])

    wrong = callback(anonymous, request["id"], callback_token="x" * 43)
    assert assert_error(wrong, 403, "PERMISSION_DENIED") == (
        f"the callback token is not the one issued for {CHECK} of this request"
    )
    other_key = callback_token(
        SecretStr("another-deployment-key-" + "o" * 32), request_id=request["id"], check_id=CHECK
    )
    other = callback(anonymous, request["id"], callback_token=other_key)
    assert assert_error(other, 403, "PERMISSION_DENIED") == (
        f"the callback token is not the one issued for {CHECK} of this request"
    )
    assert callback(anonymous, request["id"], callback_token=token).status_code == 200
    replayed = callback(anonymous, request["id"], callback_token=token, passed=False)
    assert assert_error(replayed, 403, "PERMISSION_DENIED") == (
        f"this callback token of {CHECK} was already used; a check accepts one callback"
    )

    pending = wait(alice, request["id"], timeout_s=0.5)
    assert pending["state"] == "PENDING"  # the check passed; the approval is still needed
    assert pending["checks"][0]["status"] == "PASSED"
    with stack.client("bob", "ml-lead") as bob:
        response = bob.post(
            "/api/2.0/mlflow/transition-requests/approve",
            json={"name": version.name, "version": version.version, "stage": "Production"},
        )
        assert response.status_code == 200, response.text
    assert wait(alice, request["id"])["state"] == "APPLIED"


def test_authenticated_ci_identity_may_report_without_a_token(
    stack: SignoffStack, alice: httpx.Client, github: FakeGithub, make_version: MakeVersion
) -> None:
    version = make_version()
    request = create(alice, version, "Staging")
    dispatched(alice, github, request["id"])
    ci_sub = "repo:acme/models:environment:validation"

    with stack.client("someone", "other-team") as outsider:
        refused = callback(outsider, request["id"], passed=False)
    assert assert_error(refused, 404, "RESOURCE_DOES_NOT_EXIST") == (  # as if it did not exist
        f"no transition request with id {request['id']!r}"
    )
    with stack.client("alice", "data-scientist") as requester:
        refused = callback(requester, request["id"], passed=True)
    assert assert_error(refused, 403, "PERMISSION_DENIED") == (
        f"alice may not report the result of {CHECK}; roles allowed to: ci-validator"
    )
    with stack.client(ci_sub, "ci-validator") as ci_job:
        response = callback(ci_job, request["id"], passed=False, summary="3 tests failed")

    assert response.status_code == 200, response.text
    assert response.json()["check"]["status"] == "FAILED"
    decided = wait(alice, request["id"])
    assert decided["state"] == "FAILED_VALIDATION"
    assert decided["reason"] == f"{CHECK}: 3 tests failed"
    assert decided["checks"][0]["evidence"]["reported_by"] == ci_sub
    assert stage_in_mlflow(stack.mlflow_url, version) == "None"


def test_callback_without_credentials_or_for_an_unknown_request_is_refused(
    stack: SignoffStack,
    alice: httpx.Client,
    anonymous: httpx.Client,
    github: FakeGithub,
    make_version: MakeVersion,
) -> None:
    version = make_version()
    request = create(alice, version, "Production")
    token = dispatched(alice, github, request["id"])

    anonymous_call = callback(anonymous, request["id"])
    assert assert_error(anonymous_call, 401, "UNAUTHENTICATED") == (
        "a CI callback needs the check's callback_token in the body or "
        "'Authorization: Bearer <JWT>'"
    )
    forged = anonymous.post(
        CALLBACK_PATH,
        json={"request_id": request["id"], "check": CHECK, "passed": True},
        headers={"Authorization": "Bearer not-a-jwt"},
    )
    assert_error(forged, 401, "UNAUTHENTICATED")

    unknown = callback(anonymous, "0123456789abcdef" * 2, callback_token=token)
    assert assert_error(unknown, 404, "RESOURCE_DOES_NOT_EXIST") == (
        f"no transition request with id {'0123456789abcdef' * 2!r}"
    )
    no_such_check = callback(anonymous, request["id"], callback_token=token, check="tag:x")
    assert assert_error(no_such_check, 400, "INVALID_PARAMETER_VALUE") == (
        f"request {request['id']}: this request has no check 'tag:x' (its checks: {CHECK})"
    )
    too_long = callback(anonymous, request["id"], callback_token=token, summary="x" * 2001)
    assert "summary" in assert_error(too_long, 400, "INVALID_PARAMETER_VALUE")
    not_a_bool = callback(anonymous, request["id"], callback_token=token, passed="yes")
    assert "passed" in assert_error(not_a_bool, 400, "INVALID_PARAMETER_VALUE")
    not_a_url = callback(anonymous, request["id"], callback_token=token, details_url="ftp://x")
    assert "details_url" in assert_error(not_a_url, 400, "INVALID_PARAMETER_VALUE")

    # None of that reached the check: it is still waiting, and its token still works.
    assert wait(alice, request["id"], timeout_s=0.5)["checks"][0]["status"] == "RUNNING"
    assert callback(anonymous, request["id"], callback_token=token).status_code == 200
    cancelled = alice.delete(
        "/api/2.0/mlflow/transition-requests/delete",
        params={
            "name": version.name,
            "version": version.version,
            "stage": "Production",
            "creator": "alice",
        },
    )
    assert cancelled.status_code == 200, cancelled.text
