"""Slack's interactivity requests: the Approve / Reject buttons of a request's message and the
reject modal, at `POST /api/2.0/signoff/hooks/slack` (the Slack app's Interactivity URL).

No JWT: Slack proves itself with the app's signing secret (`SIGNOFF_SLACK_SIGNING_SECRET`).
The order of the checks is the security argument, as for every inbound hook (`api.inbound`):

1. the body is capped, then `X-Slack-Signature` (`v0=` + hex HMAC-SHA256 of
   `v0:{timestamp}:{raw body}`) is verified by slack-sdk's `SignatureVerifier` (constant-time)
   with `X-Slack-Request-Timestamp` inside the 5-minute window, before anything is parsed
   (401 otherwise);
2. only then is the message claimed in the ledger, by a digest of its timestamp and signature
   (which Slack never sends twice), so a replay does nothing (409);
3. the payload is read; a click becomes a decision by the Slack user the policy's
   `directory: {slack: ...}` maps, on exactly the API's path (quorum, no self-approval, role,
   twice, no longer open).

Slack wants an answer within 3 seconds, so the route answers as soon as the message is claimed
and decides in the background; the person is then told how it went, refusals with their
reason, in a message only they see (`response_url`, ephemeral). Nothing is sent to the
`response_url` of a message that failed 1 or 2. Reject opens a modal asking why
(`views.open`); its submission carries the reason. Every message is recorded, with its
outcome, under the source `slack` (`GET /api/2.0/signoff/hooks/inbound`).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response

from api.deps import Services, ServicesDep
from api.errors import ApiError, as_api_error, error_responses, not_found, to_api_error
from api.inbound import (
    Handler,
    check_window,
    claim_message,
    read_body,
    refuse_unclaimed,
    run_claimed,
)
from api.models.hooks import DecisionHook
from api.models.slack import BlockActions, SlackAck, ViewSubmission
from api.services.directory_decisions import decide_as_directory_user
from api.services.errors import Invalid
from api.services.slack_interactions import (
    SOURCE,
    Click,
    Interaction,
    Rejection,
    click_of,
    decided_text,
    open_reject_dialog,
    parse_interaction,
    refusal_text,
    rejection_of,
)
from workflows.domain import now_ms
from workflows.slack.blocks import APPROVE_ACTION, MAX_REASON, REASON_BLOCK
from workflows.slack.web_api import DELIVERED, reply

router = APIRouter(prefix="/api/2.0/signoff/hooks", tags=["slack"])
log = logging.getLogger(__name__)

TIMESTAMP, SIGNATURE = "X-Slack-Request-Timestamp", "X-Slack-Signature"
_ACK = {
    200: {
        "description": "Acknowledged: an empty body (the outcome goes to the person through "
        "response_url), or errors for a modal submitted without a reason."
    }
}


# -- verification (before anything is parsed or claimed) -----------------------------------


class _At:
    """The verifier's clock (a `slack_sdk.signature.Clock`: it calls only `now()`), fixed at
    the time the request arrived."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def _signing_secret(services: Services) -> str:
    secret = services.settings.slack_signing_secret
    if secret is None or not secret.get_secret_value():
        raise not_found(
            "Slack is not set up: set SIGNOFF_SLACK_SIGNING_SECRET to the Slack app's signing "
            "secret (Basic Information → App Credentials)"
        )
    return secret.get_secret_value()


def _signature_headers(request: Request) -> tuple[str, str]:
    timestamp = request.headers.get(TIMESTAMP, "")
    signature = request.headers.get(SIGNATURE, "")
    found = {TIMESTAMP: timestamp, SIGNATURE: signature}
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise ApiError(401, f"missing {' and '.join(missing)}: this URL takes Slack's requests")
    if len(signature) > 200:
        raise ApiError(401, f"{SIGNATURE} does not match")
    return timestamp, signature


def verify_slack(secret: str, raw: bytes, timestamp: str, signature: str, now: float) -> None:
    """401 unless `signature` is Slack's v0 signature of this exact body at `timestamp`, and
    `timestamp` is inside the 5-minute window (the shared rule, then slack-sdk's own)."""
    from slack_sdk.signature import SignatureVerifier  # slack-sdk: only once Slack calls

    check_window(timestamp, now, TIMESTAMP)
    try:
        valid = SignatureVerifier(secret, clock=_At(now)).is_valid(raw, timestamp, signature)
    except (UnicodeDecodeError, ValueError):  # a body that is not UTF-8 was not signed by Slack
        valid = False
    if not valid:
        raise ApiError(401, f"{SIGNATURE} does not match; check SIGNOFF_SLACK_SIGNING_SECRET")


def message_id(timestamp: str, signature: str) -> str:
    """What a replay shares with the original: its timestamp and signature (kept as a digest)."""
    return "v0-" + hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()[:48]


