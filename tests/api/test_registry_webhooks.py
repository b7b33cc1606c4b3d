"""Registry webhooks over real HTTP against a real stack (Temporal, MLflow, worker, API) with an
encryption key and a loopback allow-list: Databricks' `/api/2.0/mlflow/registry-webhooks/*`
shapes, the secret never returned nor stored in plaintext, permissions, the SSRF guard, the test
endpoint against a loopback receiver verifying both signatures, the deliveries list and
redelivery; and the Databricks SDK's webhook calls, unchanged, against Signoff."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors
from databricks.sdk.service.ml import (
    HttpUrlSpec,
    RegistryWebhookEvent,
    RegistryWebhookStatus,
)

from tests.support.databricks import workspace_factory
from tests.support.http import assert_error
from tests.support.ledger import ledger_rows
from tests.support.mlflow import MlflowServer
from tests.support.polling import wait_until
from tests.support.receiver import Receiver, running_receiver
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import webhook_deliveries, webhook_env

HOOKS = "/api/2.0/mlflow/registry-webhooks"
SIGNOFF_HOOKS = "/api/2.0/signoff/registry-webhooks"
SECRET = "receiver-shared-secret"
AUTHORIZATION = "Bearer receiver-token-123"
WEBHOOK_FIELDS = {
    "id",
    "creation_timestamp",
    "last_updated_timestamp",
    "events",
    "status",
    "http_url_spec",
}

# Default policy: data-scientist CAN_EDIT, ml-lead CAN_MANAGE_PRODUCTION_VERSIONS,
# platform-admin CAN_MANAGE (all on "*"); a role the policy does not know binds nothing.
DANA = ("dana", "data-scientist")
LEAD = ("lee", "ml-lead")
ADMIN = ("ada", "platform-admin")
STRANGER = ("sam", "contractor")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    """A stack with SIGNOFF_ENCRYPTION_KEY and loopback (by address only) allowed."""
    with running_stack(
        tmp_path_factory, "webhooks", temporal_server.address, mlflow_server.url, **webhook_env()
    ) as stack:
        yield stack


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(Receiver(secret=SECRET)) as running:
        yield running


def spec(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "secret": SECRET, "authorization": AUTHORIZATION} | extra


def create(client: httpx.Client, **body: Any) -> httpx.Response:
    body.setdefault("events", ["MODEL_VERSION_TRANSITIONED_STAGE"])
    return client.post(f"{HOOKS}/create", json=body)


def created(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = create(client, **body)
    assert response.status_code == 200, response.text
    return response.json()["webhook"]


def db_row(stack: SignoffStack, webhook_id: str) -> dict[str, Any]:
    rows = ledger_rows(stack.database_url, "SELECT * FROM webhooks WHERE id = :id", id=webhook_id)
    assert len(rows) == 1
    return rows[0]


# -- CRUD shapes and secrets ----------------------------------------------------------------------


def test_crud_shapes_and_secret_never_returned(
    stack: SignoffStack, user: Callable[..., httpx.Client], receiver: Receiver
) -> None:
    admin = user(*ADMIN)
    hook = created(
        admin,
        model_name="fraud",
        description="to chat",
        status="ACTIVE",
        http_url_spec=spec(receiver.url, enable_ssl_verification=False),
    )
    assert set(hook) == WEBHOOK_FIELDS | {"model_name", "description"}
    assert hook["http_url_spec"] == {"url": receiver.url, "enable_ssl_verification": False}
    assert hook["events"] == ["MODEL_VERSION_TRANSITIONED_STAGE"]
    assert hook["status"] == "ACTIVE" and hook["model_name"] == "fraud"
    assert hook["creation_timestamp"] == hook["last_updated_timestamp"] > 0

    # Stored encrypted: neither the secret nor the authorization in the row.
    row = db_row(stack, hook["id"])
    stored = " ".join(str(value) for value in row.values())
    assert SECRET not in stored and "receiver-token-123" not in stored
    assert row["secret_enc"] and row["authorization_enc"]

    wide = created(admin, events=["REGISTERED_MODEL_CREATED"], http_url_spec=spec(receiver.url))
    assert "model_name" not in wide and wide["status"] == "ACTIVE"  # the default

    listed = admin.get(f"{HOOKS}/list")
    assert listed.status_code == 200
    ids = [h["id"] for h in listed.json()["webhooks"]]
    assert hook["id"] in ids and wide["id"] in ids
    by_model = admin.get(f"{HOOKS}/list", params={"model_name": "fraud"}).json()["webhooks"]
    assert hook["id"] in [h["id"] for h in by_model] and wide["id"] not in by_model
    by_event = admin.get(f"{HOOKS}/list", params={"events": "REGISTERED_MODEL_CREATED"})
    assert [h["id"] for h in by_event.json()["webhooks"]] == [wide["id"]]

    updated = admin.patch(
        f"{HOOKS}/update",
        json={
            "id": hook["id"],
            "status": "TEST_MODE",
            "events": ["COMMENT_CREATED", "TRANSITION_REQUEST_APPROVED"],
            "http_url_spec": {"url": receiver.url, "secret": "rotated-secret"},
        },
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()["webhook"]
    assert body["status"] == "TEST_MODE"
    assert body["events"] == ["COMMENT_CREATED", "TRANSITION_REQUEST_APPROVED"]
    assert body["http_url_spec"] == {"url": receiver.url, "enable_ssl_verification": False}
    assert body["last_updated_timestamp"] >= body["creation_timestamp"]
    row_after = db_row(stack, hook["id"])
    assert row_after["secret_enc"] != row["secret_enc"]
    assert row_after["authorization_enc"] == row["authorization_enc"]  # kept when not sent

    for text in (listed.text, updated.text):
        assert SECRET not in text and "rotated-secret" not in text and "receiver-token" not in text

    assert admin.delete(f"{HOOKS}/delete", params={"id": hook["id"]}).json() == {}
    assert_error(
        admin.delete(f"{HOOKS}/delete", params={"id": hook["id"]}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_error(
        admin.patch(f"{HOOKS}/update", json={"id": hook["id"], "status": "ACTIVE"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_validation_errors(user: Callable[..., httpx.Client], receiver: Receiver) -> None:
    admin = user(*ADMIN)
    url_spec = {"url": receiver.url}
    cases = [
        {"events": ["NOT_AN_EVENT"], "http_url_spec": url_spec},
        {"events": [], "http_url_spec": url_spec},
        {"events": ["COMMENT_CREATED"], "status": "SOMETIMES", "http_url_spec": url_spec},
        {"events": ["COMMENT_CREATED"]},
        {"events": ["COMMENT_CREATED"], "job_spec": {"job_id": "1"}, "http_url_spec": url_spec},
        {"events": ["REGISTERED_MODEL_CREATED"], "model_name": "fraud", "http_url_spec": url_spec},
        {"events": ["COMMENT_CREATED"], "http_url_spec": {"url": "ftp://example.com/x"}},
    ]
    for body in cases:
        assert_error(admin.post(f"{HOOKS}/create", json=body), 400, "INVALID_PARAMETER_VALUE")


# -- permissions -------------------------------------------------------------------------------


def test_permissions(user: Callable[..., httpx.Client], receiver: Receiver) -> None:
    dana, lead, admin, stranger = user(*DANA), user(*LEAD), user(*ADMIN), user(*STRANGER)
    url_spec = {"url": receiver.url}

    # CAN_EDIT: model-level TEST_MODE only.
    mine = created(dana, model_name="fraud", status="TEST_MODE", http_url_spec=url_spec)
    assert_error(
        create(dana, model_name="fraud", status="ACTIVE", http_url_spec=url_spec),
        403,
        "PERMISSION_DENIED",
    )
    assert_error(create(dana, status="TEST_MODE", http_url_spec=url_spec), 403, "PERMISSION_DENIED")
    assert_error(
        dana.patch(f"{HOOKS}/update", json={"id": mine["id"], "status": "ACTIVE"}),
        403,
        "PERMISSION_DENIED",
    )
    # CAN_MANAGE_PRODUCTION_VERSIONS is not CAN_MANAGE.
    assert_error(
        create(lead, model_name="fraud", status="ACTIVE", http_url_spec=url_spec),
        403,
        "PERMISSION_DENIED",
    )
    assert_error(create(lead, http_url_spec=url_spec), 403, "PERMISSION_DENIED")
    # No binding at all: 403 on create, and the webhook does not exist for them.
    assert_error(
        create(stranger, model_name="fraud", status="TEST_MODE", http_url_spec=url_spec),
        403,
        "PERMISSION_DENIED",
    )
    assert_error(
        stranger.delete(f"{HOOKS}/delete", params={"id": mine["id"]}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert_error(
        stranger.get(f"{SIGNOFF_HOOKS}/deliveries", params={"id": mine["id"]}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert mine["id"] not in [h["id"] for h in stranger.get(f"{HOOKS}/list").json()["webhooks"]]
    assert_error(
        stranger.get(f"{HOOKS}/list", params={"model_name": "fraud"}), 403, "PERMISSION_DENIED"
    )

    # CAN_MANAGE: everything; a registry-wide webhook is invisible to the others.
    active = created(admin, model_name="fraud", status="ACTIVE", http_url_spec=url_spec)
    wide = created(admin, http_url_spec=url_spec)
    seen = [h["id"] for h in dana.get(f"{HOOKS}/list").json()["webhooks"]]
    assert mine["id"] in seen and active["id"] in seen and wide["id"] not in seen
    assert_error(
        dana.delete(f"{HOOKS}/delete", params={"id": active["id"]}), 403, "PERMISSION_DENIED"
    )
    assert_error(
        dana.delete(f"{HOOKS}/delete", params={"id": wide["id"]}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    ok = admin.patch(f"{HOOKS}/update", json={"id": mine["id"], "status": "ACTIVE"})
    assert ok.status_code == 200, ok.text
    assert dana.delete(f"{HOOKS}/delete", params={"id": active["id"]}).status_code == 403
    assert admin.delete(f"{HOOKS}/delete", params={"id": wide["id"]}).status_code == 200


# -- SSRF --------------------------------------------------------------------------------------


def test_ssrf_refused_at_create_and_update(
    user: Callable[..., httpx.Client], receiver: Receiver
) -> None:
    admin = user(*ADMIN)
    port = receiver.url.split(":")[2].split("/")[0]
    for url in (
        f"http://localhost:{port}/hook",  # resolves to loopback; only 127.0.0.1 is allowed
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
    ):
        message = assert_error(
            create(admin, model_name="fraud", http_url_spec={"url": url}),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        assert "SIGNOFF_WEBHOOK_ALLOW_HOSTS" in message, message
    hook = created(admin, model_name="fraud", http_url_spec={"url": receiver.url})
    refused = admin.patch(
        f"{HOOKS}/update",
        json={"id": hook["id"], "http_url_spec": {"url": "http://10.1.1.1/x"}},
    )
    assert "private" in assert_error(refused, 400, "INVALID_PARAMETER_VALUE")


def test_loopback_refused_without_allow_list_and_secret_needs_key(
    as_user: Callable[..., httpx.Client],
) -> None:
    """The shared stack has neither SIGNOFF_WEBHOOK_ALLOW_HOSTS nor SIGNOFF_ENCRYPTION_KEY."""
    admin = as_user(*ADMIN)
    message = assert_error(
        create(admin, model_name="fraud", http_url_spec={"url": "http://127.0.0.1:9/hook"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "loopback" in message and "SIGNOFF_WEBHOOK_ALLOW_HOSTS" in message
    message = assert_error(
        create(
            admin, model_name="fraud", http_url_spec={"url": "https://8.8.8.8/h", "secret": "s"}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "SIGNOFF_ENCRYPTION_KEY" in message
    ok = create(
        admin, model_name="fraud", status="DISABLED", http_url_spec={"url": "https://8.8.8.8/h"}
    )
    assert ok.status_code == 200, ok.text
    assert (
        admin.delete(f"{HOOKS}/delete", params={"id": ok.json()["webhook"]["id"]}).status_code
        == 200
    )


# -- test endpoint, deliveries, redelivery --------------------------------------------------------


def test_test_endpoint_delivers_signed_and_redelivery(
    user: Callable[..., httpx.Client], receiver: Receiver
) -> None:
    dana, admin = user(*DANA), user(*ADMIN)
    hook = created(dana, model_name="fraud", status="TEST_MODE", http_url_spec=spec(receiver.url))
    response = dana.post(f"{HOOKS}/test", json={"id": hook["id"], "event": "COMMENT_CREATED"})
    assert response.status_code == 200, response.text
    assert response.json() == {"status_code": 200, "body": "ok"}
    [got] = receiver.received
    assert got.verified
    assert got.headers["authorization"] == AUTHORIZATION
    assert got.json["event"] == "COMMENT_CREATED" and got.json["webhook_id"] == hook["id"]
    assert got.json["model_name"] == "fraud" and got.json["text"]

    [delivery] = webhook_deliveries(dana, hook["id"])
    assert delivery["state"] == "DELIVERED" and delivery["event"] == "COMMENT_CREATED"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200 and attempt["error"] is None
    assert attempt["latency_ms"] >= 0 and attempt["timestamp"] > 0

    # Without an event: the webhook's first.
    assert dana.post(f"{HOOKS}/test", json={"id": hook["id"]}).status_code == 200
    assert receiver.received[-1].json["event"] == "MODEL_VERSION_TRANSITIONED_STAGE"

    # Redelivery: a new durable delivery through the worker, same payload.
    redone = admin.post(f"{SIGNOFF_HOOKS}/redeliver", json={"delivery_id": delivery["id"]})
    assert redone.status_code == 200, redone.text
    new_id = redone.json()["delivery"]["id"]
    assert new_id != delivery["id"]

    def done() -> dict[str, Any] | None:
        rows = {d["id"]: d for d in webhook_deliveries(admin, hook["id"])}
        row = rows.get(new_id)
        return row if row and row["state"] == "DELIVERED" else None

    assert len(wait_until(done, "the delivery settled")["attempts"]) == 1
    assert len(receiver.received) == 3 and all(r.verified for r in receiver.received)
    assert receiver.received[-1].json == delivery["payload"]
    assert receiver.received[-1].headers["webhook-id"] == new_id
    assert_error(
        admin.post(f"{SIGNOFF_HOOKS}/redeliver", json={"delivery_id": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_test_endpoint_410_disables_and_errors(
    user: Callable[..., httpx.Client], receiver: Receiver
) -> None:
    admin = user(*ADMIN)
    hook = created(admin, model_name="fraud", http_url_spec=spec(receiver.url))
    receiver.script.append(410)
    response = admin.post(f"{HOOKS}/test", json={"id": hook["id"]})
    assert response.json()["status_code"] == 410
    listed = admin.get(f"{HOOKS}/list", params={"model_name": "fraud"}).json()["webhooks"]
    assert {h["id"]: h["status"] for h in listed}[hook["id"]] == "DISABLED"
    [delivery] = webhook_deliveries(admin, hook["id"])
    assert delivery["state"] == "GONE" and "410" in delivery["attempts"][0]["error"]

    # Disabled means silent, tests included, until someone turns it back on.
    message = assert_error(
        admin.post(f"{HOOKS}/test", json={"id": hook["id"]}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "DISABLED" in message and len(receiver.received) == 1
    updated = admin.patch(f"{HOOKS}/update", json={"id": hook["id"], "status": "TEST_MODE"})
    assert updated.status_code == 200, updated.text
    receiver.script.append(500)
    assert admin.post(f"{HOOKS}/test", json={"id": hook["id"]}).json()["status_code"] == 500

    # A receiver that is not there: a clear error, recorded.
    dead = created(admin, model_name="fraud", http_url_spec={"url": "http://127.0.0.1:9/none"})
    message = assert_error(
        admin.post(f"{HOOKS}/test", json={"id": dead["id"]}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "failed" in message
    [failed] = webhook_deliveries(admin, dead["id"])
    assert failed["state"] == "FAILED" and failed["attempts"][0]["error"]


# -- the Databricks SDK ---------------------------------------------------------------------------


@pytest.fixture
def workspace(
    stack: SignoffStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., WorkspaceClient]:
    """The Databricks SDK pointed at this suite's stack."""
    return workspace_factory(stack, tmp_path, monkeypatch)


