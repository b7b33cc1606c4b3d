"""Registry webhooks fed by what really happens: requests opened, approved, applied, rejected,
cancelled, expired, checks failing and comments, each delivered to a loopback receiver that
verifies both signatures, with the documented payload; TEST_MODE and DISABLED webhooks get
nothing from real events; and a receiver that does not answer never holds up a transition.

Real stack (Temporal dev server, `mlflow server`, worker and API processes); the receiver is
the one the delivery tests use."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.support.http import SIGNOFF, TRANSITIONS, create, target, version_activities, wait
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.receiver import Received, Receiver, running_receiver
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import (
    HOOKS,
    SECRET,
    events_for,
    subscribe,
    webhook_deliveries,
    webhook_env,
)

POLICY = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - models: ["expiring-*"]
    to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
    expires_after: 2s
  - models: ["checked-*"]
    to: Staging
    checks:
      - {type: tag, key: validated, value: "true"}
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Archived
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: "@*"
    approvals: {quorum: 1, roles: [ml-lead]}
"""

DANA = ("dana", "data-scientist")
LEE = ("lee", "ml-lead")
ADA = ("ada", "platform-admin")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    with running_stack(
        tmp_path_factory,
        "events",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY,
        SIGNOFF_PUBLIC_URL="https://signoff.example",
        **webhook_env(),
    ) as stack:
        yield stack


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(Receiver(secret=SECRET)) as running:
        yield running


def by_event(received: list[Received]) -> dict[str, dict[str, Any]]:
    bodies: dict[str, dict[str, Any]] = {}
    for item in received:
        assert item.verified, "both signatures must verify with the packages' functions"
        assert item.json["event"] not in bodies, f"{item.json['event']} delivered twice"
        bodies[item.json["event"]] = item.json
    return bodies


def test_a_governed_transition_fires_its_events_with_their_payloads(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    receiver: Receiver,
) -> None:
    seeded = make_version()
    hook_id = subscribe(user(*ADA), receiver.url, seeded.name)
    request = create(user(*DANA), seeded, "Production", comment="ship it")
    approved = user(*LEE).post(f"{TRANSITIONS}/approve", json=target(seeded, "Production"))
    assert approved.status_code == 200, approved.text
    assert wait(user(*DANA), request["id"])["state"] == "APPLIED"

    expected = {
        "TRANSITION_REQUEST_CREATED",
        "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
        "TRANSITION_REQUEST_APPROVED",
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    }
    bodies = by_event(events_for(receiver, expected))
    assert set(bodies) == expected
    link = f"https://signoff.example/ui/requests/{request['id']}"
    common = {
        "webhook_id": hook_id,
        "model_name": seeded.name,
        "version": seeded.version,
        "from_stage": "None",
        "to_stage": "Production",
        "request_id": request["id"],
        "request_url": link,
    }
    for name, body in bodies.items():
        assert body | common == body, f"{name}: {body}"
        assert isinstance(body["event_timestamp"], int) and body["event_timestamp"] > 0
    assert bodies["TRANSITION_REQUEST_CREATED"]["comment"] == "ship it"
    assert "dana requested" in bodies["TRANSITION_REQUEST_CREATED"]["text"]
    assert bodies["TRANSITION_REQUEST_APPROVED"]["text"] == "approved by lee"
    assert (
        "Applied by Signoff after 1 approval(s) (lee)"
        in (bodies["MODEL_VERSION_TRANSITIONED_STAGE"]["text"])
    )
    # The request's own events come first, the transition's after it happened.
    created = bodies["TRANSITION_REQUEST_CREATED"]["event_timestamp"]
    moved = bodies["MODEL_VERSION_TRANSITIONED_STAGE"]["event_timestamp"]
    assert created <= bodies["TRANSITION_REQUEST_APPROVED"]["event_timestamp"] <= moved


