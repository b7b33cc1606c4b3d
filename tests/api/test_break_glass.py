"""Break-glass, `POST /api/2.0/mlflow/databricks/model-versions/transition-stage`, over real
HTTP against a real stack (Temporal, MLflow, worker, API) with its own policy: Production
allows break-glass, Staging does not, Archived has no rule at all.

The stack reaches MLflow through a loopback HTTP proxy (`MlflowProxy`) that forwards every call
unchanged, except that a test can make it answer MLflow's transition-stage call itself (a
refusal with MLflow's error body, or a 503), to show what the API answers when MLflow refuses
or is down at the moment of the move. A loopback receiver verifies both webhook signatures."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors
from databricks.sdk.service.ml import ModelVersionDatabricks, TransitionStageResponse

from tests.support.databricks import workspace_factory
from tests.support.http import TRANSITIONS, assert_error, version_activities
from tests.support.mlflow import SeededVersion, mlflow_version, stage_in_mlflow
from tests.support.mlflow_proxy import MlflowProxy
from tests.support.polling import wait_until
from tests.support.receiver import Receiver, running_receiver
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import webhook_deliveries, webhook_env

BREAK_GLASS = "/api/2.0/mlflow/databricks/model-versions/transition-stage"
HOOKS = "/api/2.0/mlflow/registry-webhooks"
SECRET = "break-glass-receiver-secret"
WHY = "INC-4711: v3 leaks PII, roll forward now"

ADMIN = ("ada", "platform-admin")  # CAN_MANAGE
LEAD = ("lee", "ml-lead")  # CAN_MANAGE_PRODUCTION_VERSIONS: not enough
DANA = ("dana", "data-scientist")  # CAN_EDIT
STRANGER = ("sam", "contractor")  # no binding

POLICY = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - models: ["*"]
    to: Production
    approvals: {quorum: 2, roles: [ml-lead]}
    archive_existing_versions: true
    break_glass: true
  - models: ["*"]
    to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
  - models: ["*"]
    to: None
    approvals: {quorum: 1, roles: [ml-lead]}
    break_glass: true
  - models: ["*"]
    to: "@*"
    approvals: {quorum: 1, roles: [ml-lead]}
    break_glass: true
"""


# -- a loopback proxy in front of the real MLflow ------------------------------------------------


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    proxy: MlflowProxy,
) -> Iterator[SignoffStack]:
    with running_stack(
        tmp_path_factory,
        "break-glass",
        temporal_server.address,
        proxy.url,
        policy=POLICY,
        **webhook_env(),
    ) as stack:
        yield stack


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(Receiver(secret=SECRET)) as running:
        yield running


# -- helpers ----------------------------------------------------------------------------------


def body(seeded: SeededVersion, stage: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": seeded.name,
        "version": seeded.version,
        "stage": stage,
        "archive_existing_versions": False,
        "comment": WHY,
    } | extra


def applied(client: httpx.Client, seeded: SeededVersion, stage: str, **extra: Any) -> dict:
    response = client.post(BREAK_GLASS, json=body(seeded, stage, **extra))
    assert response.status_code == 200, response.text
    return response.json()["model_version_databricks"]


def break_glass_entries(client: httpx.Client, seeded: SeededVersion) -> list[dict[str, Any]]:
    return [
        entry
        for entry in version_activities(client, seeded)
        if entry["activity_type"] == "APPLIED_TRANSITION"
        and "break-glass" in entry.get("system_comment", "").lower()
    ]