# -- the route -----------------------------------------------------------------------------


@router.post(
    "/slack", response_model=SlackAck, responses=_ACK | error_responses(400, 401, 404, 409, 503)
)
async def slack_interaction(
    request: Request, services: ServicesDep, background: BackgroundTasks
) -> Response:
    """Verify, claim, acknowledge; decide in the background and tell the person. No body model
    in the signature on purpose: the raw bytes must be verified before anything parses them."""
    received_ms = now_ms()
    try:
        secret = _signing_secret(services)
        timestamp, signature = _signature_headers(request)
        raw = await read_body(request)
        verify_slack(secret, raw, timestamp, signature, received_ms / 1000)
    except ApiError as err:
        await refuse_unclaimed(services, SOURCE, None, received_ms, err)
        raise
    claimed = message_id(timestamp, signature)
    hook_id = await claim_message(services, SOURCE, claimed, received_ms)
    try:
        interaction = parse_interaction(raw)
        work = _work_for(services, interaction)
    except Invalid as err:
        await _finish(services, hook_id, "REFUSED", err.message)
        raise to_api_error(err) from err
    if work is None:
        await _finish(services, hook_id, "IGNORED", None, event=interaction.type)
        return Response(status_code=200)
    if isinstance(work, JSONResponse):
        await _finish(services, hook_id, "REFUSED", "the reject modal came without a usable reason")
        return work
    action, response_url, handler = work
    background.add_task(_answer, services, hook_id, claimed, action, response_url, handler)
    return Response(status_code=200)


Work = tuple[str, str | None, Handler]


def _work_for(services: Services, interaction: Interaction) -> Work | JSONResponse | None:
    """What to do in the background for this interaction, the modal's error answer, or None
    (nothing of Signoff's: acknowledged and ignored)."""
    if isinstance(interaction, BlockActions):
        click = click_of(interaction)
        if click is None:
            return None
        if click.action == APPROVE_ACTION:
            return "approve", click.response_url, _approving(services, click)
        return "reject", click.response_url, _asking_why(services, click)
    if isinstance(interaction, ViewSubmission):
        rejection = rejection_of(interaction)
        if rejection is None:
            return None
        problem = _reason_problem(rejection.reason)
        if problem:
            errors = {REASON_BLOCK: problem}
            return JSONResponse(SlackAck(response_action="errors", errors=errors).model_dump())
        return "reject", rejection.response_url, _rejecting(services, rejection)
    return None


def _reason_problem(reason: str) -> str | None:
    if not reason:
        return "Say why you reject the request."
    if len(reason) > MAX_REASON:
        return f"Say it in at most {MAX_REASON} characters."
    return None


# -- in the background: decide, then tell the person ---------------------------------------


def _approving(services: Services, click: Click) -> Handler:
    async def handle(record: dict[str, Any]) -> dict[str, Any]:
        record.update(event="approve", user_id=click.user, request_id=click.request_id)
        body = DecisionHook(decision="approve", user=click.user, request_id=click.request_id)
        with as_api_error():
            decided = await decide_as_directory_user(services, SOURCE, body, record)
        return {"text": decided_text("approve", decided)}

    return handle


def _asking_why(services: Services, click: Click) -> Handler:
    async def handle(record: dict[str, Any]) -> dict[str, Any]:
        record.update(event="reject_dialog", user_id=click.user, request_id=click.request_id)
        with as_api_error():
            await open_reject_dialog(services, click)
        return {"text": None}  # the modal is the answer

    return handle


def _rejecting(services: Services, rejection: Rejection) -> Handler:
    async def handle(record: dict[str, Any]) -> dict[str, Any]:
        record.update(event="reject", user_id=rejection.user, request_id=rejection.request_id)
        body = DecisionHook(
            decision="reject",
            user=rejection.user,
            request_id=rejection.request_id,
            comment=rejection.reason,
        )
        with as_api_error():
            decided = await decide_as_directory_user(services, SOURCE, body, record)
        return {"text": decided_text("reject", decided)}

    return handle


async def _answer(
    services: Services,
    hook_id: str,
    claimed: str,
    action: str,
    response_url: str | None,
    handler: Handler,
) -> None:
    """Act (recorded like every inbound message), then tell the person how it went."""
    try:
        text = (await run_claimed(services, hook_id, SOURCE, claimed, handler))["text"]
    except ApiError as err:
        text = refusal_text(action, err.status, err.message)
    if not text or not response_url:
        return
    sent = await reply(response_url, text, services.settings.webhook_allow_hosts)
    if sent.outcome != DELIVERED:
        log.warning("could not tell the Slack user how their %s went: %s", action, sent.error)


async def _finish(
    services: Services, hook_id: str, outcome: str, reason: str | None, **about: str | None
) -> None:
    await services.ledger.inbound.finish(hook_id=hook_id, outcome=outcome, reason=reason, **about)
