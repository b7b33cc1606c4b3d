"""The Databricks SDK's `ModelRegistryAPI`, unchanged, against Signoff: only the host and the
token differ from a Databricks workspace.

Offline notes: with `auth_type="pat"` the SDK needs nothing but the host. On construction it
probes `GET /.well-known/databricks-config` (best effort; Signoff answers 404 and the SDK logs a
warning and carries on with the explicit configuration). No call leaves the loopback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors
from databricks.sdk.service.ml import (
    Activity,
    ActivityAction,
    ActivityType,
    ApproveTransitionRequestResponse,
    CreateTransitionRequestResponse,
    DeleteTransitionRequestResponse,
    RejectTransitionRequestResponse,
    TransitionRequest,
)

from tests.support.databricks import workspace_factory
from tests.support.http import SIGNOFF
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.stack import SignoffStack


@pytest.fixture
def workspace(
    signoff_stack: SignoffStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., WorkspaceClient]:
    """The Databricks SDK pointed at this suite's stack."""
    return workspace_factory(signoff_stack, tmp_path, monkeypatch)


@pytest.fixture
def api(signoff_stack: SignoffStack) -> Iterator[httpx.Client]:
    """A plain HTTP client (as dana) to read Signoff's own endpoints the SDK has no call for."""
    with signoff_stack.client("dana", "data-scientist") as client:
        yield client


def wait_state(api: httpx.Client, request_id: str) -> str:
    response = api.get(
        f"{SIGNOFF}/transition-requests/wait", params={"id": request_id, "timeout_s": 30}
    )
    assert response.status_code == 200, response.text
    return response.json()["request"]["state"]


def test_sdk_request_list_and_approve_to_production(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    workspace: Callable[..., WorkspaceClient],
    api: httpx.Client,
) -> None:
    seeded = make_version()
    dana = workspace("dana", "data-scientist").model_registry
    lee = workspace("lee", "ml-lead").model_registry
    rosa = workspace("rosa", "risk-officer").model_registry

    created = dana.create_transition_request(
        name=seeded.name, version=seeded.version, stage="Production", comment="ready"
    )
    assert isinstance(created, CreateTransitionRequestResponse)
    assert isinstance(created.request, TransitionRequest)
    assert created.request.to_stage == "Production"
    assert created.request.user_id == "dana"
    assert created.request.comment == "ready"
    assert isinstance(created.request.creation_timestamp, int)
    assert created.request.available_actions == [ActivityAction.CANCEL_TRANSITION_REQUEST]

    listed = list(lee.list_transition_requests(name=seeded.name, version=seeded.version))
    assert len(listed) == 1
    assert isinstance(listed[0], Activity)
    assert listed[0].activity_type is ActivityType.REQUESTED_TRANSITION
    assert (listed[0].user_id, listed[0].to_stage, listed[0].from_stage) == (
        "dana",
        "Production",
        "None",
    )
    request_id = listed[0].id
    assert request_id

    first = lee.approve_transition_request(
        name=seeded.name,
        version=seeded.version,
        stage="Production",
        archive_existing_versions=True,
        comment="lgtm",
    )
    assert isinstance(first, ApproveTransitionRequestResponse)
    assert first.activity.activity_type is ActivityType.APPROVED_REQUEST
    assert (first.activity.user_id, first.activity.comment) == ("lee", "lgtm")
    assert stage_in_mlflow(mlflow_server.url, seeded) == "None"

    second = rosa.approve_transition_request(
        name=seeded.name, version=seeded.version, stage="Production", archive_existing_versions=True
    )
    assert second.activity.activity_type is ActivityType.APPROVED_REQUEST
    assert second.activity.user_id == "rosa"
    assert stage_in_mlflow(mlflow_server.url, seeded) == "Production"

    assert wait_state(api, request_id) == "APPLIED"
    assert list(dana.list_transition_requests(name=seeded.name, version=seeded.version)) == []
    trail = api.get(
        f"{SIGNOFF}/activities/list", params={"name": seeded.name, "version": seeded.version}
    ).json()["activities"]
    assert [Activity.from_dict(item).activity_type for item in trail] == [
        ActivityType.REQUESTED_TRANSITION,
        ActivityType.APPROVED_REQUEST,
        ActivityType.APPROVED_REQUEST,
        ActivityType.APPLIED_TRANSITION,
    ]


