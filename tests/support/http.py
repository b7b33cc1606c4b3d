"""Talking to a stack's API: its route prefixes, MLflow's error shape, and the calls most suites
make."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.mlflow import (
    SeededVersion,
)

TRANSITIONS = "/api/2.0/mlflow/transition-requests"


SIGNOFF = "/api/2.0/signoff"


def assert_error(response: httpx.Response, status: int, error_code: str) -> str:
    """MLflow's error shape with this status and code; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == error_code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body["message"]


def target(seeded: SeededVersion, stage: str) -> dict[str, str]:
    return {"name": seeded.name, "version": seeded.version, "stage": stage}


def create(client: httpx.Client, seeded: SeededVersion, stage: str, **extra: Any) -> dict:
    """Create a transition request through the API; returns the `request`."""
    response = client.post(f"{TRANSITIONS}/create", json=target(seeded, stage) | extra)
    assert response.status_code == 200, response.text
    return response.json()["request"]


def wait(client: httpx.Client, request_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """Long-poll the request until it is decided (or `timeout_s` passes); returns it."""
    response = client.get(
        f"{SIGNOFF}/transition-requests/wait", params={"id": request_id, "timeout_s": timeout_s}
    )
    assert response.status_code == 200, response.text
    return response.json()["request"]


def version_activities(client: httpx.Client, seeded: SeededVersion) -> list[dict[str, Any]]:
    """The version's audit trail through the API (`/api/2.0/signoff/activities/list`)."""
    response = client.get(
        f"{SIGNOFF}/activities/list", params={"name": seeded.name, "version": seeded.version}
    )
    assert response.status_code == 200, response.text
    return response.json()["activities"]


def assert_unauthenticated(response: httpx.Response, token: str | None = None) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == "UNAUTHENTICATED"
    assert body["message"]
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    if token:
        assert token not in response.text
        assert all(token not in value for value in response.headers.values())
        for part in token.split("."):
            if len(part) > 8:
                assert part not in response.text
    return body["message"]
