"""Authorization under the default policy: who may do what on a model, and that a principal
with no binding for a model learns nothing about it, not even whether it exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support.http import SIGNOFF, TRANSITIONS, assert_error, create, target, wait
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow


def model_routes(
    name: str, version: str, stage: str, creator: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """Every route that names a model, as (method, path, httpx keyword arguments)."""
    body = {"name": name, "version": version, "stage": stage}
    return [
        ("POST", f"{TRANSITIONS}/create", {"json": body}),
        ("POST", f"{TRANSITIONS}/approve", {"json": body | {"archive_existing_versions": True}}),
        ("POST", f"{TRANSITIONS}/reject", {"json": body}),
        ("DELETE", f"{TRANSITIONS}/delete", {"params": body | {"creator": creator}}),
        ("GET", f"{TRANSITIONS}/list", {"params": {"name": name, "version": version}}),
        ("GET", f"{SIGNOFF}/activities/list", {"params": {"name": name, "version": version}}),
        ("GET", f"{SIGNOFF}/transition-requests/search", {"params": {"name": name}}),
    ]


def request_routes(request_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every route that names a request by id."""
    return [
        ("GET", f"{SIGNOFF}/transition-requests/get", {"params": {"id": request_id}}),
        (
            "GET",
            f"{SIGNOFF}/transition-requests/wait",
            {"params": {"id": request_id, "timeout_s": 5}},
        ),
    ]


# -- no binding: 403 everywhere, and no difference between existing and missing models --------