def test_sdk_reject(
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
    workspace: Callable[..., WorkspaceClient],
    api: httpx.Client,
) -> None:
    seeded = make_version()
    dana = workspace("dana", "data-scientist").model_registry
    created = dana.create_transition_request(
        name=seeded.name, version=seeded.version, stage="Staging"
    )
    lee = workspace("lee", "ml-lead").model_registry

    rejected = lee.reject_transition_request(
        name=seeded.name, version=seeded.version, stage="Staging", comment="needs work"
    )
    assert isinstance(rejected, RejectTransitionRequestResponse)
    assert rejected.activity.activity_type is ActivityType.REJECTED_REQUEST
    assert (rejected.activity.user_id, rejected.activity.comment) == ("lee", "needs work")
    assert created.request.to_stage == "Staging"
    assert stage_in_mlflow(mlflow_server.url, seeded) == "None"
    assert list(dana.list_transition_requests(name=seeded.name, version=seeded.version)) == []


def test_sdk_delete_cancels_the_request(
    make_version: Callable[..., SeededVersion],
    workspace: Callable[..., WorkspaceClient],
    api: httpx.Client,
) -> None:
    seeded = make_version()
    dana = workspace("dana", "data-scientist").model_registry
    dana.create_transition_request(name=seeded.name, version=seeded.version, stage="@champion")
    (open_request,) = dana.list_transition_requests(name=seeded.name, version=seeded.version)

    deleted = dana.delete_transition_request(
        name=seeded.name,
        version=seeded.version,
        stage="@champion",
        creator="dana",
        comment="not this one",
    )
    assert isinstance(deleted, DeleteTransitionRequestResponse)
    assert deleted.activity.activity_type is ActivityType.CANCELLED_REQUEST
    assert (deleted.activity.user_id, deleted.activity.comment) == ("dana", "not this one")
    assert wait_state(api, open_request.id) == "CANCELLED"


def test_sdk_errors_surface_as_the_sdks_exceptions_with_our_messages(
    make_version: Callable[..., SeededVersion],
    signoff_stack: SignoffStack,
    workspace: Callable[..., WorkspaceClient],
) -> None:
    seeded = make_version()
    dana = workspace("dana", "data-scientist").model_registry
    dana.create_transition_request(name=seeded.name, version=seeded.version, stage="Staging")

    with pytest.raises(sdk_errors.ResourceAlreadyExists) as duplicate:
        dana.create_transition_request(name=seeded.name, version=seeded.version, stage="Staging")
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert "already exists" in str(duplicate.value)

    with pytest.raises(sdk_errors.PermissionDenied) as denied:
        dana.approve_transition_request(
            name=seeded.name,
            version=seeded.version,
            stage="Staging",
            archive_existing_versions=False,
        )
    assert denied.value.error_code == "PERMISSION_DENIED"
    assert "CAN_MANAGE_STAGING_VERSIONS" in str(denied.value)

    with pytest.raises(sdk_errors.InvalidParameterValue) as invalid:
        dana.create_transition_request(name=seeded.name, version=seeded.version, stage="Prod")
    assert isinstance(invalid.value, sdk_errors.BadRequest)
    assert "'Prod' is not a stage" in str(invalid.value)

    with pytest.raises(sdk_errors.ResourceDoesNotExist) as missing:
        dana.create_transition_request(name=f"{seeded.name}-missing", version="1", stage="Staging")
    assert isinstance(missing.value, sdk_errors.NotFound)
    assert "does not exist" in str(missing.value)

    with pytest.raises(sdk_errors.NotFound):
        dana.delete_transition_request(
            name=seeded.name, version=seeded.version, stage="Staging", creator="someone-else"
        )

    intern = workspace("ivy", "intern").model_registry
    with pytest.raises(sdk_errors.PermissionDenied):
        list(intern.list_transition_requests(name=seeded.name, version=seeded.version))

    expired = signoff_stack.token("dana", "data-scientist", ttl_s=-60)
    stale = workspace("dana", token=expired).model_registry
    with pytest.raises(sdk_errors.Unauthenticated) as unauthenticated:
        list(stale.list_transition_requests(name=seeded.name, version=seeded.version))
    assert "expired" in str(unauthenticated.value)
    assert expired not in str(unauthenticated.value)


def test_sdk_self_approval_is_refused(
    make_version: Callable[..., SeededVersion], workspace: Callable[..., WorkspaceClient]
) -> None:
    seeded = make_version()
    lee = workspace("lee", "ml-lead").model_registry
    lee.create_transition_request(name=seeded.name, version=seeded.version, stage="Production")
    with pytest.raises(sdk_errors.PermissionDenied) as refused:
        lee.approve_transition_request(
            name=seeded.name,
            version=seeded.version,
            stage="Production",
            archive_existing_versions=True,
        )
    assert "self-approval" in str(refused.value)
