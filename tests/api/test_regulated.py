"""Regulated teams' parts of a transition, end to end over the API (real worker and API
processes, real Temporal dev server, real `mlflow server` and its artifact store):

- approval pinned to the artifact: the digest of the files taken when the request opens, taken
  again before the move; a file replaced after approval fails the request, naming it;
- a 300 MB artifact hashed by streaming (the worker's peak memory does not grow with it);
- risk tiers: the approvers follow the version's `risk_tier` tag, pinned when it opened;
- governed rollback: back to the version that held the target before, under the rollback rule.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.mlflow import (
    MlflowServer,
    SeededVersion,
    mlflow_version,
    seed_version,
    stage_in_mlflow,
)
from tests.support.polling import wait_until
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer

POLICY = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  model-risk: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  on-call: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - to: Archived
    when: {tags: {risk_tier: high}}
    approvals: {quorum: 1, roles: [model-risk]}
    break_glass: true
  - to: Production
    when: {tags: {risk_tier: high}}
    approvals: {quorum: 2, roles: [model-risk]}
    archive_existing_versions: true
    rollback: {approvals: {quorum: 1, roles: [on-call]}}
  - to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
    archive_existing_versions: true
  - to: "@champion"
    approvals: {quorum: 2, roles: [ml-lead]}
  - to: Staging
    approvals: {quorum: 0}
"""

CREATE = "/api/2.0/mlflow/transition-requests/create"
APPROVE = "/api/2.0/mlflow/transition-requests/approve"
GET = "/api/2.0/signoff/transition-requests/get"
DANA = ("dana", "data-scientist")
LEE, MIA = ("lee", "ml-lead"), ("mia", "ml-lead")
RITA, ROB = ("rita", "model-risk"), ("rob", "model-risk")
OSCAR = ("oscar", "on-call")
MB = 1024 * 1024


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    with running_stack(
        tmp_path_factory,
        "regulated",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY,
        SIGNOFF_DIGEST_MAX_FILE_MB="400",
    ) as stack:
        yield stack


