"""Durable webhook delivery: one `WebhookDeliveryWorkflow` per (event, webhook).

The workflow makes one HTTP attempt per activity (`deliver_attempt`), records every attempt in
the ledger, and retries connection errors, 429 and 5xx with exponential backoff and jitter
(10 s doubling up to 1 h, each delay drawn between half and all of it), honouring
`Retry-After`, for up to 24 hours after the first attempt. A 2xx delivers; a 410 disables the
webhook; any other answer (including a 3xx: redirects are never followed) fails the delivery.
The `webhook-id` header is the delivery id on every attempt, so a receiver can deduplicate.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from workflows.domain import now_ms

with workflow.unsafe.imports_passed_through():
    import httpx

    from workflows.ledger import DeliveryAttempt, Ledger, Webhook, WebhookDelivery
    from workflows.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_FAILURES
    from workflows.settings import WorkerSettings
    from workflows.tls import verifying_context
    from workflows.webhooks.signing import EncryptionKeyMissing, SecretBox, signed_headers
    from workflows.webhooks.ssrf import UnsafeUrlError, check_url

DELIVERY_WINDOW = timedelta(hours=24)
FIRST_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
REQUEST_TIMEOUT_S = 10.0
MAX_BODY_KEPT = 1024

DELIVERED, RETRY, FAILED, GONE, SKIPPED = "DELIVERED", "RETRY", "FAILED", "GONE", "SKIPPED"
# Delivery states in the ledger: PENDING, RETRYING, DELIVERED, FAILED, GONE, SKIPPED.


def delivery_workflow_id(delivery_id: str) -> str:
    return f"webhook-delivery/{delivery_id}"


class AttemptInput(BaseModel):
    delivery_id: str
    attempt: int
    at_ms: int


class AttemptResult(BaseModel):
    outcome: str
    status_code: int | None = None
    retry_after_s: float | None = None


@dataclass
class SendResult:
    outcome: str
    status_code: int | None
    body: str | None
    error: str | None
    latency_ms: int
    retry_after_s: float | None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify(status: int) -> str:
    if 200 <= status < 300:
        return DELIVERED
    if status == 410:
        return GONE
    if status == 429 or status >= 500:
        return RETRY
    return FAILED


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=False).encode()


async def send_once(
    webhook: Webhook,
    delivery_id: str,
    payload: dict[str, Any],
    *,
    box: SecretBox,
    allow_hosts: list[str],
) -> SendResult:
    """One signed POST of `payload` to the webhook, after the SSRF check. Never raises for
    what the receiver or the network does."""
    started = time.monotonic()

    def result(outcome: str, **kw: Any) -> SendResult:
        fields: dict[str, Any] = {
            "status_code": None,
            "body": None,
            "error": None,
            "retry_after_s": None,
        }
        fields.update(kw)
        latency = int((time.monotonic() - started) * 1000)
        return SendResult(outcome=outcome, latency_ms=latency, **fields)

    try:
        destination = check_url(webhook.url, allow_hosts)  # connect to the checked address
    except UnsafeUrlError as err:
        retryable = "does not resolve" in str(err)
        return result(RETRY if retryable else FAILED, error=str(err))
    body = encode_body(payload)
    headers = {"Content-Type": "application/json", "User-Agent": "Signoff-Webhooks/1"}
    try:
        secret = box.decrypt(webhook.secret_enc)
        authorization = box.decrypt(webhook.authorization_enc)
    except EncryptionKeyMissing as err:
        return result(FAILED, error=str(err))
    headers |= signed_headers(secret, delivery_id, body)
    if authorization:
        headers["Authorization"] = authorization
    try:
        async with httpx.AsyncClient(
            verify=verifying_context(trust_env=False) if webhook.enable_ssl_verification else False,
            follow_redirects=False,
            timeout=REQUEST_TIMEOUT_S,
            trust_env=False,
        ) as client:
            response = await client.post(
                destination.url,
                content=body,
                headers=headers | destination.headers,
                extensions=destination.extensions,
            )
    except httpx.HTTPError as err:
        return result(RETRY, error=f"{type(err).__name__}: {err}" if str(err) else repr(err))
    outcome = classify(response.status_code)
    error = None
    if 300 <= response.status_code < 400:
        error = f"redirect to {response.headers.get('location')!r} not followed"
    elif outcome == GONE:
        error = "410 Gone: the webhook was disabled"
    elif outcome != DELIVERED:
        error = f"HTTP {response.status_code}"
    return result(
        outcome,
        status_code=response.status_code,
        body=response.text[:MAX_BODY_KEPT],
        error=error,
        retry_after_s=retry_after_seconds(response.headers.get("retry-after"))
        if outcome == RETRY
        else None,
    )


def attempt_record(attempt: int, at_ms: int, sent: SendResult) -> DeliveryAttempt:
    return DeliveryAttempt(
        attempt=attempt,
        time_ms=at_ms,
        status_code=sent.status_code,
        latency_ms=sent.latency_ms,
        error=sent.error,
    )


STATE_FOR = {DELIVERED: "DELIVERED", RETRY: "RETRYING", FAILED: "FAILED", GONE: "GONE"}


class WebhookActivities:
    def __init__(self, ledger: Ledger, settings: WorkerSettings) -> None:
        self.ledger = ledger
        self.settings = settings
        key = settings.encryption_key.get_secret_value() if settings.encryption_key else None
        self.box = SecretBox(key)

    async def _load(self, delivery_id: str) -> tuple[WebhookDelivery | None, Webhook | None]:
        delivery = await self.ledger.webhooks.get_delivery(delivery_id)
        webhook = await self.ledger.webhooks.get(delivery.webhook_id) if delivery else None
        return delivery, webhook

    @activity.defn
    async def deliver_attempt(self, inp: AttemptInput) -> AttemptResult:
        delivery, webhook = await self._load(inp.delivery_id)
        now = now_ms()
        if delivery is None:
            return AttemptResult(outcome=SKIPPED)
        if webhook is None or webhook.status == "DISABLED":
            await self.ledger.webhooks.set_delivery_state(
                delivery_id=inp.delivery_id, state=SKIPPED, now_ms=now
            )
            return AttemptResult(outcome=SKIPPED)
        sent = await send_once(
            webhook,
            delivery.id,
            delivery.payload,
            box=self.box,
            allow_hosts=self.settings.webhook_allow_hosts,
        )
        await self.ledger.webhooks.record_attempt(
            delivery_id=inp.delivery_id,
            attempt=attempt_record(inp.attempt, inp.at_ms, sent),
            state=STATE_FOR[sent.outcome],
            now_ms=now,
        )
        WEBHOOK_ATTEMPTS.labels(webhook.id, sent.outcome).inc()
        if sent.outcome in (FAILED, GONE):
            WEBHOOK_FAILURES.labels(webhook.id).inc()
        if sent.outcome == GONE:
            await self.ledger.webhooks.update(webhook_id=webhook.id, now_ms=now, status="DISABLED")
        return AttemptResult(
            outcome=sent.outcome, status_code=sent.status_code, retry_after_s=sent.retry_after_s
        )

    @activity.defn
    async def give_up_delivery(self, delivery_id: str) -> None:
        await self.ledger.webhooks.set_delivery_state(
            delivery_id=delivery_id, state="FAILED", now_ms=now_ms()
        )
        delivery = await self.ledger.webhooks.get_delivery(delivery_id)
        if delivery is not None and activity.info().attempt == 1:
            WEBHOOK_FAILURES.labels(delivery.webhook_id).inc()


def backoff(
    attempt: int, jitter: float, *, first: timedelta = FIRST_DELAY, cap: timedelta = MAX_DELAY
) -> timedelta:
    """The delay after failed attempt `attempt` (1-based): `first` (10 s) doubling, capped at
    `cap` (1 h), times a jitter factor in [0.5, 1)."""
    base = min(first * (2 ** min(attempt - 1, 20)), cap)
    return base * (0.5 + jitter / 2)


@workflow.defn
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, delivery_id: str) -> str:
        deadline = workflow.now() + DELIVERY_WINDOW
        attempt = 0
        while True:
            attempt += 1
            now = workflow.now()
            result: AttemptResult = await workflow.execute_activity_method(
                WebhookActivities.deliver_attempt,
                AttemptInput(
                    delivery_id=delivery_id,
                    attempt=attempt,
                    at_ms=int(now.timestamp() * 1000),
                ),
                start_to_close_timeout=timedelta(seconds=REQUEST_TIMEOUT_S * 3 + 30),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(minutes=5),
                ),
                schedule_to_close_timeout=max(deadline - now, timedelta(minutes=5)),
            )
            if result.outcome != RETRY:
                return result.outcome
            delay = backoff(attempt, workflow.random().random())
            if result.retry_after_s is not None:
                delay = max(timedelta(seconds=result.retry_after_s), timedelta(seconds=1))
            if workflow.now() + delay > deadline:
                await workflow.execute_activity_method(
                    WebhookActivities.give_up_delivery,
                    delivery_id,
                    start_to_close_timeout=timedelta(seconds=60),
                )
                return FAILED
            await workflow.sleep(delay)
