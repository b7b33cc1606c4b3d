"""Objects looked up by id (a transition request: get, wait, CI callback; a comment: update,
delete; a webhook delivery: redeliver) answer a principal with no binding for their model
exactly as if they did not exist: 404 RESOURCE_DOES_NOT_EXIST with the same message. A
principal with a binding but too low a level still gets 403."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.http import SIGNOFF, assert_error, create
from tests.support.mlflow import SeededVersion
from tests.support.stack import SignoffStack

OUTSIDER = ("olly", "outsider")  # CAN_MANAGE on elsewhere-* only: no binding on `seeded`
VIEWER = ("vic", "viewer")  # CAN_READ on every model
MISSING = "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def objects(security_stack: SignoffStack, seeded: SeededVersion) -> dict[str, str]:
    """A transition request and a comment on `seeded`, by dana."""
    with security_stack.client("dana", "data-scientist") as dana:
        request = create(dana, seeded, "Staging")
        comment = dana.post(
            "/api/2.0/mlflow/comments/create",
            json={"name": seeded.name, "version": seeded.version, "comment": "looks good"},
        )
    assert comment.status_code == 200, comment.text
    return {"request": request["id"], "comment": comment.json()["comment"]["id"]}


@pytest.fixture
def client(security_stack: SignoffStack) -> Iterator[Callable[..., httpx.Client]]:
    made: list[httpx.Client] = []

    def make(sub: str, *roles: str) -> httpx.Client:
        made.append(security_stack.client(sub, *roles))
        return made[-1]

    yield make
    for item in made:
        item.close()


Call = Callable[[httpx.Client, str], httpx.Response]
CALLS: dict[str, tuple[str, Call]] = {
    "request get": (
        "request",
        lambda c, i: c.get(f"{SIGNOFF}/transition-requests/get", params={"id": i}),
    ),
    "request wait": (
        "request",
        lambda c, i: c.get(
            f"{SIGNOFF}/transition-requests/wait", params={"id": i, "timeout_s": 0.1}
        ),
    ),
    "ci callback": (
        "request",
        lambda c, i: c.post(
            f"{SIGNOFF}/ci/callback",
            json={"request_id": i, "check": "github_actions:o/r/f", "passed": True},
        ),
    ),
    "comment update": (
        "comment",
        lambda c, i: c.patch("/api/2.0/mlflow/comments/update", json={"id": i, "comment": "x"}),
    ),
    "comment delete": (
        "comment",
        lambda c, i: c.delete("/api/2.0/mlflow/comments/delete", params={"id": i}),
    ),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_without_a_binding_an_existing_object_is_as_missing_as_a_missing_one(
    objects: dict[str, str], client: Callable[..., httpx.Client], call: str
) -> None:
    kind, send = CALLS[call]
    outsider = client(*OUTSIDER)
    existing = assert_error(send(outsider, objects[kind]), 404, "RESOURCE_DOES_NOT_EXIST")
    missing = assert_error(send(outsider, MISSING), 404, "RESOURCE_DOES_NOT_EXIST")
    assert existing.replace(objects[kind], "<id>") == missing.replace(MISSING, "<id>")


@pytest.mark.parametrize("call", ["comment update", "comment delete"])
def test_with_a_binding_too_low_a_level_is_still_403(
    objects: dict[str, str], client: Callable[..., httpx.Client], call: str
) -> None:
    kind, send = CALLS[call]
    assert_error(send(client(*VIEWER), objects[kind]), 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("call", ["request get", "request wait"])
def test_with_a_binding_the_request_is_readable(
    objects: dict[str, str], client: Callable[..., httpx.Client], call: str
) -> None:
    kind, send = CALLS[call]
    response = send(client(*VIEWER), objects[kind])
    assert response.status_code == 200, response.text


def test_with_a_binding_a_ci_callback_reaches_the_workflow(
    objects: dict[str, str], client: Callable[..., httpx.Client]
) -> None:
    """Not 404: the request is found and the workflow answers (this request has no such
    check, so it refuses)."""
    _, send = CALLS["ci callback"]
    response = send(client(*VIEWER), objects["request"])
    assert response.status_code in (400, 403), response.text