def test_databricks_sdk_webhook_calls(
    workspace: Callable[..., WorkspaceClient], receiver: Receiver
) -> None:
    ml = workspace(*ADMIN).model_registry
    hook = ml.create_webhook(
        events=[RegistryWebhookEvent.MODEL_VERSION_CREATED],
        model_name="fraud",
        description="sdk",
        status=RegistryWebhookStatus.TEST_MODE,
        http_url_spec=HttpUrlSpec(url=receiver.url, secret=SECRET),
    ).webhook
    assert hook is not None and hook.id and hook.status == RegistryWebhookStatus.TEST_MODE
    assert hook.http_url_spec is not None and hook.http_url_spec.url == receiver.url
    assert hook.events == [RegistryWebhookEvent.MODEL_VERSION_CREATED]

    assert hook.id in [h.id for h in ml.list_webhooks(model_name="fraud")]
    tested = ml.test_registry_webhook(hook.id)
    assert tested.status_code == 200 and tested.body == "ok"
    assert receiver.received[-1].verified

    updated = ml.update_webhook(
        hook.id, status=RegistryWebhookStatus.ACTIVE, description="now live"
    ).webhook
    assert updated is not None and updated.status == RegistryWebhookStatus.ACTIVE
    assert updated.description == "now live"
    ml.delete_webhook(hook.id)
    with pytest.raises(sdk_errors.NotFound):
        ml.test_registry_webhook(hook.id)
    with pytest.raises(sdk_errors.PermissionDenied):
        workspace(*DANA).model_registry.create_webhook(
            events=[RegistryWebhookEvent.MODEL_VERSION_CREATED],
            model_name="fraud",
            http_url_spec=HttpUrlSpec(url=receiver.url),
        )