def subscribe(client: httpx.Client, model: str, url: str) -> dict[str, Any]:
    response = client.post(
        f"{HOOKS}/create",
        json={
            "model_name": model,
            "events": [
                "MODEL_VERSION_TRANSITIONED_STAGE",
                "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
            ],
            "status": "ACTIVE",
            "http_url_spec": {"url": url, "secret": SECRET},
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["webhook"]


# -- the break-glass path -----------------------------------------------------------------------


def test_break_glass_applies_records_and_announces(
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    receiver: Receiver,
) -> None:
    seeded = make_version()
    admin = user(*ADMIN)
    hook = subscribe(admin, seeded.name, receiver.url)

    # Case-insensitive like the rest of the API.
    response = admin.post(BREAK_GLASS, json=body(seeded, "production"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"model_version_databricks"}
    version = answer["model_version_databricks"]
    in_mlflow = mlflow_version(stack.mlflow_url, seeded)
    assert in_mlflow["current_stage"] == "Production"
    assert version["name"] == seeded.name and version["version"] == seeded.version
    assert version["current_stage"] == "Production"
    assert version["run_id"] == seeded.run_id and version["source"] == in_mlflow["source"]
    assert version["status"] == "READY"
    assert version["permission_level"] == "CAN_MANAGE"
    assert version["last_updated_timestamp"] == in_mlflow["last_updated_timestamp"]
    assert version["open_requests"] == []
    parsed = TransitionStageResponse.from_dict(answer).model_version_databricks
    assert isinstance(parsed, ModelVersionDatabricks) and parsed.current_stage == "Production"

    [entry] = break_glass_entries(user(*DANA), seeded)  # readable by anyone who can read
    assert entry["id"].startswith("breakglass-")
    assert entry["user_id"] == "ada" and entry["comment"] == WHY
    assert (entry["from_stage"], entry["to_stage"]) == ("None", "Production")
    assert entry["system_comment"].startswith("Break-glass transition by ada (CAN_MANAGE)")
    assert "archived" not in entry["system_comment"]

    delivered = wait_until(
        lambda: len(receiver.delivered) >= 2 and receiver.delivered, "both deliveries"
    )

    # Once each, no retries: both deliveries are settled after a single attempt.
    def settled() -> list[dict[str, Any]] | None:
        log = webhook_deliveries(admin, hook["id"])
        return log if len(log) == 2 and all(d["state"] == "DELIVERED" for d in log) else None

    log = wait_until(settled, "both deliveries recorded as delivered")
    assert [len(d["attempts"]) for d in log] == [1, 1]
    assert len(receiver.received) == 2
    payloads = {got.json["event"]: got.json for got in delivered}
    assert set(payloads) == {
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    }
    assert all(got.verified for got in delivered)
    for payload in payloads.values():
        assert payload["webhook_id"] == hook["id"]
        assert payload["model_name"] == seeded.name and payload["version"] == seeded.version
        assert (payload["from_stage"], payload["to_stage"]) == ("None", "Production")
        assert payload["comment"] == WHY
        assert payload["text"].startswith("Break-glass transition by ada:")


def test_open_request_for_the_same_target_stays_open_and_is_named(
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    dana, admin = user(*DANA), user(*ADMIN)
    created = dana.post(
        f"{TRANSITIONS}/create",
        json={"name": seeded.name, "version": seeded.version, "stage": "Production"},
    )
    assert created.status_code == 200, created.text
    request_id = created.json()["request"]["id"]

    version = applied(admin, seeded, "Production")
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "Production"
    [listed] = version["open_requests"]
    assert (listed["id"], listed["activity_type"]) == (request_id, "REQUESTED_TRANSITION")

    [entry] = break_glass_entries(admin, seeded)
    assert (
        f"open request for the same target stays open: {request_id} by dana"
        in (entry["system_comment"])
    )
    still_open = admin.get(
        f"{TRANSITIONS}/list", params={"name": seeded.name, "version": seeded.version}
    )
    assert [r["id"] for r in still_open.json()["requests"]] == [request_id]


def test_archive_existing_versions_archives_the_previous_production(
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
) -> None:
    first = make_version()
    second = make_version(first.name)
    third = make_version(first.name)
    admin = user(*ADMIN)
    applied(admin, first, "Production")

    # Without the flag the caller asked for two versions in Production, as in Databricks.
    applied(admin, second, "Production", archive_existing_versions=False)
    assert stage_in_mlflow(stack.mlflow_url, first) == "Production"

    version = applied(admin, third, "Production", archive_existing_versions=True)
    assert version["current_stage"] == "Production"
    assert stage_in_mlflow(stack.mlflow_url, first) == "Archived"
    assert stage_in_mlflow(stack.mlflow_url, second) == "Archived"
    assert stage_in_mlflow(stack.mlflow_url, third) == "Production"
    [entry] = break_glass_entries(admin, third)
    assert "other versions in Production archived" in entry["system_comment"]

    # Back out of Production (the None rule allows break-glass too).
    back = applied(admin, third, "None")
    assert back["current_stage"] == "None"
    entries = break_glass_entries(admin, third)
    assert [(e["from_stage"], e["to_stage"]) for e in entries] == [
        ("None", "Production"),
        ("Production", "None"),
    ]


# -- refusals: nothing changes in MLflow, nothing is recorded -----------------------------------


def assert_unchanged(
    stack: SignoffStack, admin: httpx.Client, seeded: SeededVersion, stage: str = "None"
) -> None:
    assert stage_in_mlflow(stack.mlflow_url, seeded) == stage
    assert break_glass_entries(admin, seeded) == []


@pytest.mark.parametrize("who", [LEAD, DANA, STRANGER], ids=["ml-lead", "data-scientist", "none"])
def test_without_can_manage_is_403(
    who: tuple[str, str],
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    message = assert_error(
        user(*who).post(BREAK_GLASS, json=body(seeded, "Production")), 403, "PERMISSION_DENIED"
    )
    assert who[0] in message
    assert_unchanged(stack, user(*ADMIN), seeded)


def test_rule_without_break_glass_or_no_rule_is_403(
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    admin = user(*ADMIN)
    message = assert_error(
        admin.post(BREAK_GLASS, json=body(seeded, "Staging")), 403, "PERMISSION_DENIED"
    )
    assert "policy rule" in message and "Staging" in message and "break_glass: true" in message
    message = assert_error(
        admin.post(BREAK_GLASS, json=body(seeded, "archived")), 403, "PERMISSION_DENIED"
    )
    assert "no rule of the policy" in message and "Archived" in message
    assert_unchanged(stack, admin, seeded)


@pytest.mark.parametrize(
    "comment",
    [None, "", "   \n\t"],
    ids=["missing", "empty", "blank"],
)
def test_comment_is_mandatory(
    comment: str | None,
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    admin = user(*ADMIN)
    request = body(seeded, "Production")
    if comment is None:
        del request["comment"]
    else:
        request["comment"] = comment
    message = assert_error(admin.post(BREAK_GLASS, json=request), 400, "INVALID_PARAMETER_VALUE")
    assert "comment" in message
    assert_unchanged(stack, admin, seeded)


def test_bad_targets_and_unknown_versions(
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    admin = user(*ADMIN)
    # An alias is refused even though the policy's "@*" rule allows break-glass.
    message = assert_error(
        admin.post(BREAK_GLASS, json=body(seeded, "@champion")), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "stages only" in message
    assert mlflow_version(stack.mlflow_url, seeded).get("aliases", []) == []
    message = assert_error(
        admin.post(BREAK_GLASS, json=body(seeded, "Prod")), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "'Prod' is not a stage" in message
    assert_error(
        admin.post(BREAK_GLASS, json=body(seeded, "Production", version="x")),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    missing = SeededVersion(name=seeded.name, version="999", run_id="")
    message = assert_error(
        admin.post(BREAK_GLASS, json=body(missing, "Production")), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert "version 999" in message
    no_model = SeededVersion(name=f"{seeded.name}-missing", version="1", run_id="")
    assert_error(
        admin.post(BREAK_GLASS, json=body(no_model, "Production")), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    with stack.client() as anonymous:
        assert_error(
            anonymous.post(BREAK_GLASS, json=body(seeded, "Production")), 401, "UNAUTHENTICATED"
        )
    assert_unchanged(stack, admin, seeded)

    applied(admin, seeded, "Production")
    message = assert_error(
        admin.post(BREAK_GLASS, json=body(seeded, "Production")), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "already in Production" in message
    assert len(break_glass_entries(admin, seeded)) == 1


def test_mlflow_refusing_or_down_at_the_move(
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    proxy: MlflowProxy,
    user: Callable[..., httpx.Client],
) -> None:
    seeded = make_version()
    admin = user(*ADMIN)
    refusal = {"error_code": "INVALID_PARAMETER_VALUE", "message": "Model version is frozen."}
    with proxy.answering(400, refusal):
        message = assert_error(
            admin.post(BREAK_GLASS, json=body(seeded, "Production")),
            400,
            "INVALID_PARAMETER_VALUE",
        )
    assert message == "MLflow refused the transition: Model version is frozen."
    assert proxy.intercepted[-1] == {
        "name": seeded.name,
        "version": seeded.version,
        "stage": "Production",
        "archive_existing_versions": False,
    }
    assert_unchanged(stack, admin, seeded)

    down = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "maintenance"}
    with proxy.answering(503, down):
        message = assert_error(
            admin.post(BREAK_GLASS, json=body(seeded, "Production")),
            503,
            "TEMPORARILY_UNAVAILABLE",
        )
    assert message.startswith("MLflow is not reachable")
    assert_unchanged(stack, admin, seeded)

    # Archiving alongside a move to None: Signoff's MLflow client refuses it as MLflow would.
    message = assert_error(
        admin.post(BREAK_GLASS, json=body(seeded, "None", archive_existing_versions=True)),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "already in None" in message
    applied(admin, seeded, "Production")
    message = assert_error(
        admin.post(BREAK_GLASS, json=body(seeded, "None", archive_existing_versions=True)),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert message.startswith("MLflow refused the transition: Cannot archive existing versions")
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "Production"
    assert len(break_glass_entries(admin, seeded)) == 1

    # The refused attempts left no pending mark behind: the next move goes through.
    assert applied(admin, seeded, "None")["current_stage"] == "None"


# -- the Databricks SDK, unchanged --------------------------------------------------------------


@pytest.fixture
def workspace(
    stack: SignoffStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., WorkspaceClient]:
    """The Databricks SDK pointed at this suite's stack."""
    return workspace_factory(stack, tmp_path, monkeypatch)


def test_databricks_sdk_transition_stage(
    make_version: Callable[..., SeededVersion],
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    workspace: Callable[..., WorkspaceClient],
) -> None:
    seeded = make_version()
    ada = workspace(*ADMIN).model_registry
    response = ada.transition_stage(
        name=seeded.name,
        version=seeded.version,
        stage="Production",
        archive_existing_versions=True,
        comment=WHY,
    )
    assert isinstance(response, TransitionStageResponse)
    version = response.model_version_databricks
    assert version is not None
    assert (version.name, version.version, version.current_stage) == (
        seeded.name,
        seeded.version,
        "Production",
    )
    assert version.run_id == seeded.run_id
    assert version.permission_level is not None and version.permission_level.value == "CAN_MANAGE"
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "Production"
    [entry] = break_glass_entries(user(*ADMIN), seeded)
    assert entry["comment"] == WHY

    other = make_version(seeded.name)
    lee = workspace(*LEAD).model_registry
    with pytest.raises(sdk_errors.PermissionDenied) as denied:
        lee.transition_stage(
            name=other.name,
            version=other.version,
            stage="Production",
            archive_existing_versions=False,
            comment=WHY,
        )
    assert "CAN_MANAGE" in str(denied.value)
    with pytest.raises(sdk_errors.PermissionDenied):
        ada.transition_stage(
            name=other.name, version=other.version, stage="Staging", archive_existing_versions=False
        )
    with pytest.raises(sdk_errors.InvalidParameterValue) as no_comment:
        ada.transition_stage(
            name=other.name,
            version=other.version,
            stage="Production",
            archive_existing_versions=False,
        )
    assert "comment" in str(no_comment.value)
    with pytest.raises(sdk_errors.ResourceDoesNotExist):
        ada.transition_stage(
            name=other.name,
            version="999",
            stage="Production",
            archive_existing_versions=False,
            comment=WHY,
        )
    assert stage_in_mlflow(stack.mlflow_url, other) == "None"


def test_concurrent_break_glass_calls_move_the_version_once(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    """Regression: two CAN_MANAGE principals pressing the button together both passed the
    "already in that stage" check and both moved and recorded the version."""
    for _ in range(3):
        seeded = make_version()
        clients = [user(f"admin-{i}", "platform-admin") for i in range(4)]
        start = threading.Barrier(len(clients))

        def press(
            client: httpx.Client, start: threading.Barrier = start, seeded: SeededVersion = seeded
        ) -> httpx.Response:
            start.wait()
            return client.post(BREAK_GLASS, json=body(seeded, "Production"))

        with ThreadPoolExecutor(len(clients)) as pool:
            answers = list(pool.map(press, clients))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses.count(200) == 1, [a.text for a in answers]
        assert set(statuses) <= {200, 400, 409}, [a.text for a in answers]
        assert len(break_glass_entries(clients[0], seeded)) == 1