def test_a_principal_without_a_binding_gets_403_on_every_route(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Production")
    ivy = as_user("ivy", "intern")

    for method, path, kwargs in model_routes(seeded.name, seeded.version, "Production", "dana"):
        response = ivy.request(method, path, **kwargs)
        message = assert_error(response, 403, "PERMISSION_DENIED")
        assert "ivy" in message, (method, path)
    for method, path, kwargs in request_routes(request["id"]):
        # Looked up by id: the same 404 as for an id that does not exist (tests/security).
        response = ivy.request(method, path, **kwargs)
        assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
        assert seeded.name not in response.text

    # Nothing ivy did touched the request or MLflow.
    got = dana.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
    assert got.json()["request"]["state"] == "PENDING"
    assert got.json()["request"]["approvals"] == []
    assert stage_in_mlflow(mlflow_server.url, seeded) == "None"


def test_a_missing_model_looks_exactly_like_a_forbidden_one(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    create(dana, seeded, "Production")
    missing = f"{seeded.name}-missing"
    ivy = as_user("ivy", "intern")

    existing_routes = model_routes(seeded.name, seeded.version, "Production", "dana")
    missing_routes = model_routes(missing, seeded.version, "Production", "dana")
    for (method, path, kwargs), (_, _, missing_kwargs) in zip(
        existing_routes, missing_routes, strict=True
    ):
        existing = ivy.request(method, path, **kwargs)
        absent = ivy.request(method, path, **missing_kwargs)
        assert_error(existing, 403, "PERMISSION_DENIED")
        assert_error(absent, 403, "PERMISSION_DENIED")
        assert existing.json()["message"].replace(seeded.name, "<model>") == absent.json()[
            "message"
        ].replace(missing, "<model>"), (method, path)
        assert set(existing.headers) == set(absent.headers)


def test_roles_outside_the_policy_and_no_roles_have_no_binding(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    for client in (as_user("nobody"), as_user("eve", "admin", "ML-LEAD")):
        response = client.get(
            f"{TRANSITIONS}/list", params={"name": seeded.name, "version": seeded.version}
        )
        assert_error(response, 403, "PERMISSION_DENIED")


def test_search_without_a_name_hides_models_without_a_binding(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    request = create(as_user("dana", "data-scientist"), seeded, "Staging")
    ivy = as_user("ivy", "intern")
    response = ivy.get(f"{SIGNOFF}/transition-requests/search", params={"max_results": 1000})
    assert response.status_code == 200, response.text
    assert response.json() == {"requests": []}

    lee = as_user("lee", "ml-lead")
    response = lee.get(f"{SIGNOFF}/transition-requests/search", params={"name": seeded.name})
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["requests"]] == [request["id"]]


# -- data scientists: request and read, never decide ------------------------------------------


def test_a_data_scientist_may_request_list_and_read_but_not_approve_or_reject(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    as_user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    dave = as_user("dave", "data-scientist")
    request = create(dana, seeded, "Staging")

    listed = dave.get(
        f"{TRANSITIONS}/list", params={"name": seeded.name, "version": seeded.version}
    )
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["requests"]] == [request["id"]]
    got = dave.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
    assert got.status_code == 200, got.text
    activities = dave.get(
        f"{SIGNOFF}/activities/list", params={"name": seeded.name, "version": seeded.version}
    )
    assert activities.status_code == 200, activities.text

    for client, sub in ((dana, "dana"), (dave, "dave")):
        approve = client.post(
            f"{TRANSITIONS}/approve",
            json=target(seeded, "Staging") | {"archive_existing_versions": False},
        )
        message = assert_error(approve, 403, "PERMISSION_DENIED")
        assert sub in message and "CAN_MANAGE_STAGING_VERSIONS" in message
        reject = client.post(f"{TRANSITIONS}/reject", json=target(seeded, "Staging"))
        assert_error(reject, 403, "PERMISSION_DENIED")
    # ... and another data scientist may not cancel dana's request either.
    cancel = dave.delete(
        f"{TRANSITIONS}/delete", params=target(seeded, "Staging") | {"creator": "dana"}
    )
    assert "CAN_MANAGE" in assert_error(cancel, 403, "PERMISSION_DENIED")

    got = dana.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
    assert got.json()["request"]["state"] == "PENDING"
    assert stage_in_mlflow(mlflow_server.url, seeded) == "None"


def test_approvers_are_limited_to_the_roles_the_rule_names(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    create(as_user("dana", "data-scientist"), seeded, "Staging")
    body = target(seeded, "Staging") | {"archive_existing_versions": False}
    for sub, role in (("rosa", "risk-officer"), ("pat", "platform-admin")):
        response = as_user(sub, role).post(f"{TRANSITIONS}/approve", json=body)
        assert "ml-lead" in assert_error(response, 403, "PERMISSION_DENIED")


# -- cancelling: the requester, or a manager ---------------------------------------------------


def test_the_requester_may_cancel_their_own_request(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Production")
    response = dana.delete(
        f"{TRANSITIONS}/delete", params=target(seeded, "Production") | {"creator": "dana"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["activity"]["activity_type"] == "CANCELLED_REQUEST"
    assert wait(dana, request["id"])["state"] == "CANCELLED"


def test_a_platform_admin_may_cancel_someone_elses_request(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Staging")
    pat = as_user("pat", "platform-admin")
    response = pat.delete(
        f"{TRANSITIONS}/delete",
        params=target(seeded, "Staging") | {"creator": "dana", "comment": "superseded"},
    )
    assert response.status_code == 200, response.text
    activity = response.json()["activity"]
    assert (activity["activity_type"], activity["user_id"]) == ("CANCELLED_REQUEST", "pat")
    done = wait(dana, request["id"])
    assert done["state"] == "CANCELLED"
    assert "pat" in done["reason"]


def test_an_approver_without_manage_may_not_cancel_someone_elses_request(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    dana = as_user("dana", "data-scientist")
    request = create(dana, seeded, "Staging")
    lee = as_user("lee", "ml-lead")
    response = lee.delete(
        f"{TRANSITIONS}/delete", params=target(seeded, "Staging") | {"creator": "dana"}
    )
    assert "CAN_MANAGE" in assert_error(response, 403, "PERMISSION_DENIED")
    got = dana.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
    assert got.json()["request"]["state"] == "PENDING"
