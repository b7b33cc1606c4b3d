"""MLflow's own webhooks pointed at Signoff, and the reconciler: a real `mlflow server` with a
real MLflow webhook (created with MLflow's client) delivering to a real Signoff stack.

- a new version opens a request when the policy rule says `auto_request`;
- an alias or a tag set directly in MLflow is recorded as out-of-band and announced, while the
  alias Signoff sets itself is not;
- the reconciler catches a stage change made directly in MLflow, and only that;
- forged, stale and replayed MLflow deliveries are refused and recorded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from temporalio.client import Client

from tests.support.http import (
    SIGNOFF,
    TRANSITIONS,
    assert_error,
    create,
    target,
    version_activities,
    wait,
)
from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.polling import wait_until
from tests.support.receiver import Receiver, running_receiver
from tests.support.stack import SignoffStack, api_without_temporal, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import ALL, HOOKS, SECRET, events_for, subscribe, webhook_env

MLFLOW_SECRET = "mlflow-webhook-secret"
HOOK = "/api/2.0/signoff/hooks/mlflow"
MLFLOW_EVENTS = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
]
POLICY = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - models: ["tiered-*"]
    to: Staging
    when: {tags: {risk_tier: high}}
    auto_request: Staging
    approvals: {quorum: 2, roles: [ml-lead]}
  - models: ["auto-*"]
    to: Staging
    auto_request: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: "@*"
    approvals: {quorum: 1, roles: [ml-lead]}
"""
ADA = ("ada", "platform-admin")
DANA = ("dana", "data-scientist")
LEE = ("lee", "ml-lead")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    """A stack that MLflow's own webhook (created here, removed after) delivers to."""
    with running_stack(
        tmp_path_factory,
        "mlflow-hooks",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY,
        SIGNOFF_MLFLOW_WEBHOOK_SECRET=MLFLOW_SECRET,
        **webhook_env(),
    ) as stack:
        client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
        webhook = client.create_webhook(
            name=f"signoff-{uuid.uuid4().hex[:8]}",
            url=f"{stack.api_url}{HOOK}",
            events=MLFLOW_EVENTS,
            secret=MLFLOW_SECRET,
        )
        try:
            yield stack
        finally:
            client.delete_webhook(webhook.webhook_id)


@pytest.fixture
def mlflow_client(mlflow_server: MlflowServer) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=mlflow_server.url)


def out_of_band(client: httpx.Client, seeded: SeededVersion) -> list[dict[str, Any]]:
    return [
        a
        for a in version_activities(client, seeded)
        if a["activity_type"] == "SYSTEM_TRANSITION"
        and (a.get("system_comment") or "").startswith("Out-of-band change")
    ]


