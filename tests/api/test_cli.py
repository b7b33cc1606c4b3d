"""The `signoff` command as users and CI steps run it: a real subprocess against the stack."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.stack import SignoffStack, launch_stack
from tests.support.temporal import TemporalServer

GATING_POLICY = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
transitions:
  - models: ["checked-*"]
    to: Production
    checks:
      - {type: metric, name: auc, min: 0.9}
    approvals: {quorum: 1, roles: [ml-lead]}
  - models: ["short-*"]
    to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
    expires_after: 3s
  - models: ["*"]
    to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
"""


def signoff(
    stack: SignoffStack, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = stack.env | {"SIGNOFF_API_URL": stack.api_url}
    if token:
        env["SIGNOFF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_signoff(stack: SignoffStack, *args: str, token: str) -> subprocess.Popen[str]:
    env = stack.env | {"SIGNOFF_API_URL": stack.api_url, "SIGNOFF_TOKEN": token}
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_readme_tour_through_the_cli(signoff_stack: SignoffStack, make_version: Any) -> None:
    stack = signoff_stack
    version = make_version("fraud-" + uuid.uuid4().hex[:6], metrics={"auc": 0.91})
    tokens = {}
    for sub, role in (("lee", "ml-lead"), ("mia", "ml-lead"), ("rita", "risk-officer")):
        minted = signoff(stack, "token", "--sub", sub, "--role", role)
        assert minted.returncode == 0, minted.stderr
        tokens[sub] = minted.stdout.strip()
    target = (version.name, version.version, "Production")

    requested = signoff(stack, "request", *target, "--comment", "AUC 0.91", token=tokens["lee"])
    assert requested.returncode == 0, requested.stderr
    assert "PENDING" in requested.stdout and "approvals 0/2" in requested.stdout

    own = signoff(stack, "approve", *target, token=tokens["lee"])
    assert own.returncode == 1
    assert "self-approval" in own.stderr and "403" in own.stderr

    first = signoff(stack, "approve", *target, token=tokens["mia"])
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "approved (1 of 2; waiting for one more)"
    assert stage_in_mlflow(stack.mlflow_url, version) == "None"

    last = signoff(stack, "approve", *target, "--comment", "risk reviewed", token=tokens["rita"])
    assert last.returncode == 0, last.stderr
    assert last.stdout.strip() == (
        f"approved; applied: {version.name} v{version.version} is now in Production"
    )
    assert stage_in_mlflow(stack.mlflow_url, version) == "Production"

    record = signoff(stack, "activities", version.name, version.version, token=tokens["rita"])
    assert record.returncode == 0, record.stderr
    kinds = [line.split()[2] for line in record.stdout.splitlines()]
    assert kinds == [
        "REQUESTED_TRANSITION",
        "APPROVED_REQUEST",
        "APPROVED_REQUEST",
        "APPLIED_TRANSITION",
    ]
    listed = signoff(stack, "requests", version.name, "--all", token=tokens["rita"])
    assert "APPLIED (approvals 2/2: mia, rita)" in listed.stdout


def test_client_commands_explain_what_to_do_without_a_token(signoff_stack: SignoffStack) -> None:
    result = signoff(signoff_stack, "requests")
    assert result.returncode == 1
    assert "SIGNOFF_TOKEN" in result.stderr


def test_cli_reports_an_unreachable_api(signoff_stack: SignoffStack) -> None:
    env_stack = SignoffStack(
        api_url="http://127.0.0.1:9",
        env=signoff_stack.env,
        root=signoff_stack.root,
        database_url=signoff_stack.database_url,
        mlflow_url=signoff_stack.mlflow_url,
    )
    result = signoff(env_stack, "requests", token=signoff_stack.token("lee", "ml-lead"))
    assert result.returncode == 1
    assert "cannot reach the Signoff API" in result.stderr


def test_policy_check_reports_lines(tmp_path: Path, signoff_stack: SignoffStack) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GATING_POLICY)
    assert signoff(signoff_stack, "policy", "check", str(good)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "roles:\n"
        "  ml-lead: {'*': CAN_MANAGE_PRODUCTION_VERSIONS}\n"
        "transitions:\n"
        "  - to: Production\n"
        "    approvals: {quorum: -1, roles: [ml-lead]}\n"
    )
    result = signoff(signoff_stack, "policy", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:5:" in result.stderr and "quorum" in result.stderr


# -- `request --wait` as a CI gate --------------------------------------------------------------


@pytest.fixture(scope="module")
def gating_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    root = tmp_path_factory.mktemp("gating")
    policy = root / "policy.yaml"
    policy.write_text(GATING_POLICY)
    stack = launch_stack(
        root, temporal_server.address, mlflow_server.url, SIGNOFF_POLICY_FILE=str(policy)
    )
    try:
        yield stack
    finally:
        stack.stop()


def decide_when_open(stack: SignoffStack, action: str, version: SeededVersion) -> None:
    """Approve or reject as soon as the waiting CLI's request exists."""
    body = {"name": version.name, "version": version.version, "stage": "Production"}
    if action == "approve":
        body["archive_existing_versions"] = False
    deadline = time.monotonic() + 30
    with stack.client("mia", "ml-lead") as mia:
        while time.monotonic() < deadline:
            response = mia.post(f"/api/2.0/mlflow/transition-requests/{action}", json=body)
            if response.status_code != 404:
                assert response.status_code == 200, response.text
                return
    raise AssertionError("the request never opened")


def cancel_when_open(stack: SignoffStack, version: SeededVersion) -> None:
    params = {
        "name": version.name,
        "version": version.version,
        "stage": "Production",
        "creator": "lee",
    }
    deadline = time.monotonic() + 30
    with stack.client("lee", "data-scientist") as lee:
        while time.monotonic() < deadline:
            response = lee.delete("/api/2.0/mlflow/transition-requests/delete", params=params)
            if response.status_code != 404:
                assert response.status_code == 200, response.text
                return
    raise AssertionError("the request never opened")


@pytest.mark.parametrize(
    ("prefix", "metrics", "act", "exit_code", "said"),
    [
        ("plain-", {"auc": 0.95}, "approve", 0, "APPLIED"),
        ("plain-", {"auc": 0.95}, "reject", 2, "rejected by mia"),
        ("checked-", {"auc": 0.7}, None, 3, "metric:auc"),
        ("short-", {"auc": 0.95}, None, 4, "no decision within"),
        ("plain-", {"auc": 0.95}, "cancel", 5, "cancelled by lee"),
    ],
    ids=["applied", "rejected", "failed-validation", "expired", "cancelled"],
)
def test_request_wait_exit_code(
    gating_stack: SignoffStack,
    make_version: Any,
    prefix: str,
    metrics: dict[str, float],
    act: str | None,
    exit_code: int,
    said: str,
) -> None:
    version = make_version(prefix + uuid.uuid4().hex[:6], metrics=metrics)
    waiting = start_signoff(
        gating_stack,
        "request", version.name, version.version, "Production", "--wait", "--timeout", "60",
        token=gating_stack.token("lee", "data-scientist"),
    )  # fmt: skip
    if act == "cancel":
        cancel_when_open(gating_stack, version)
    elif act:
        decide_when_open(gating_stack, act, version)
    stdout, stderr = waiting.communicate(timeout=90)
    assert waiting.returncode == exit_code, (stdout, stderr)
    assert said in stdout + stderr
    expected_stage = "Production" if exit_code == 0 else "None"
    assert stage_in_mlflow(gating_stack.mlflow_url, version) == expected_stage
