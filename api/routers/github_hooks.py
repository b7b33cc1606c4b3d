"""The GitHub App's webhooks: Signoff as a custom deployment protection rule.

`POST /api/2.0/signoff/hooks/github` carries no JWT; GitHub proves the delivery with the App's
webhook secret (`SIGNOFF_GITHUB_WEBHOOK_SECRET`). The order of the checks is the security
argument, as for every inbound hook (`api.inbound`):

1. no secret configured: 404, nothing to verify against;
2. the body is capped (`MAX_GITHUB_BODY`, read no further) and `X-Hub-Signature-256`
   (`sha256=` + hex HMAC-SHA256 of the raw body) is compared in constant time before anything
   is parsed (401);
3. only then is the delivery claimed by its `X-GitHub-Delivery` id: a taken claim is a replay
   and does nothing (409). GitHub signs the body but not its headers, and no timestamp: so a
   `deployment_protection_rule` payload also claims its SHA-256, and the same body under a new
   delivery id is refused too (409);
4. `deployment_protection_rule` with `action: requested` starts (or joins) the durable gate of
   that run and environment (`workflows.deployments`), once its `deployment_callback_url` is
   the review endpoint of its repository on `SIGNOFF_GITHUB_API_URL` (400 otherwise: Signoff
   never follows a URL from a payload). `ping` is answered; other events are recorded as
   ignored. The answer to GitHub comes later, from the gate, as a call to GitHub's API.

Every delivery is recorded with the inbound hooks (`GET /api/2.0/signoff/hooks/inbound`).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from api.deps import Services, ServicesDep
from api.errors import ApiError, as_api_error, bad_request, error_responses, not_found
from api.inbound import MAX_MESSAGE_ID, process_claimed, read_body, refuse_unclaimed
from api.models.github import DeploymentProtectionRuleEvent, GithubHookAnswer
from api.routers.decision_hooks import _describe
from api.services.deployment_gates import deployment_event, open_gate
from workflows.domain import now_ms

router = APIRouter(prefix="/api/2.0/signoff/hooks", tags=["GitHub App"])

SOURCE = "github"
PAYLOAD_SOURCE = "github-payload"
"""Claims on payload digests: GitHub's signature does not cover the delivery id."""
MAX_GITHUB_BODY = 1024 * 1024
"""A `deployment_protection_rule` payload is tens of KiB (more with many pull requests)."""
PROTECTION_RULE = "deployment_protection_rule"
_ANSWERS = error_responses(400, 401, 404, 409, 503)


def _secret(services: Services) -> bytes:
    secret = services.settings.github_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise not_found(
            "GitHub App webhooks are not configured; set SIGNOFF_GITHUB_WEBHOOK_SECRET to the "
            "App's webhook secret"
        )
    return secret.get_secret_value().encode()


def verify_signature(secret: bytes, raw: bytes, header: str | None) -> None:
    """401 unless `header` is `sha256=` + the hex HMAC-SHA256 of this exact body."""
    if not header:
        raise ApiError(401, "missing X-Hub-Signature-256; set the App's webhook secret")
    expected = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header.strip().encode(), expected.encode()):
        raise ApiError(401, "X-Hub-Signature-256 does not match the body")


def _delivery(request: Request) -> str:
    delivery = request.headers.get("x-github-delivery", "")
    if not delivery or len(delivery) > MAX_MESSAGE_ID or not delivery.isprintable():
        raise bad_request("missing or malformed X-GitHub-Delivery header")
    return delivery


def _parse(raw: bytes) -> DeploymentProtectionRuleEvent:
    try:
        return DeploymentProtectionRuleEvent.model_validate_json(raw)
    except ValidationError as err:
        raise bad_request(_describe(err)) from None


async def _claim_payload(services: Services, raw: bytes, received_ms: int) -> str:
    """Claim the payload's digest (409 when taken: the same event under another delivery id);
    the claim's row id, to release it if Signoff then fails."""
    row_id = uuid.uuid4().hex
    digest = hashlib.sha256(raw).hexdigest()
    claimed = await services.ledger.inbound.claim(
        hook_id=row_id, source=PAYLOAD_SOURCE, message_id=digest, received_ms=received_ms
    )
    if not claimed:
        raise ApiError(409, "this event was delivered before, under another X-GitHub-Delivery")
    return row_id


async def _protection_rule(
    services: Services, raw: bytes, delivery: str, received_ms: int, record: dict[str, Any]
) -> GithubHookAnswer:
    body = _parse(raw)
    if body.action != "requested":
        record["outcome"] = "IGNORED"
        return GithubHookAnswer(
            event=PROTECTION_RULE, accepted=False, message=f"action {body.action!r} ignored"
        )
    with as_api_error():
        event = deployment_event(services, body, delivery, received_ms)
    row_id = await _claim_payload(services, raw, received_ms)
    try:
        with as_api_error():
            gate_id = await open_gate(services, event)
    except ApiError as err:
        await services.ledger.inbound.finish(hook_id=row_id, outcome="ERROR", reason=err.message)
        raise
    await services.ledger.inbound.finish(
        hook_id=row_id, outcome="ACCEPTED", reason=None, event=PROTECTION_RULE
    )
    return GithubHookAnswer(
        event=PROTECTION_RULE,
        accepted=True,
        gate_id=gate_id,
        message=f"the deployment of {event.repository} run {event.run_id} to "
        f"{event.environment} waits for the Signoff request the run opened",
    )


@router.post("/github", status_code=202, response_model=GithubHookAnswer, responses=_ANSWERS)
async def github_hook(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Verify, claim, act, record. No body model in the signature on purpose: the raw bytes
    must be verified before anything parses them."""
    received_ms = now_ms()
    delivery = request.headers.get("x-github-delivery") or None
    try:
        secret = _secret(services)
        raw = await read_body(request, MAX_GITHUB_BODY)
        verify_signature(secret, raw, request.headers.get("x-hub-signature-256"))
        delivery = _delivery(request)
    except ApiError as err:
        await refuse_unclaimed(services, SOURCE, delivery, received_ms, err)
        raise
    event_name = request.headers.get("x-github-event", "")[:64]

    async def handle(record: dict[str, Any]) -> dict[str, Any]:
        record["event"] = event_name or None
        if event_name == PROTECTION_RULE:
            answer = await _protection_rule(services, raw, delivery, received_ms, record)
        elif event_name == "ping":
            answer = GithubHookAnswer(event="ping", accepted=True, message="pong")
        else:
            record["outcome"] = "IGNORED"
            answer = GithubHookAnswer(
                event=event_name,
                accepted=False,
                message=f"Signoff acts on {PROTECTION_RULE} events only; this one is ignored",
            )
        return answer.model_dump(mode="json")

    return await process_claimed(services, SOURCE, delivery, received_ms, handle)
