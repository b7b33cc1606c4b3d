"""Inbound decisions: approve or reject a request from a chat or ticketing tool.

`POST /api/2.0/signoff/hooks/decisions/{source}` carries no JWT; the tool proves who it is with
the source's Standard Webhooks secret (`SIGNOFF_HOOK_SECRETS`), so the order of the checks is
the security argument:

1. the source must be configured (404 otherwise: nothing to verify against);
2. the Standard Webhooks signature over the raw body and the 5-minute timestamp window are
   checked before the body is even parsed (401), so an unsigned body never reaches a parser
   that might choke on it or a lookup that might leak what exists;
3. only then is `<source>/<webhook-id>` claimed in the ledger; a taken claim is a replay and
   does nothing (409). A forged message never claims, so it cannot burn a genuine id;
4. the tool's user is mapped to a principal through the policy's `directory:` (403 when not
   listed), and the decision goes through `services.decisions.decide`, exactly the API's path,
   so quorum,
   no self-approval and levels are the workflow's rules, not this module's.

Every message is recorded (accepted, refused and why, or an error Signoff could not act on just
now, whose claim is released so the sender's retry is processed). Secrets and signatures are
never logged nor stored. `GET /api/2.0/signoff/hooks/inbound` (`api.routers.inbound_messages`)
lists the record to registry admins.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.deps import Services, ServicesDep
from api.errors import ApiError, as_api_error, bad_request, error_responses, not_found
from api.inbound import (
    MAX_MESSAGE_ID,
    check_window,
    process_claimed,
    read_body,
    refuse_unclaimed,
)
from api.models.activities import DecisionResponse
from api.models.hooks import DecisionHook
from api.services.directory_decisions import decide_as_directory_user
from workflows.domain import now_ms

router = APIRouter(prefix="/api/2.0/signoff/hooks", tags=["inbound decisions"])

_ANSWERS = error_responses(400, 401, 403, 404, 409, 503)
log = logging.getLogger(__name__)


def _describe(err: ValidationError) -> str:
    """pydantic's errors as one sentence per problem, like the API's other 400s."""
    parts = []
    for error in err.errors(include_url=False):
        if error["type"] == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            parts.append(f"the request body is not valid JSON: {reason}")
            continue
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_body(raw: bytes) -> DecisionHook:
    try:
        return DecisionHook.model_validate_json(raw)
    except ValidationError as err:
        raise bad_request(_describe(err)) from None


# -- verification (before anything is parsed or claimed) -----------------------------------


def _secret(services: Services, source: str) -> str:
    secret = services.settings.hook_secrets.get(source)
    if secret is None:
        raise not_found(
            f"no inbound decision source {source!r} is configured; add it with its Standard "
            'Webhooks secret to SIGNOFF_HOOK_SECRETS (e.g. {"' + source + '": "whsec_..."})'
        )
    return secret.get_secret_value()


def _headers(request: Request) -> dict[str, str]:
    """The three Standard Webhooks headers; 401 naming any that is missing."""
    wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
    found = {name: request.headers.get(name, "") for name in wanted}
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise ApiError(
            401,
            f"missing Standard Webhooks header(s) {', '.join(missing)}; sign the message with "
            "the source's secret (standardwebhooks.Webhook(secret).sign)",
        )
    if len(found["webhook-id"]) > MAX_MESSAGE_ID:
        raise ApiError(401, f"webhook-id is longer than {MAX_MESSAGE_ID} characters")
    return found


def verify(secret: str, raw: bytes, headers: dict[str, str], now: float) -> None:
    """401 unless the headers carry a valid v1 signature of this exact body, made in the window.
    The package compares in constant time; nothing here compares secrets or signatures."""
    check_window(headers["webhook-timestamp"], now, "webhook-timestamp")
    try:
        webhook = Webhook(secret)
    except Exception as err:  # a broken configured secret is our fault, not the sender's
        log.error("the SIGNOFF_HOOK_SECRETS entry is not a valid Standard Webhooks secret")
        raise ApiError(503, "this source's secret is misconfigured on the server") from err
    try:
        webhook.verify(raw, headers, json_parse=False)
    except WebhookVerificationError as err:
        if "timestamp" in str(err).lower():  # crossed the window edge since _check_window
            raise ApiError(401, "webhook-timestamp is outside the 5-minute window") from None
        raise ApiError(401, "signature does not match") from None
    except ValueError:  # malformed signature list, bad base64, a body that is not UTF-8
        raise ApiError(401, "signature does not match") from None


# -- routes --------------------------------------------------------------------------------


@router.post("/decisions/{source}", response_model=DecisionResponse, responses=_ANSWERS)
async def decision_hook(source: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """Verify, claim, decide, record. No JWT and no body model in the signature on purpose:
    the raw bytes must be verified before FastAPI or anyone else parses them."""
    received_ms = now_ms()
    message_id = request.headers.get("webhook-id") or None
    try:
        secret = _secret(services, source)
        headers = _headers(request)
        raw = await read_body(request)
        verify(secret, raw, headers, received_ms / 1000)
    except ApiError as err:
        await refuse_unclaimed(services, source, message_id, received_ms, err)
        raise
    assert message_id is not None  # _headers ensured it

    async def handle(record: dict[str, Any]) -> dict[str, Any]:
        body = parse_body(raw)
        record.update(event=body.decision, user_id=body.user, request_id=body.request_id)
        with as_api_error():  # recorded by its status: refused (4xx) or an error (5xx)
            decided = await decide_as_directory_user(services, source, body, record)
        return decided.model_dump(mode="json")

    return await process_claimed(services, source, message_id, received_ms, handle)