def inbound(admin: httpx.Client) -> list[dict[str, Any]]:
    response = admin.get(f"{SIGNOFF}/hooks/inbound", params={"source": "mlflow"})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def test_a_new_version_opens_a_request_by_policy(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    dana = user(*DANA)
    governed = make_version(f"auto-{uuid.uuid4().hex[:8]}")

    def open_requests() -> list[dict[str, Any]]:
        response = dana.get(f"{TRANSITIONS}/list", params=target(governed, "Staging"))
        assert response.status_code == 200, response.text
        return response.json().get("requests", [])

    [request] = wait_until(open_requests, "the automatic request")
    assert request["user_id"] == "signoff-auto-request"
    assert request["to_stage"] == "Staging"
    assert "auto_request" in request["comment"]
    # It is a governed request like any other: an approval applies it.
    approved = user(*LEE).post(f"{TRANSITIONS}/approve", json=target(governed, "Staging"))
    assert approved.status_code == 200, approved.text

    # A model no auto_request rule covers gets no request.
    admin = user(*ADA)

    def versions_announced() -> int:
        return sum(m["event"] == "model_version.created" for m in inbound(admin))

    before = versions_announced()
    ungoverned = make_version()
    wait_until(lambda: versions_announced() > before, "MLflow's delivery for the other version")
    response = dana.get(f"{TRANSITIONS}/list", params=target(ungoverned, "Staging"))
    assert response.json().get("requests", []) == []


def test_a_tier_s_auto_request_follows_the_new_version_s_tags(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    """The rule for a high-risk version says auto_request (it used to be chosen without the
    version's tags, so the tiered rule never matched); a low-risk one's rule does not."""
    dana, admin = user(*DANA), user(*ADA)

    def versions_announced() -> int:
        return sum(m["event"] == "model_version.created" for m in inbound(admin))

    def requests_of(seeded: SeededVersion) -> list[dict[str, Any]]:
        response = dana.get(f"{TRANSITIONS}/list", params=target(seeded, "Staging"))
        assert response.status_code == 200, response.text
        return response.json().get("requests", [])

    before = versions_announced()
    low = make_version(f"tiered-{uuid.uuid4().hex[:8]}", tags={"risk_tier": "low"})
    high = make_version(f"tiered-{uuid.uuid4().hex[:8]}", tags={"risk_tier": "high"})

    [request] = wait_until(lambda: requests_of(high), "the high-risk version's request")
    assert request["user_id"] == "signoff-auto-request"
    found = dana.get(f"{SIGNOFF}/transition-requests/search", params={"name": high.name})
    [opened] = found.json()["requests"]
    assert opened["quorum"] == 2 and opened["tier"] == {"risk_tier": "high"}, opened
    wait_until(lambda: versions_announced() >= before + 2, "MLflow's delivery for both")
    assert requests_of(low) == []


def test_models_and_versions_created_in_mlflow_are_announced(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    admin = user(*ADA)
    with running_receiver(Receiver(secret=SECRET)) as receiver:
        created = admin.post(
            f"{HOOKS}/create",
            json={  # registry-wide: REGISTERED_MODEL_CREATED is only for those
                "events": ["REGISTERED_MODEL_CREATED", "MODEL_VERSION_CREATED"],
                "status": "ACTIVE",
                "http_url_spec": {"url": receiver.url, "secret": SECRET},
            },
        )
        assert created.status_code == 200, created.text
        try:
            seeded = make_version()

            def mine() -> list[dict[str, Any]]:
                return [r.json for r in receiver.delivered if r.json["model_name"] == seeded.name]

            bodies = wait_until(lambda: len(mine()) >= 2 and mine(), "both creation events")
            assert all(r.verified for r in receiver.delivered)
            by_name = {body["event"]: body for body in bodies}
            assert set(by_name) == {"REGISTERED_MODEL_CREATED", "MODEL_VERSION_CREATED"}
            assert "version" not in by_name["REGISTERED_MODEL_CREATED"]
            assert by_name["MODEL_VERSION_CREATED"]["version"] == seeded.version
        finally:
            webhook_id = created.json()["webhook"]["id"]
            admin.request("DELETE", f"{HOOKS}/delete", params={"id": webhook_id})


def test_alias_and_tag_set_in_mlflow_are_out_of_band_but_signoffs_alias_is_not(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    mlflow_client: mlflow.MlflowClient,
) -> None:
    seeded = make_version()
    admin, dana = user(*ADA), user(*DANA)
    with running_receiver(Receiver(secret=SECRET)) as receiver:
        subscribe(admin, receiver.url, seeded.name, events=ALL)

        # Through Signoff: the alias MLflow then announces is recognised as Signoff's.
        request = create(dana, seeded, "@champion")
        assert (
            user(*LEE).post(f"{TRANSITIONS}/approve", json=target(seeded, "@champion")).is_success
        )
        assert wait(dana, request["id"])["state"] == "APPLIED"

        # Directly in MLflow: a bypass.
        mlflow_client.set_registered_model_alias(seeded.name, "shadow", seeded.version)
        mlflow_client.set_model_version_tag(seeded.name, seeded.version, "owner", "mallory")

        def bypasses() -> list[dict[str, Any]] | None:
            found = out_of_band(dana, seeded)
            return found if len(found) >= 2 else None

        found = wait_until(bypasses, "the alias and the tag recorded as out-of-band")
        comments = sorted(a["system_comment"] for a in found)
        assert len(found) == 2, comments
        assert any("alias @shadow set on this version" in c for c in comments), comments
        assert any("tag owner set to 'mallory'" in c for c in comments), comments
        assert not any("champion" in c for c in comments), comments
        assert {a["user_id"] for a in found} == {"mlflow"}

        def announced() -> list[dict[str, Any]]:
            return [r.json for r in receiver.delivered if r.json["event"] == "OUT_OF_BAND_CHANGE"]

        oob = wait_until(lambda: len(announced()) >= 2 and announced(), "two OUT_OF_BAND_CHANGE")
        events_for(receiver, {"MODEL_VERSION_TAG_SET"})
        assert all(r.verified for r in receiver.delivered)
        assert sorted(body.get("to_stage", "-") for body in oob) == ["-", "@shadow"]
        assert all(body["model_name"] == seeded.name for body in oob)

        # Deleting the alias directly is out-of-band too; MLflow does not say which version
        # had it, the ledger does.
        mlflow_client.delete_registered_model_alias(seeded.name, "shadow")
        wait_until(
            lambda: any(
                "alias @shadow removed" in a["system_comment"] for a in out_of_band(dana, seeded)
            ),
            "the alias removal",
        )


def reconciler_runs(admin: httpx.Client) -> list[dict[str, Any]]:
    response = admin.get(f"{SIGNOFF}/reconciler/runs")
    assert response.status_code == 200, response.text
    return response.json()["runs"]


def reconcile(admin: httpx.Client) -> dict[str, Any]:
    """Start a reconciler pass and wait for it; returns the pass as listed."""
    before = {run["id"] for run in reconciler_runs(admin)}
    response = admin.post(f"{SIGNOFF}/reconciler/run")
    assert response.status_code == 200, response.text
    return wait_until(
        lambda: [r for r in reconciler_runs(admin) if r["id"] not in before], "a reconciler pass"
    )[0]


def test_the_reconciler_catches_a_stage_change_made_directly_in_mlflow(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    mlflow_client: mlflow.MlflowClient,
) -> None:
    admin, dana = user(*ADA), user(*DANA)

    reconcile(admin)  # the first pass ever only takes the registry as it is
    governed = make_version()
    bypassed = make_version()
    request = create(dana, governed, "Staging")
    assert user(*LEE).post(f"{TRANSITIONS}/approve", json=target(governed, "Staging")).is_success
    assert wait(dana, request["id"])["state"] == "APPLIED"
    mlflow_client.transition_model_version_stage(bypassed.name, bypassed.version, "Production")

    summary = reconcile(admin)
    assert summary["baseline"] is False and summary["changes"] >= 1
    [change] = out_of_band(dana, bypassed)
    assert (change["from_stage"], change["to_stage"]) == ("None", "Production")
    assert (
        "stage changed from None to Production (seen by the reconciler)"
        in (change["system_comment"])
    )
    assert out_of_band(dana, governed) == []  # Signoff's own transition is no bypass

    reconcile(admin)  # reported once: the next pass finds nothing new
    assert len(out_of_band(dana, bypassed)) == 1


def test_a_pass_asked_for_while_one_runs_still_happens(user: Callable[..., httpx.Client]) -> None:
    """Asked for twice at once, the second pass waits for the first instead of being dropped
    (the schedule skips overlapping passes of its own)."""
    admin = user(*ADA)
    before = {run["id"] for run in reconciler_runs(admin)}
    for _ in range(2):
        assert admin.post(f"{SIGNOFF}/reconciler/run").status_code == 200
    wait_until(
        lambda: len([r for r in reconciler_runs(admin) if r["id"] not in before]) >= 2,
        "two reconciler passes",
        timeout_s=60,
    )


def tag_set_delivery(seeded: SeededVersion) -> bytes:
    """The body MLflow sends when a tag is set on the version."""
    data = {"name": seeded.name, "version": seeded.version, "key": "k", "value": "v"}
    return json.dumps(
        {
            "entity": "model_version_tag",
            "action": "set",
            "timestamp": "2026-01-01T00:00:00+00:00",
            "data": data,
        }
    ).encode()


def sign(body: bytes, delivery_id: str, timestamp: int, secret: str = MLFLOW_SECRET) -> dict:
    signed = f"{delivery_id}.{timestamp}.{body.decode()}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return {
        "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode(),
        "X-MLflow-Timestamp": str(timestamp),
        "X-MLflow-Delivery-Id": delivery_id,
        "Content-Type": "application/json",
    }


def test_forged_stale_and_replayed_deliveries_are_refused_and_recorded(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    seeded = make_version()
    admin, dana = user(*ADA), user(*DANA)
    anonymous = stack.client()
    body = tag_set_delivery(seeded)
    now = int(time.time())

    forged = anonymous.post(HOOK, content=body, headers=sign(body, "d-forged", now, "guess"))
    assert "signature does not match" in assert_error(forged, 401, "UNAUTHENTICATED")
    stale = anonymous.post(HOOK, content=body, headers=sign(body, "d-stale", now - 600))
    assert "outside the 5-minute window" in assert_error(stale, 401, "UNAUTHENTICATED")
    unsigned = anonymous.post(HOOK, content=body, headers={"Content-Type": "application/json"})
    assert "x-mlflow-signature" in assert_error(unsigned, 401, "UNAUTHENTICATED")
    assert out_of_band(dana, seeded) == []

    delivery = f"d-{uuid.uuid4().hex}"
    first = anonymous.post(HOOK, content=body, headers=sign(body, delivery, now))
    assert first.status_code == 200, first.text
    replay = anonymous.post(HOOK, content=body, headers=sign(body, delivery, now))
    assert "already processed" in assert_error(replay, 409, "RESOURCE_ALREADY_EXISTS")
    assert len(out_of_band(dana, seeded)) == 1

    messages = {m["message_id"]: m for m in inbound(admin) if m["message_id"]}
    assert messages["d-forged"]["outcome"] == "REFUSED"
    assert messages["d-stale"]["outcome"] == "REFUSED"
    outcomes = sorted(m["outcome"] for m in inbound(admin) if m["message_id"] == delivery)
    assert outcomes == ["ACCEPTED", "REFUSED"]

    garbage = b'{"entity": "model_version"}'
    bad = anonymous.post(HOOK, content=garbage, headers=sign(garbage, f"d-{uuid.uuid4().hex}", now))
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE")


def test_the_reconciler_settles_a_request_whose_workflow_was_terminated(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    temporal_server: TemporalServer,
) -> None:
    """Regression: an operator terminating a request's workflow left it PENDING in the ledger
    for good (listed as open, waited on by `--wait`)."""
    admin, dana = user(*ADA), user(*DANA)
    seeded = make_version()
    request = create(dana, seeded, "Staging")

    async def terminate() -> None:
        client = await Client.connect(temporal_server.address)
        workflow_id = f"transition/{seeded.name}/{seeded.version}/Staging"
        await client.get_workflow_handle(workflow_id).terminate(reason="operator cleanup")

    asyncio.run(terminate())
    reconcile(admin)

    response = dana.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]})
    settled = response.json()["request"]
    assert settled["state"] == "FAILED", settled
    assert "its workflow was terminated before the request was decided" in settled["reason"]
    listed = dana.get(f"{TRANSITIONS}/list", params=target(seeded, "Staging"))
    assert listed.json().get("requests", []) == []
    assert create(dana, seeded, "Staging")["state"] == "PENDING"  # the target is free again


