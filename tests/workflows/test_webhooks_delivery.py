"""Durable webhook delivery on Temporal's time-skipping server (backoff and Retry-After pass in
skipped time) against a real loopback receiver that verifies both signatures with the
packages' own verification: `standardwebhooks.Webhook(...).verify` and an HMAC of the body.
Also the signing, encryption and SSRF units. Runs on SQLite and PostgreSQL ledgers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.receiver import SECRET, Receiver, running_receiver
from workflows.domain import now_ms
from workflows.ledger import Ledger
from workflows.ledger import Webhook as Subscription
from workflows.settings import WorkerSettings
from workflows.webhooks.delivery import (
    DELIVERED,
    FAILED,
    GONE,
    WebhookActivities,
    WebhookDeliveryWorkflow,
    backoff,
    delivery_workflow_id,
    retry_after_seconds,
)
from workflows.webhooks.events import (
    ALL_EVENTS,
    AnnounceActivities,
    WebhookEvent,
    announce,
    payload_for,
)
from workflows.webhooks.signing import (
    EncryptionKeyMissing,
    SecretBox,
    databricks_signature,
    signed_headers,
)
from workflows.webhooks.ssrf import UnsafeUrlError, check_url

KEY = Fernet.generate_key().decode()
# -- the loopback receiver ----------------------------------------------------------------------


@workflow.defn(sandboxed=False)
class AnnouncingWorkflow:
    @workflow.run
    async def run(self, event: WebhookEvent) -> list[str]:
        return await workflow.execute_activity(
            "announce_webhooks",
            [event],
            start_to_close_timeout=timedelta(seconds=30),
            result_type=list[str],
        )


# -- the worker -----------------------------------------------------------------------------------


@dataclass
class Deliveries:
    env: WorkflowEnvironment
    ledger: Ledger
    settings: WorkerSettings
    box: SecretBox

    async def add_webhook(
        self,
        url: str,
        *,
        events: list[str] | None = None,
        model_name: str | None = "fraud",
        status: str = "ACTIVE",
        secret: str | None = SECRET,
    ) -> Subscription:
        return await self.ledger.webhooks.add(
            webhook_id=uuid.uuid4().hex,
            model_name=model_name,
            events=events or ["MODEL_VERSION_TRANSITIONED_STAGE"],
            description=None,
            status=status,
            url=url,
            enable_ssl_verification=True,
            secret_enc=self.box.encrypt(secret),
            authorization_enc=None,
            created_by="ada",
            now_ms=int(time.time() * 1000),
        )

    async def announce(self, event: WebhookEvent) -> list[str]:
        return await announce(self.env.client, self.ledger, self.settings.task_queue, event)

    async def result(self, delivery_id: str) -> str:
        """The delivery workflow's outcome, skipping time while it waits (announce discards
        the handles that would do so on their own)."""
        handle = self.env.client.get_workflow_handle(delivery_workflow_id(delivery_id))
        async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            return await handle.result()


def transitioned(event_id: str | None = None, model: str = "fraud") -> WebhookEvent:
    return WebhookEvent(
        event_id=event_id or uuid.uuid4().hex,
        event_timestamp=now_ms(),
        event="MODEL_VERSION_TRANSITIONED_STAGE",
        model_name=model,
        version="3",
        from_stage="Staging",
        to_stage="Production",
        text="applied by Signoff",
        request_url="http://signoff.example/requests/abc",
    )


async def _deliveries(
    env: WorkflowEnvironment, ledger: Ledger, allow: str
) -> AsyncIterator[Deliveries]:
    settings = WorkerSettings(
        task_queue=f"webhooks-{uuid.uuid4().hex[:10]}",
        database_url=ledger.url,
        encryption_key=KEY,
        webhook_allow_hosts=allow,
    )
    activities = WebhookActivities(ledger, settings)
    announcer = AnnounceActivities(ledger, settings.task_queue)
    async with Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=[WebhookDeliveryWorkflow, AnnouncingWorkflow],
        activities=[
            activities.deliver_attempt,
            activities.give_up_delivery,
            announcer.announce_webhooks,
        ],
    ):
        yield Deliveries(env, ledger, settings, activities.box)


@pytest.fixture
async def deliveries(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> AsyncIterator[Deliveries]:
    async for item in _deliveries(time_skipping_env, ledger, "127.0.0.1"):
        yield item


@pytest.fixture
async def deliveries_no_allow_list(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> AsyncIterator[Deliveries]:
    async for item in _deliveries(time_skipping_env, ledger, ""):
        yield item


# -- delivery -----------------------------------------------------------------------------------


async def test_announce_reaches_active_subscribed_webhooks_signed(deliveries: Deliveries) -> None:
    with running_receiver(Receiver()) as receiver:
        model_hook = await deliveries.add_webhook(receiver.url)
        wide_hook = await deliveries.add_webhook(
            receiver.url, model_name=None, events=list(ALL_EVENTS)
        )
        await deliveries.add_webhook(receiver.url, status="TEST_MODE")
        await deliveries.add_webhook(receiver.url, status="DISABLED")
        await deliveries.add_webhook(receiver.url, model_name="other")
        await deliveries.add_webhook(receiver.url, events=["COMMENT_CREATED"])
        event = transitioned()
        ids = await deliveries.announce(event)
        assert len(ids) == 2
        assert [await deliveries.result(i) for i in ids] == [DELIVERED, DELIVERED]

        assert len(receiver.received) == 2
        assert all(r.verified for r in receiver.received)
        by_hook = {r.json["webhook_id"]: r for r in receiver.received}
        assert set(by_hook) == {model_hook.id, wide_hook.id}
        body = by_hook[model_hook.id].json
        assert body == {
            "event": "MODEL_VERSION_TRANSITIONED_STAGE",
            "webhook_id": model_hook.id,
            "event_timestamp": event.event_timestamp,
            "model_name": "fraud",
            "version": "3",
            "from_stage": "Staging",
            "to_stage": "Production",
            "text": "applied by Signoff",
            "request_url": "http://signoff.example/requests/abc",
        }
        headers = by_hook[model_hook.id].headers
        assert headers["webhook-id"] in ids
        assert headers["content-type"] == "application/json"

        # Announcing the same event again starts nothing new.
        assert sorted(await deliveries.announce(event)) == sorted(ids)
        assert len(receiver.received) == 2
        row = await deliveries.ledger.webhooks.get_delivery(ids[0])
        assert row is not None and row.state == "DELIVERED" and len(row.attempts) == 1
        attempt = row.attempts[0]
        assert attempt.status_code == 200 and attempt.error is None
        assert attempt.latency_ms >= 0 and attempt.time_ms > 0


async def test_every_event_type_fires_with_its_payload(deliveries: Deliveries) -> None:
    with running_receiver(Receiver()) as receiver:
        hook = await deliveries.add_webhook(receiver.url, model_name=None, events=list(ALL_EVENTS))
        ids = []
        for name in ALL_EVENTS:
            event = WebhookEvent(
                event_id=f"e-{name}",
                event=name,
                model_name="fraud",
                version="1",
                event_timestamp=now_ms(),
            )
            ids += await deliveries.announce(event)
        assert [await deliveries.result(i) for i in ids] == [DELIVERED] * len(ALL_EVENTS)
        assert sorted(r.json["event"] for r in receiver.received) == sorted(ALL_EVENTS)
        assert all(r.verified and r.json["webhook_id"] == hook.id for r in receiver.received)


async def test_receiver_down_then_up_gets_it_once(deliveries: Deliveries) -> None:
    with running_receiver(Receiver(script=["drop", "drop", 503, 502])) as receiver:
        hook = await deliveries.add_webhook(receiver.url)
        [delivery_id] = await deliveries.announce(transitioned())
        assert await deliveries.result(delivery_id) == DELIVERED
        assert len(receiver.delivered) == 1 and receiver.delivered[0].verified
        # The same webhook-id on every attempt, so a receiver can deduplicate.
        assert {r.headers["webhook-id"] for r in receiver.received} == {delivery_id}
    [row] = await deliveries.ledger.webhooks.deliveries(hook.id)
    assert row.state == "DELIVERED"
    assert [a.status_code for a in row.attempts] == [None, None, 503, 502, 200]
    assert all(a.error for a in row.attempts[:4]) and row.attempts[4].error is None
    gaps = [b.time_ms - a.time_ms for a, b in zip(row.attempts, row.attempts[1:], strict=False)]
    assert all(gap >= 5_000 for gap in gaps), gaps  # backoff, in skipped time
    assert gaps[-1] >= 40_000  # 80 s after the fourth failure, at least half of it


async def test_retry_after_is_honoured(deliveries: Deliveries) -> None:
    with running_receiver(Receiver(script=[(429, {"Retry-After": "7200"})])) as receiver:
        hook = await deliveries.add_webhook(receiver.url)
        [delivery_id] = await deliveries.announce(transitioned())
        assert await deliveries.result(delivery_id) == DELIVERED
        assert len(receiver.delivered) == 1
    [row] = await deliveries.ledger.webhooks.deliveries(hook.id)
    first, second = row.attempts
    assert first.status_code == 429
    assert second.time_ms - first.time_ms >= 7_200_000


async def test_gives_up_after_24_hours(deliveries: Deliveries) -> None:
    with running_receiver(Receiver(script=[503] * 500)) as receiver:
        hook = await deliveries.add_webhook(receiver.url)
        [delivery_id] = await deliveries.announce(transitioned())
        assert await deliveries.result(delivery_id) == FAILED
        assert receiver.delivered == []
    [row] = await deliveries.ledger.webhooks.deliveries(hook.id)
    assert row.state == "FAILED"
    span = row.attempts[-1].time_ms - row.attempts[0].time_ms
    assert 20 * 3600_000 <= span <= 24 * 3600_000
    assert 20 <= len(row.attempts) <= 60


async def test_410_disables_the_webhook(deliveries: Deliveries) -> None:
    with running_receiver(Receiver(script=[410])) as receiver:
        hook = await deliveries.add_webhook(receiver.url)
        [delivery_id] = await deliveries.announce(transitioned())
        assert await deliveries.result(delivery_id) == GONE
        stored = await deliveries.ledger.webhooks.get(hook.id)
        assert stored is not None and stored.status == "DISABLED"
        assert await deliveries.announce(transitioned()) == []
        assert len(receiver.received) == 1


async def test_other_4xx_and_redirects_fail_without_retry(deliveries: Deliveries) -> None:
    script = [(302, {"Location": "http://169.254.169.254/"}), 400]
    with running_receiver(Receiver(script=script)) as receiver:
        hook = await deliveries.add_webhook(receiver.url)
        first = await deliveries.announce(transitioned())
        second = await deliveries.announce(transitioned())
        assert [await deliveries.result(i) for i in first + second] == [FAILED, FAILED]
        assert len(receiver.received) == 2  # the redirect was not followed
    errors = sorted(
        str(r.attempts[0].error) for r in await deliveries.ledger.webhooks.deliveries(hook.id)
    )
    assert any("not followed" in e for e in errors) and any("400" in e for e in errors)


async def test_delivery_time_ssrf_check(deliveries_no_allow_list: Deliveries) -> None:
    """A URL that became unsafe (here: no allow-list at delivery time) is refused, unsent."""
    with running_receiver(Receiver()) as receiver:
        hook = await deliveries_no_allow_list.add_webhook(receiver.url)
        [delivery_id] = await deliveries_no_allow_list.announce(transitioned())
        assert await deliveries_no_allow_list.result(delivery_id) == FAILED
        assert receiver.received == []
    [row] = await deliveries_no_allow_list.ledger.webhooks.deliveries(hook.id)
    assert "loopback" in row.attempts[0].error


async def test_announce_activity_from_a_workflow(deliveries: Deliveries) -> None:
    """`announce_webhooks` is a registered activity, for workflows to call."""
    with running_receiver(Receiver()) as receiver:
        await deliveries.add_webhook(receiver.url)
        ids = await deliveries.env.client.execute_workflow(
            AnnouncingWorkflow.run,
            transitioned("from-a-workflow"),
            id=f"announcer-{uuid.uuid4().hex}",
            task_queue=deliveries.settings.task_queue,
        )
        assert len(ids) == 1
        assert await deliveries.result(ids[0]) == DELIVERED
        assert len(receiver.delivered) == 1


# -- units ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret", [SECRET, "whsec_" + base64.b64encode(b"0123456789abcdef").decode()]
)
def test_signed_headers_verify_with_the_packages(secret: str) -> None:
    body = json.dumps({"event": "COMMENT_CREATED"}).encode()
    headers = signed_headers(secret, "msg_1", body)
    key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
    Webhook(key).verify(body, headers)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Databricks-Signature"] == expected == databricks_signature(secret, body)
    if not secret.startswith("whsec_"):  # a plain secret is the base64 key's bytes
        whsec = "whsec_" + base64.b64encode(secret.encode()).decode()
        Webhook(whsec).verify(body, headers)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the package's own error type
        Webhook(key).verify(body + b" ", headers)


def test_unsigned_without_secret() -> None:
    headers = signed_headers(None, "msg_2", b"{}", at=datetime(2026, 1, 1, tzinfo=UTC))
    assert headers == {"webhook-id": "msg_2", "webhook-timestamp": "1767225600"}


def test_secret_box() -> None:
    box = SecretBox(KEY)
    token = box.encrypt("s3cret")
    assert token is not None and "s3cret" not in token
    assert box.decrypt(token) == "s3cret"
    assert box.encrypt(None) is None and box.encrypt("") is None
    with pytest.raises(EncryptionKeyMissing, match="SIGNOFF_ENCRYPTION_KEY"):
        SecretBox(None).encrypt("s3cret")
    with pytest.raises(EncryptionKeyMissing, match="cannot be decrypted"):
        SecretBox(Fernet.generate_key().decode()).decrypt(token)


@pytest.mark.parametrize(
    ("url", "allow", "ok"),
    [
        ("http://127.0.0.1:9/x", [], False),
        ("http://127.0.0.1:9/x", ["127.0.0.1"], True),
        ("http://127.0.0.1:9/x", ["127.0.0.0/8"], True),
        ("http://localhost:9/x", [], False),
        ("http://localhost:9/x", ["10.0.0.0/8"], False),
        ("http://localhost:9/x", ["127.0.0.1"], False),
        ("http://localhost:9/x", ["127.0.0.1/32"], True),
        ("http://[::1]:9/x", ["::1"], True),
        ("http://localhost:9/x", ["localhost"], True),
        ("http://[::1]/", [], False),
        ("http://10.1.2.3/", [], False),
        ("http://192.168.0.1/", [], False),
        ("http://169.254.169.254/latest/meta-data", [], False),
        ("http://224.0.0.1/", [], False),
        ("http://0.0.0.0/", [], False),
        ("http://[::ffff:127.0.0.1]/", [], False),
        ("http://8.8.8.8/", [], True),
        ("ftp://8.8.8.8/", [], False),
        ("http://user:pw@8.8.8.8/", [], False),
    ],
)
def test_ssrf_guard(url: str, allow: list[str], ok: bool) -> None:
    if ok:
        check_url(url, allow)
    else:
        with pytest.raises(UnsafeUrlError):
            check_url(url, allow)


def test_retry_after_and_backoff() -> None:
    assert retry_after_seconds("120") == 120
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert backoff(1, 0.0).total_seconds() == 5 and backoff(1, 1.0).total_seconds() == 10
    assert backoff(30, 1.0).total_seconds() == 3600


def test_payload_omits_what_does_not_apply() -> None:
    event = WebhookEvent(
        event_id="x", event="REGISTERED_MODEL_CREATED", model_name="m", event_timestamp=1
    )
    assert payload_for(event, "w") == {
        "event": "REGISTERED_MODEL_CREATED",
        "webhook_id": "w",
        "event_timestamp": event.event_timestamp,
        "model_name": "m",
    }