def test_reject_cancel_comment_and_alias_events(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    receiver: Receiver,
) -> None:
    seeded = make_version()
    subscribe(user(*ADA), receiver.url, seeded.name)
    dana, lee = user(*DANA), user(*LEE)

    rejected = create(dana, seeded, "Archived")
    response = lee.post(
        f"{TRANSITIONS}/reject", json=target(seeded, "Archived") | {"comment": "keep it"}
    )
    assert response.status_code == 200, response.text
    assert wait(dana, rejected["id"])["state"] == "REJECTED"

    create(dana, seeded, "Staging")
    response = dana.delete(
        f"{TRANSITIONS}/delete",
        params=target(seeded, "Staging") | {"creator": "dana", "comment": "oops"},
    )
    assert response.status_code == 200, response.text

    response = dana.post(
        "/api/2.0/mlflow/comments/create",
        json={"name": seeded.name, "version": seeded.version, "comment": "looks <b>good</b>"},
    )
    assert response.status_code == 200, response.text

    aliased = create(dana, seeded, "@champion")
    assert lee.post(f"{TRANSITIONS}/approve", json=target(seeded, "@champion")).status_code == 200
    assert wait(dana, aliased["id"])["state"] == "APPLIED"

    archived = create(dana, seeded, "Archived")
    assert lee.post(f"{TRANSITIONS}/approve", json=target(seeded, "Archived")).status_code == 200
    assert wait(dana, archived["id"])["state"] == "APPLIED"

    expected = {
        "TRANSITION_REQUEST_CREATED": 4,
        "TRANSITION_REQUEST_TO_ARCHIVED_CREATED": 2,
        "TRANSITION_REQUEST_REJECTED": 1,
        "TRANSITION_REQUEST_TO_STAGING_CREATED": 1,
        "TRANSITION_REQUEST_CANCELLED": 1,
        "COMMENT_CREATED": 1,
        "MODEL_VERSION_TRANSITIONED_STAGE": 2,
        "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED": 1,
        "TRANSITION_REQUEST_APPROVED": 2,
    }
    received = events_for(receiver, expected)
    # Four requests were opened; the alias and the second archive were applied (an alias
    # fires no TO_<stage> event), and nothing arrived twice.
    assert sorted(r.json["event"] for r in received) == sorted(
        name for name, n in expected.items() for _ in range(n)
    )
    bodies = {item.json["event"]: item.json for item in received}
    moves = [i.json for i in received if i.json["event"] == "MODEL_VERSION_TRANSITIONED_STAGE"]
    assert bodies["TRANSITION_REQUEST_REJECTED"]["comment"] == "keep it"
    assert bodies["TRANSITION_REQUEST_REJECTED"]["text"] == "rejected by lee"
    assert bodies["TRANSITION_REQUEST_CANCELLED"]["comment"] == "oops"
    assert bodies["COMMENT_CREATED"]["comment"] == "looks <b>good</b>"
    assert bodies["COMMENT_CREATED"]["version"] == seeded.version
    assert "request_id" not in bodies["COMMENT_CREATED"]
    assert sorted(move["to_stage"] for move in moves) == ["@champion", "Archived"]
    assert bodies["MODEL_VERSION_TRANSITIONED_TO_ARCHIVED"]["from_stage"] == "None"


def test_expiry_and_failed_check_events(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    receiver: Receiver,
) -> None:
    expiring = make_version(f"expiring-{time.time_ns()}")
    checked = make_version(f"checked-{time.time_ns()}")
    admin, dana = user(*ADA), user(*DANA)
    subscribe(admin, receiver.url, expiring.name)
    subscribe(admin, receiver.url, checked.name)

    first = create(dana, expiring, "Staging")
    second = create(dana, checked, "Staging")
    assert wait(dana, first["id"])["state"] == "EXPIRED"
    assert wait(dana, second["id"])["state"] == "FAILED_VALIDATION"

    received = events_for(receiver, {"TRANSITION_REQUEST_EXPIRED", "VALIDATION_CHECK_FAILED"})
    bodies = {item.json["event"]: item.json for item in received}
    assert bodies["TRANSITION_REQUEST_EXPIRED"]["model_name"] == expiring.name
    assert bodies["TRANSITION_REQUEST_EXPIRED"]["text"] == "no decision within 2s"
    failed = bodies["VALIDATION_CHECK_FAILED"]
    assert failed["model_name"] == checked.name and failed["request_id"] == second["id"]
    assert failed["text"].startswith("tag:validated (tag): ")


def test_a_request_closed_by_another_move_is_announced_as_failed(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    receiver: Receiver,
) -> None:
    """Signoff moves the version to Production by one request; the open Staging request,
    which started from None, is closed FAILED and announced, naming the request that moved it."""
    seeded = make_version()
    admin, dana, lee = user(*ADA), user(*DANA), user(*LEE)
    subscribe(admin, receiver.url, seeded.name)
    staging = create(dana, seeded, "Staging")
    production = create(dana, seeded, "Production")
    approved = lee.post(
        f"{TRANSITIONS}/approve",
        json=target(seeded, "Production") | {"archive_existing_versions": False},
    )
    assert approved.status_code == 200, approved.text
    assert wait(dana, staging["id"])["state"] == "FAILED"

    received = events_for(receiver, {"TRANSITION_REQUEST_FAILED"})
    [failed] = [r.json for r in received if r.json["event"] == "TRANSITION_REQUEST_FAILED"]
    assert failed["request_id"] == staging["id"] and failed["to_stage"] == "Staging"
    assert production["id"] in failed["text"] and "no longer holds" in failed["text"]


