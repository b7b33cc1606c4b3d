"""What a decision answers and what it closes, over real HTTP against the real stack: the
approval's answer says where the request stands, and when Signoff moves a version the other
open requests on it that no longer hold are closed at once, on the record, naming the move."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support.http import (
    SIGNOFF,
    TRANSITIONS,
    assert_error,
    create,
    target,
    version_activities,
    wait,
)
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.polling import wait_until


def _approve(client: httpx.Client, seeded: SeededVersion, stage: str) -> httpx.Response:
    return client.post(
        f"{TRANSITIONS}/approve", json=target(seeded, stage) | {"archive_existing_versions": False}
    )


def people(as_user: Callable[..., httpx.Client]) -> tuple[httpx.Client, ...]:
    """Lee requests; Mia (ML lead) and Rita (risk officer) approve."""
    return (
        as_user("lee", "data-scientist"),
        as_user("mia", "ml-lead"),
        as_user("rita", "risk-officer"),
    )


def test_each_approval_says_where_the_request_stands(
    make_version: Callable[..., SeededVersion],
    as_user: Callable[..., httpx.Client],
    mlflow_server: MlflowServer,
) -> None:
    seeded = make_version()
    lee, mia, rita = people(as_user)
    request = create(lee, seeded, "Production")

    first = _approve(mia, seeded, "Production")
    assert first.status_code == 200, first.text
    assert first.json()["activity"]["activity_type"] == "APPROVED_REQUEST"
    assert first.json()["request"] == {
        "id": request["id"],
        "state": "PENDING",
        "reason": None,
        "approvals": 1,
        "quorum": 2,
    }

    last = _approve(rita, seeded, "Production")
    assert last.status_code == 200, last.text
    outcome = last.json()["request"]
    assert (outcome["state"], outcome["approvals"]) == ("APPLIED", 2)
    assert stage_in_mlflow(mlflow_server.url, seeded) == "Production"


def test_a_move_by_signoff_closes_the_requests_it_makes_stale(
    make_version: Callable[..., SeededVersion],
    as_user: Callable[..., httpx.Client],
    mlflow_server: MlflowServer,
) -> None:
    seeded = make_version()
    lee, mia, rita = people(as_user)
    staging = create(lee, seeded, "Staging")
    production = create(lee, seeded, "Production")
    champion = create(lee, seeded, "@champion")
    assert _approve(mia, seeded, "Production").status_code == 200
    assert _approve(rita, seeded, "Production").json()["request"]["state"] == "APPLIED"

    closed = wait(lee, staging["id"])
    assert closed["state"] == "FAILED"
    assert (
        production["id"] in closed["reason"]
        and "moved from None to Production" in (closed["reason"])
    )
    refused = _approve(mia, seeded, "Staging")
    message = assert_error(
        refused, 404 if refused.status_code == 404 else 400, refused.json()["error_code"]
    )
    assert refused.status_code in (400, 404), refused.text
    assert stage_in_mlflow(mlflow_server.url, seeded) == "Production"
    if refused.status_code == 400:
        assert "FAILED" in message and production["id"] in message

    trail = [e for e in version_activities(lee, seeded) if e.get("request_id") == staging["id"]]
    assert [e["activity_type"] for e in trail] == ["REQUESTED_TRANSITION", "CANCELLED_REQUEST"]
    assert trail[-1]["user_id"] == "signoff"
    assert production["id"] in trail[-1]["system_comment"]

    # An alias request does not start from a stage: it stays open.
    still = lee.get(f"{SIGNOFF}/transition-requests/get", params={"id": champion["id"]})
    assert still.json()["request"]["state"] == "PENDING"
    assert wait_until(
        lambda: _approve(rita, seeded, "@champion").status_code == 200, "the alias approval"
    )