@pytest.fixture
def mlflow(mlflow_server: MlflowServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as client:
        yield client


def model_dir(mlflow: httpx.Client, version: SeededVersion) -> Path:
    """Where the artifact store keeps the version's files (`runs:/<run>/model`)."""
    run = mlflow.get("/api/2.0/mlflow/runs/get", params={"run_id": version.run_id}).json()
    root = Path(run["run"]["info"]["artifact_uri"].removeprefix("file://"))
    (root / "model").mkdir(parents=True, exist_ok=True)
    return root / "model"


def with_files(mlflow: httpx.Client, files: dict[str, bytes], **kwargs: Any) -> SeededVersion:
    version = seed_version(mlflow, **kwargs)
    for name, content in files.items():
        (model_dir(mlflow, version) / name).write_bytes(content)
    return version


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def request_to(client: httpx.Client, version: SeededVersion, target: str) -> dict[str, Any]:
    body = {"name": version.name, "version": version.version, "stage": target}
    return ok(client.post(CREATE, json=body))["request"]


def approve(client: httpx.Client, version: SeededVersion, target: str) -> httpx.Response:
    body = {"name": version.name, "version": version.version, "stage": target}
    return client.post(APPROVE, json=body | {"archive_existing_versions": False})


def pinned(client: httpx.Client, request_id: str) -> dict[str, Any]:
    """The request once its artifacts' digest is on it."""

    def probe() -> dict[str, Any] | None:
        request = ok(client.get(GET, params={"id": request_id}))["request"]
        return request if request["digest"] else None

    return wait_until(probe, "the request's artifact digest")


def settled(client: httpx.Client, request_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        request = ok(client.get(GET, params={"id": request_id}))["request"]
        return request if request["state"] not in ("PENDING", "APPLYING") else None

    return wait_until(probe, "the request to be decided", timeout_s=60)


def trail(client: httpx.Client, version: SeededVersion) -> list[dict[str, Any]]:
    found = client.get(
        "/api/2.0/signoff/activities/list",
        params={"name": version.name, "version": version.version},
    )
    return ok(found)["activities"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- approval pinned to the artifact ---------------------------------------------------------


def test_a_file_replaced_after_approval_fails_the_request_naming_it(
    stack: SignoffStack, user: Callable[..., httpx.Client], mlflow: httpx.Client,
    mlflow_server: MlflowServer,
) -> None:  # fmt: skip
    version = with_files(mlflow, {"file.pkl": b"x" * 1200, "MLmodel": b"flavors: {}\n"})
    dana, lee, mia = user(*DANA), user(*LEE), user(*MIA)
    opened = request_to(dana, version, "@champion")
    digest = pinned(dana, opened["id"])["digest"]
    assert digest["source"] == f"runs:/{version.run_id}/model"
    assert digest["run_id"] == version.run_id
    assert digest["files"] == [
        {"path": "model/MLmodel", "size": 12, "sha256": sha(b"flavors: {}\n")},
        {"path": "model/file.pkl", "size": 1200, "sha256": sha(b"x" * 1200)},
    ]
    assert (digest["file_count"], digest["total_bytes"], digest["note"]) == (2, 1212, None)
    assert ok(approve(lee, version, "@champion"))["request"]["state"] == "PENDING"

    (model_dir(mlflow, version) / "file.pkl").write_bytes(b"y" * 1300)
    answer = ok(approve(mia, version, "@champion"))

    final = settled(dana, opened["id"])
    reason = (
        "the artifacts changed after approval (model/file.pkl: size 1200 → 1300); request again"
    )
    assert (final["state"], final["reason"]) == ("FAILED", reason)
    assert answer["request"]["state"] in ("APPLYING", "FAILED")
    assert mlflow_version(mlflow_server.url, version).get("aliases", []) == []
    last = trail(dana, version)[-1]
    assert (last["activity_type"], last["user_id"]) == ("CANCELLED_REQUEST", "signoff")
    assert last["system_comment"] == f"Closed as FAILED: {reason}"


def test_unchanged_artifacts_apply_and_the_record_names_their_digest(
    stack: SignoffStack, user: Callable[..., httpx.Client], mlflow: httpx.Client,
    mlflow_server: MlflowServer,
) -> None:  # fmt: skip
    version = with_files(mlflow, {"file.pkl": b"z" * 2000})
    dana, lee, mia = user(*DANA), user(*LEE), user(*MIA)
    opened = request_to(dana, version, "@champion")
    digest = pinned(dana, opened["id"])["digest"]
    approve(lee, version, "@champion")
    approve(mia, version, "@champion")

    final = settled(dana, opened["id"])
    assert final["state"] == "APPLIED"
    assert final["digest"] == digest
    assert mlflow_version(mlflow_server.url, version)["aliases"] == ["champion"]
    applied = trail(dana, version)[-1]
    assert applied["activity_type"] == "APPLIED_TRANSITION"
    assert (
        f"artifacts sha256 {digest['sha256'][:12]} (1 file(s), 2000 bytes), unchanged since the "
        "request" in applied["system_comment"]
    )


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_300_mb_artifact_is_hashed_without_the_worker_growing_with_it(
    stack: SignoffStack, user: Callable[..., httpx.Client], mlflow: httpx.Client
) -> None:
    version = seed_version(mlflow)
    files = model_dir(mlflow, version)
    for name, size in (("weights.bin", 300 * MB), ("huge.bin", 500 * MB)):
        with open(files / name, "wb") as sparse:  # holes: no disk, no time to write
            sparse.truncate(size)
    zeros = hashlib.sha256()
    block = bytes(MB)
    for _ in range(300):
        zeros.update(block)
    assert stack.worker is not None
    before = peak_rss(stack.worker.pid)

    opened = request_to(user(*DANA), version, "Staging")  # no approval needed
    final = settled(user(*DANA), opened["id"])

    grown = peak_rss(stack.worker.pid) - before
    assert final["state"] == "APPLIED", final["reason"]
    digest = final["digest"]
    assert digest["files"] == [
        {"path": "model/huge.bin", "size": 500 * MB, "sha256": None},
        {"path": "model/weights.bin", "size": 300 * MB, "sha256": zeros.hexdigest()},
    ]
    assert digest["max_file_mb"] == 400
    assert digest["note"] == (
        "1 file(s) above 400 MB recorded by path and size only, not hashed: model/huge.bin"
    )
    assert grown < 100 * MB, f"the worker's peak memory grew by {grown / MB:.0f} MB"
    os.remove(files / "huge.bin")
    os.remove(files / "weights.bin")


# -- risk tiers -------------------------------------------------------------------------------


def tagged(mlflow: httpx.Client, tier: str, name: str | None = None) -> SeededVersion:
    return seed_version(mlflow, name, tags={"risk_tier": tier})


def test_a_high_tier_version_needs_the_high_tiers_approvers_a_low_one_the_low_ones(
    stack: SignoffStack, user: Callable[..., httpx.Client], mlflow: httpx.Client
) -> None:
    high, low = tagged(mlflow, "high"), tagged(mlflow, "low")
    dana = user(*DANA)
    high_request = request_to(dana, high, "Production")
    low_request = request_to(dana, low, "Production")
    assert (high_request["tier"], high_request["quorum"]) == ({"risk_tier": "high"}, 2)
    assert (low_request["tier"], low_request["quorum"]) == ({}, 1)

    refused = approve(user(*LEE), high, "Production")
    assert refused.status_code == 403
    assert "only model-risk may approve" in refused.json()["message"]
    assert ok(approve(user(*LEE), low, "Production"))["request"]["state"] == "APPLIED"
    approve(user(*RITA), high, "Production")
    assert ok(approve(user(*ROB), high, "Production"))["request"]["state"] == "APPLIED"


def test_break_glass_follows_the_versions_tier(
    stack: SignoffStack, user: Callable[..., httpx.Client], mlflow: httpx.Client
) -> None:
    """Only the high tier's rule allows break-glass to Archived: the rule is the one the
    version's tags select, as for a request."""
    high, low = tagged(mlflow, "high"), tagged(mlflow, "low")
    admin = user("ada", "platform-admin")

    def move(seeded: SeededVersion) -> httpx.Response:
        body = {"name": seeded.name, "version": seeded.version, "stage": "Archived"}
        body |= {"archive_existing_versions": False, "comment": "incident 4711: pull it"}
        return admin.post("/api/2.0/mlflow/databricks/model-versions/transition-stage", json=body)

    assert ok(move(high))["model_version_databricks"]["current_stage"] == "Archived"
    refused = move(low)
    assert refused.status_code == 403 and "no rule" in refused.json()["message"], refused.text
    assert stage_in_mlflow(stack.mlflow_url, low) == "None"


def test_a_tag_changed_after_the_request_opened_does_not_change_its_rule(
    stack: SignoffStack, user: Callable[..., httpx.Client], mlflow: httpx.Client
) -> None:
    version = tagged(mlflow, "high")
    dana = user(*DANA)
    opened = request_to(dana, version, "Production")
    changed = mlflow.post(
        "/api/2.0/mlflow/model-versions/set-tag",
        json={"name": version.name, "version": version.version, "key": "risk_tier", "value": "low"},
    )
    assert changed.status_code == 200, changed.text

    refused = approve(user(*LEE), version, "Production")
    assert refused.status_code == 403
    assert "only model-risk may approve" in refused.json()["message"]
    request = ok(dana.get(GET, params={"id": opened["id"]}))["request"]
    assert (request["tags"], request["tier"], request["quorum"]) == (
        {"risk_tier": "high"},
        {"risk_tier": "high"},
        2,
    )
    cancelled = dana.delete(
        "/api/2.0/mlflow/transition-requests/delete",
        params={"name": version.name, "version": version.version, "stage": "Production",
                "creator": "dana"},
    )  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text


# -- governed rollback ------------------------------------------------------------------------


def promote(user: Callable[..., httpx.Client], version: SeededVersion) -> str:
    opened = request_to(user(*DANA), version, "Production")
    approve(user(*RITA), version, "Production")
    assert ok(approve(user(*ROB), version, "Production"))["request"]["state"] == "APPLIED"
    return str(opened["id"])


def test_rollback_restores_the_previous_version_under_the_rollback_rule(
    stack: SignoffStack, user: Callable[..., httpx.Client], mlflow: httpx.Client,
    mlflow_server: MlflowServer,
) -> None:  # fmt: skip
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    good, bad = tagged(mlflow, "high", name), tagged(mlflow, "high", name)
    first = promote(user, good)
    promote(user, bad)
    assert mlflow_version(mlflow_server.url, good)["current_stage"] == "Archived"

    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "rollback", name, "Production", "--comment", "INC-9"],
        env=stack.env | {"SIGNOFF_API_URL": stack.api_url, "SIGNOFF_TOKEN": stack.token(*DANA)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"(replacing v{bad.version}): {name} v{good.version} → Production: PENDING" in (
        done.stdout
    )
    request = ok(user(*DANA).get("/api/2.0/signoff/transition-requests/search",
                                 params={"name": name}))["requests"][0]  # fmt: skip
    assert request["rollback"] == {"replaces_version": bad.version, "previous_request": first}
    assert request["quorum"] == 1

    refused = approve(user(*RITA), good, "Production")
    assert refused.status_code == 403 and "only on-call may approve" in refused.json()["message"]
    assert ok(approve(user(*OSCAR), good, "Production"))["request"]["state"] == "APPLIED"
    assert mlflow_version(mlflow_server.url, good)["current_stage"] == "Production"
    assert mlflow_version(mlflow_server.url, bad)["current_stage"] == "Archived"
    requested = next(
        e for e in trail(user(*DANA), good)
        if e["activity_type"] == "REQUESTED_TRANSITION" and e.get("request_id") == request["id"]
    )  # fmt: skip
    assert requested["system_comment"] == (
        f"Rollback: moves Production of {name} back to version {good.version}, replacing "
        f"version {bad.version} (it held it before request {first})"
    )
    nothing_before = user(*DANA).post(
        "/api/2.0/signoff/rollback", json={"name": seed_version(mlflow).name, "target": "Staging"}
    )
    assert nothing_before.status_code == 400
    assert "name the version to roll back to" in nothing_before.json()["message"]