def test_a_comment_posted_while_temporal_is_down_is_announced_by_the_next_pass(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    tmp_path: Path,
) -> None:
    """Regression: the comment was saved but its COMMENT_CREATED was lost for good."""
    admin = user(*ADA)
    seeded = make_version()
    reconcile(admin)  # a pass before the comment: the next one looks back to it
    with running_receiver(Receiver(secret=SECRET)) as receiver:
        subscribe(admin, receiver.url, seeded.name, events=["COMMENT_CREATED"])
        comment = {"name": seeded.name, "version": seeded.version, "comment": "ship it"}
        with api_without_temporal(stack, tmp_path / "api.log") as lonely:
            posted = httpx.post(
                f"{lonely}/api/2.0/mlflow/comments/create",
                json=comment,
                headers={"Authorization": f"Bearer {stack.token(*DANA)}"},
                timeout=60,
            )
        assert posted.status_code == 200, posted.text  # the comment itself is kept
        assert receiver.received == []

        reconcile(admin)
        reconcile(admin)  # and a pass that finds it announced already sends nothing more
        [body] = [r.json for r in events_for(receiver, {"COMMENT_CREATED"})]
        assert (body["comment"], body["version"]) == ("ship it", seeded.version)
        assert all(r.verified for r in receiver.received) and len(receiver.received) == 1


