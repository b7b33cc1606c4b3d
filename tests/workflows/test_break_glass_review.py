"""BreakGlassReviewWorkflow on Temporal's time-skipping server: the review is recorded and
announced when it opens, the person who broke the glass may not review it, the deadline
(three days, skipped) turns it OVERDUE, recorded and announced to a real loopback receiver,
and a reviewer's acknowledgement afterwards closes it with the lateness kept."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from policies import BreakGlassReview as ReviewRule
from policies import Principal, load_policy_text
from tests.support.receiver import SECRET, Receiver, running_receiver
from workflows.activities.reviews import ReviewActivities
from workflows.client import DecisionRefused
from workflows.domain import ReviewState
from workflows.ledger import Ledger
from workflows.messages import Decision, ReviewInput
from workflows.reviews import BreakGlassReviewWorkflow
from workflows.reviews.client import Reviews
from workflows.settings import WorkerSettings
from workflows.webhooks.delivery import WebhookActivities, WebhookDeliveryWorkflow
from workflows.webhooks.events import AnnounceActivities

KEY = Fernet.generate_key().decode()
POLICY = load_policy_text(
    """
roles:
  model-risk: {"*": CAN_READ}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - to: Production
    break_glass: {review: {quorum: 1, roles: [model-risk], within: 3d}}
"""
)
EVENTS = ["BREAK_GLASS_REVIEW_OPENED", "BREAK_GLASS_REVIEW_OVERDUE", "BREAK_GLASS_REVIEWED"]


async def eventually(probe: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    await ledger.migrate()
    yield ledger
    ledger.dispose()


async def test_a_review_goes_overdue_on_its_deadline_and_is_acknowledged_late(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    env = time_skipping_env
    settings = WorkerSettings(
        task_queue=f"reviews-{uuid.uuid4().hex[:8]}",
        database_url=ledger.url,
        encryption_key=KEY,
        webhook_allow_hosts="127.0.0.1",
    )
    webhooks = WebhookActivities(ledger, settings)
    with running_receiver(Receiver()) as receiver:
        await ledger.webhooks.add(
            webhook_id=uuid.uuid4().hex,
            model_name="fraud",
            events=EVENTS,
            description=None,
            status="ACTIVE",
            url=receiver.url,
            enable_ssl_verification=True,
            secret_enc=webhooks.box.encrypt(SECRET),
            authorization_enc=None,
            created_by="ada",
            now_ms=int(time.time() * 1000),
        )
        async with Worker(
            env.client,
            task_queue=settings.task_queue,
            workflows=[BreakGlassReviewWorkflow, WebhookDeliveryWorkflow],
            activities=[
                ReviewActivities(ledger).record_review,
                AnnounceActivities(ledger, settings.task_queue).announce_webhooks,
                webhooks.deliver_attempt,
                webhooks.give_up_delivery,
            ],
        ):
            await _review_lifecycle(env, ledger, settings.task_queue, receiver)


def _events(receiver: Receiver) -> list[str]:
    return [r.json["event"] for r in receiver.delivered if r.verified]


async def _review_lifecycle(
    env: WorkflowEnvironment, ledger: Ledger, task_queue: str, receiver: Receiver
) -> None:
    reviews = Reviews(env.client, task_queue)
    review_id = f"breakglass-{uuid.uuid4().hex}"
    opened = await reviews.start(
        ReviewInput(
            review_id=review_id,
            model="fraud",
            version="4",
            from_stage="Staging",
            to_stage="Production",
            mover="ada",
            comment="INC-1: roll forward now",
            review=ReviewRule(quorum=1, roles=["model-risk"], within=timedelta(days=3)),
            policy=POLICY,
            policy_hash="0" * 64,
            opened_ms=int(time.time() * 1000),
        )
    )
    assert opened.state is ReviewState.OPEN
    row = await eventually(lambda: ledger.reviews.get(review_id), "the review's ledger row")
    assert (row.mover, row.roles, row.deadline_ms - row.opened_ms) == (
        "ada",
        ["model-risk"],
        3 * 86_400_000,
    )
    await eventually(lambda: "BREAK_GLASS_REVIEW_OPENED" in _events(receiver), "the opening")

    ada = Principal(sub="ada", roles=["platform-admin", "model-risk"])
    with pytest.raises(DecisionRefused, match="ada may not review their own break-glass move"):
        await reviews.acknowledge(opened, Decision(principal=ada))

    await env.sleep(timedelta(days=3, minutes=1))

    async def overdue() -> bool:
        stored = await ledger.reviews.get(review_id)
        return stored is not None and stored.state is ReviewState.OVERDUE

    await eventually(overdue, "the review to turn OVERDUE in the ledger")
    await eventually(lambda: "BREAK_GLASS_REVIEW_OVERDUE" in _events(receiver), "the overdue event")
    overdue_payload = next(
        r.json for r in receiver.delivered if r.json["event"] == "BREAK_GLASS_REVIEW_OVERDUE"
    )
    assert overdue_payload["review_id"] == review_id
    assert "is overdue: 0 of 1 acknowledgement(s) from model-risk" in overdue_payload["text"]
    listed = await ledger.reviews.search(overdue_only=True)
    assert review_id in [r.id for r in listed]

    mo = Principal(sub="mo", roles=["model-risk"])
    after = await reviews.acknowledge(opened, Decision(principal=mo, comment="seen, justified"))
    assert after.state is ReviewState.ACKNOWLEDGED and after.overdue_ms is not None
    assert [(a.user_id, a.roles, a.comment) for a in after.acknowledgements] == [
        ("mo", ["model-risk"], "seen, justified")
    ]
    handle = env.client.get_workflow_handle_for(BreakGlassReviewWorkflow.run, opened.workflow_id)
    assert (await handle.result()).state is ReviewState.ACKNOWLEDGED
    stored = await ledger.reviews.get(review_id)
    assert stored is not None and stored.state is ReviewState.ACKNOWLEDGED
    assert await ledger.reviews.search(open_only=True) == []
    await eventually(lambda: "BREAK_GLASS_REVIEWED" in _events(receiver), "the reviewed event")