def test_test_mode_and_disabled_webhooks_get_nothing_from_real_events(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    seeded = make_version()
    admin, dana = user(*ADA), user(*DANA)
    with (
        running_receiver(Receiver(secret=SECRET)) as active,
        running_receiver(Receiver(secret=SECRET)) as test_mode,
        running_receiver(Receiver(secret=SECRET)) as disabled,
    ):
        subscribe(admin, active.url, seeded.name)
        test_id = subscribe(admin, test_mode.url, seeded.name, status="TEST_MODE")
        disabled_id = subscribe(admin, disabled.url, seeded.name, status="DISABLED")
        request = create(dana, seeded, "Staging")
        assert user(*LEE).post(f"{TRANSITIONS}/approve", json=target(seeded, "Staging")).is_success
        assert wait(dana, request["id"])["state"] == "APPLIED"
        # Once the ACTIVE one has every event, the others would have had theirs too.
        events_for(active, {"MODEL_VERSION_TRANSITIONED_TO_STAGING"})
        assert test_mode.received == [] and disabled.received == []

        # TEST_MODE fires through `test` only.
        response = admin.post(f"{HOOKS}/test", json={"id": test_id})
        assert response.status_code == 200, response.text
        assert len(test_mode.delivered) == 1 and test_mode.delivered[0].verified
        # DISABLED never fires, not even through `test`.
        response = admin.post(f"{HOOKS}/test", json={"id": disabled_id})
        assert response.status_code == 400, response.text
        assert disabled.received == []


def test_a_receiver_that_does_not_answer_does_not_hold_up_the_transition(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    seeded = make_version()
    gate = threading.Event()
    with running_receiver(Receiver(secret=SECRET, gate=gate)) as slow:
        hook_id = subscribe(user(*ADA), slow.url, seeded.name)
        dana = user(*DANA)
        request = create(dana, seeded, "Production")
        approved = user(*LEE).post(f"{TRANSITIONS}/approve", json=target(seeded, "Production"))
        assert approved.status_code == 200, approved.text
        # Applied in MLflow and recorded while the receiver has answered no delivery yet.
        assert wait(dana, request["id"])["state"] == "APPLIED"
        assert stage_in_mlflow(stack.mlflow_url, seeded) == "Production"
        trail = version_activities(dana, seeded)
        assert "APPLIED_TRANSITION" in {a["activity_type"] for a in trail}
        states = [d["state"] for d in webhook_deliveries(user(*ADA), hook_id)]
        assert states and "DELIVERED" not in states, states
        gate.set()


async def test_the_audit_anchor_is_announced_to_registry_wide_webhooks(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    receiver: Receiver,
) -> None:
    """The worker's schedule anchors the audit chain and announces AUDIT_ANCHOR, with the head
    the ledger recorded; a model's own webhook cannot subscribe it."""
    seeded = make_version()
    await asyncio.to_thread(create, user(*DANA), seeded, "Staging")  # the chain is not empty
    admin = user(*ADA)
    spec = {"url": receiver.url, "secret": SECRET}
    wide = {"events": ["AUDIT_ANCHOR"], "status": "ACTIVE", "http_url_spec": spec}
    refused = admin.post(f"{HOOKS}/create", json=wide | {"model_name": seeded.name})
    assert refused.status_code == 400 and "registry-wide" in refused.json()["message"]
    assert admin.post(f"{HOOKS}/create", json=wide).status_code == 200

    client = await Client.connect(stack.env["SIGNOFF_TEMPORAL_ADDRESS"])
    schedule = f"signoff-audit-anchor/{stack.env['SIGNOFF_TASK_QUEUE']}"
    await client.get_schedule_handle(schedule).trigger()

    received = await asyncio.to_thread(events_for, receiver, {"AUDIT_ANCHOR"})
    body = next(item for item in received if item.json["event"] == "AUDIT_ANCHOR").json
    anchors = admin.get(f"{SIGNOFF}/audit/anchors/list").json()["anchors"]
    recorded = {anchor["length"]: anchor["head_hash"] for anchor in anchors}
    assert recorded[body["chain_length"]] == body["head_hash"]
    assert body["chain_length"] >= 1 and len(body["head_hash"]) == 64