def test_mlflows_retry_of_a_delivery_signoff_could_not_announce_is_processed_once(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    tmp_path: Path,
) -> None:
    admin, dana = user(*ADA), user(*DANA)
    seeded = make_version()
    body = tag_set_delivery(seeded)
    headers = sign(body, f"d-{uuid.uuid4().hex}", int(time.time()))
    with running_receiver(Receiver(secret=SECRET)) as receiver:
        subscribe(admin, receiver.url, seeded.name, events=["OUT_OF_BAND_CHANGE"])
        with api_without_temporal(stack, tmp_path / "api.log") as lonely:
            down = httpx.post(f"{lonely}{HOOK}", content=body, headers=headers, timeout=60)
        assert_error(down, 503, "TEMPORARILY_UNAVAILABLE")  # so MLflow retries it

        again = stack.client().post(HOOK, content=body, headers=headers)
        assert again.status_code == 200, again.text
        events_for(receiver, {"OUT_OF_BAND_CHANGE"})
        assert len(out_of_band(dana, seeded)) == 1  # recorded once, over both attempts
        outcomes = sorted(
            m["outcome"]
            for m in inbound(admin)
            if m["message_id"] == headers["X-MLflow-Delivery-Id"]
        )
        assert outcomes == ["ACCEPTED", "ERROR"]
