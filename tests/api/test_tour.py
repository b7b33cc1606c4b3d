"""The README's tour, as a test over real HTTP against the real worker, Temporal dev server and
MLflow server: first an alias (`@champion`, one approval), then the Databricks-compatible path
(Production, two approvals), then a second alias with the Databricks shapes."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from tests.support.http import SIGNOFF, TRANSITIONS
from tests.support.mlflow import MlflowServer, SeededVersion, mlflow_version


def test_tour_one_approval_moves_the_champion_alias(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    lee = as_user("lee", "ml-lead")
    rita = as_user("rita", "risk-officer")
    target = {"name": seeded.name, "version": seeded.version, "stage": "@champion"}

    created = lee.post(f"{TRANSITIONS}/create", json=target | {"comment": "AUC 0.91 on holdout"})
    assert created.status_code == 200, created.text
    request = created.json()["request"]
    assert (request["state"], request["quorum"], request["to_stage"]) == (
        "PENDING",
        1,
        "@champion",
    )

    own = lee.post(f"{TRANSITIONS}/approve", json=target | {"archive_existing_versions": False})
    assert own.status_code == 403, own.text
    assert "self-approval" in own.json()["message"]

    approved = rita.post(
        f"{TRANSITIONS}/approve",
        json=target | {"archive_existing_versions": False, "comment": "risk reviewed"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["request"]["state"] == "APPLIED"
    alias = httpx.get(
        f"{mlflow_server.url}/api/2.0/mlflow/registered-models/alias",
        params={"name": seeded.name, "alias": "champion"},
    )
    assert alias.json()["model_version"]["version"] == seeded.version

    # The HTTP part of the tour: a second alias, in the Databricks shapes.
    challenger = target | {"stage": "@challenger"}
    second = lee.post(f"{TRANSITIONS}/create", json=challenger | {"comment": "shadow traffic"})
    assert second.status_code == 200, second.text
    assert second.json()["request"]["approvals"] == []
    decided = rita.post(
        f"{TRANSITIONS}/approve", json=challenger | {"archive_existing_versions": False}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["activity"]["activity_type"] == "APPROVED_REQUEST"
    assert decided.json()["request"] | {"id": None} == {
        "id": None,
        "state": "APPLIED",
        "reason": None,
        "approvals": 1,
        "quorum": 1,
    }
    trail = lee.get(
        f"{SIGNOFF}/activities/list", params={"name": seeded.name, "version": seeded.version}
    ).json()["activities"]
    assert [(a["activity_type"], a["to_stage"]) for a in trail] == [
        ("REQUESTED_TRANSITION", "@champion"),
        ("APPROVED_REQUEST", "@champion"),
        ("APPLIED_TRANSITION", "@champion"),
        ("REQUESTED_TRANSITION", "@challenger"),
        ("APPROVED_REQUEST", "@challenger"),
        ("APPLIED_TRANSITION", "@challenger"),
    ]


def test_tour_two_approvals_move_a_version_to_production(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    assert mlflow_version(mlflow_server.url, seeded)["current_stage"] == "None"
    lee = as_user("lee", "ml-lead")
    mia = as_user("mia", "ml-lead")
    rosa = as_user("rosa", "risk-officer")
    target = {"name": seeded.name, "version": seeded.version, "stage": "Production"}

    # lee asks for Production.
    created = lee.post(
        f"{TRANSITIONS}/create", json=target | {"comment": "AUC 0.91 on the March holdout"}
    )
    assert created.status_code == 200, created.text
    request = created.json()["request"]
    request_id = request["id"]
    assert request["to_stage"] == "Production"
    assert request["user_id"] == "lee"
    assert request["comment"] == "AUC 0.91 on the March holdout"
    assert request["state"] == "PENDING"
    assert request["quorum"] == 2

    # lee may not approve their own request.
    own = lee.post(f"{TRANSITIONS}/approve", json=target | {"archive_existing_versions": True})
    assert own.status_code == 403, own.text
    assert own.json()["error_code"] == "PERMISSION_DENIED"
    assert "self-approval" in own.json()["message"]

    # A second ML lead approves: one approval of two, nothing moves yet.
    first = mia.post(
        f"{TRANSITIONS}/approve",
        json=target | {"archive_existing_versions": True, "comment": "eval report reviewed"},
    )
    assert first.status_code == 200, first.text
    assert first.json()["activity"]["activity_type"] == "APPROVED_REQUEST"
    assert first.json()["activity"]["user_id"] == "mia"
    assert mlflow_version(mlflow_server.url, seeded)["current_stage"] == "None"

    # The risk officer's approval completes the quorum; the answer comes once MLflow has it.
    second = rosa.post(
        f"{TRANSITIONS}/approve",
        json=target | {"archive_existing_versions": True, "comment": "risk sign-off"},
    )
    assert second.status_code == 200, second.text
    assert second.json()["activity"]["activity_type"] == "APPROVED_REQUEST"
    assert second.json()["activity"]["user_id"] == "rosa"
    assert mlflow_version(mlflow_server.url, seeded)["current_stage"] == "Production"

    # The workflow ends after its last ledger write, so the record is complete after `wait`.
    waited = lee.get(
        f"{SIGNOFF}/transition-requests/wait", params={"id": request_id, "timeout_s": 30}
    )
    assert waited.status_code == 200, waited.text
    assert waited.json()["request"]["state"] == "APPLIED"

    activities = lee.get(
        f"{SIGNOFF}/activities/list", params={"name": seeded.name, "version": seeded.version}
    )
    assert activities.status_code == 200, activities.text
    trail = activities.json()["activities"]
    assert [(a["activity_type"], a["user_id"], a.get("comment")) for a in trail] == [
        ("REQUESTED_TRANSITION", "lee", "AUC 0.91 on the March holdout"),
        ("APPROVED_REQUEST", "mia", "eval report reviewed"),
        ("APPROVED_REQUEST", "rosa", "risk sign-off"),
        ("APPLIED_TRANSITION", "rosa", None),
    ]
    assert all(a["to_stage"] == "Production" and a["from_stage"] == "None" for a in trail)
    stamps = [a["creation_timestamp"] for a in trail]
    assert stamps == sorted(stamps)
    assert "2 approval(s)" in trail[-1]["system_comment"]

    got = lee.get(f"{SIGNOFF}/transition-requests/get", params={"id": request_id})
    assert got.status_code == 200, got.text
    final = got.json()["request"]
    assert final["state"] == "APPLIED"
    assert [(a["user_id"], a["comment"]) for a in final["approvals"]] == [
        ("mia", "eval report reviewed"),
        ("rosa", "risk sign-off"),
    ]
    assert re.fullmatch(r"[0-9a-f]{64}", final["policy_hash"])
    assert final["policy_hash"] == request["policy_hash"]
    assert final["available_actions"] == []

    listed = lee.get(f"{TRANSITIONS}/list", params={"name": seeded.name, "version": seeded.version})
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"requests": []}
