"""What every inbound webhook goes through, whoever sends it (a chat tool's decision, MLflow's
own events): a bounded body, a timestamp window, a claim on its message id so a replay does
nothing, and a record of how it ended.

The order is the security argument: the signature and the window are checked on the raw bytes
(by the caller, before anything is parsed); only a verified message claims its id, so a forged
one can never burn a genuine id; a claim is released when Signoff, not the message, failed, so
the sender's retry is processed. Secrets and signatures are never logged nor stored.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from api.deps import Services
from api.errors import ApiError, bad_request
from api.metrics import INBOUND_HOOKS, UNKNOWN_SOURCE
from workflows.ledger import InboundHook

log = logging.getLogger(__name__)

TOLERANCE_S = 300
"""The Standard Webhooks window (the `standardwebhooks` package's own, 5 minutes), used for
MLflow's webhooks too: a message signed longer ago, or further ahead, is refused, which bounds
how long a captured one is good."""
MAX_BODY = 64 * 1024
MLFLOW_SOURCE = "mlflow"
"""The source name of MLflow's own webhooks (`api.routers.mlflow_hooks`)."""
MAX_MESSAGE_ID = 256

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Acts on a verified, claimed message; fills the dict with what to record (event, user_id,
request_id); returns the response body, or raises ApiError."""


_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
"""A plain decimal integer: no sign, point, exponent, whitespace, `nan` or `inf`; 12 digits are
enough until the year 33658."""


def check_window(timestamp: str, now: float, header: str) -> int:
    """401 unless `timestamp` (from `header`) is Unix seconds as a plain decimal integer within
    the window; says which way the sender's clock is off. The one rule of every inbound hook
    (a float would let `nan` through: `abs(now - nan) > 300` is false). Answers the seconds."""
    if not _TIMESTAMP.fullmatch(timestamp):
        raise ApiError(
            401, f"{header} must be a Unix time in whole seconds, written as plain decimal digits"
        )
    sent = int(timestamp)
    skew = now - sent
    if abs(skew) > TOLERANCE_S:
        way = f"{skew:.0f} s old" if skew > 0 else f"{-skew:.0f} s in the future"
        raise ApiError(
            401,
            f"{header} is outside the 5-minute window ({way}); sign each message "
            "when sending it and check the sender's clock",
        )
    return sent


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refused (400) past `limit` bytes: at once when the declared length says
    so, else as soon as the bytes read pass it (a chunked body is never read whole first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise bad_request(f"the body is larger than {limit} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise bad_request(f"the body is larger than {limit} bytes")
    return bytes(raw)


def count_verdict(services: Services, source: str, outcome: str) -> None:
    """One inbound message's verdict, on `signoff_inbound_hooks_total` (a source nobody set up
    counts as `unknown`: the path is the sender's to choose)."""
    known = source == MLFLOW_SOURCE or source in services.settings.hook_secrets
    INBOUND_HOOKS.labels(source if known else UNKNOWN_SOURCE, outcome.lower()).inc()


def _outcome(err: ApiError) -> str:
    """A 5xx is Signoff failing, not the message: the claim goes back for the retry."""
    return "ERROR" if err.status >= 500 else "REFUSED"


async def refuse_unclaimed(
    services: Services, source: str, message_id: str | None, received_ms: int, err: ApiError
) -> None:
    """Record a message turned away before it claimed its id (nothing to release)."""
    outcome = _outcome(err)
    count_verdict(services, source, outcome)
    if len(source) > 64:  # the ledger column; a longer path is no source anyone set up
        return
    if message_id is not None and len(message_id) > MAX_MESSAGE_ID:
        message_id = None
    await services.ledger.inbound.record(
        hook_id=uuid.uuid4().hex,
        source=source,
        message_id=message_id,
        received_ms=received_ms,
        outcome=outcome,
        reason=err.message,
    )
    log.info("inbound %s message %s %s: %s", source, message_id, outcome.lower(), err.message)


async def process_claimed(
    services: Services, source: str, message_id: str, received_ms: int, handler: Handler
) -> dict[str, Any]:
    """Claim the verified message, let `handler` act on it, and record how that went."""
    hook_id = await claim_message(services, source, message_id, received_ms)
    return await run_claimed(services, hook_id, source, message_id, handler)


async def claim_message(services: Services, source: str, message_id: str, received_ms: int) -> str:
    """Claim a verified message's id; the id of its record. 409 (recorded) for a replay."""
    hook_id = uuid.uuid4().hex
    claimed = await services.ledger.inbound.claim(
        hook_id=hook_id, source=source, message_id=message_id, received_ms=received_ms
    )
    if not claimed:
        err = ApiError(409, f"message {message_id!r} from {source!r} was already processed")
        await refuse_unclaimed(services, source, message_id, received_ms, err)
        raise err
    return hook_id


async def run_claimed(
    services: Services, hook_id: str, source: str, message_id: str, handler: Handler
) -> dict[str, Any]:
    """Let `handler` act on a claimed message and record how that went: its ApiError is
    recorded (refused, or an error that releases the claim) and raised; anything else is a
    503 to retry."""
    record: dict[str, Any] = {}
    try:
        response = await handler(record)
    except ApiError as err:
        await _finish(services, source, hook_id, _outcome(err), err.message, record)
        log.info("inbound %s message %s: %s", source, message_id, err.message)
        raise
    except Exception as err:
        reason = f"Signoff could not act on the message just now ({type(err).__name__})"
        await _finish(services, source, hook_id, "ERROR", reason, record)
        log.exception("inbound %s message %s failed", source, message_id)
        raise ApiError(503, reason + "; retry it") from err
    await _finish(services, source, hook_id, record.pop("outcome", "ACCEPTED"), None, record)
    return response


async def _finish(
    services: Services,
    source: str,
    row_id: str,
    outcome: str,
    reason: str | None,
    record: dict[str, Any],
) -> None:
    count_verdict(services, source, outcome)
    await services.ledger.inbound.finish(hook_id=row_id, outcome=outcome, reason=reason, **record)


def inbound_json(row: InboundHook) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "message_id": row.message_id,
        "outcome": row.outcome,
        "reason": row.reason,
        "event": row.event,
        "user_id": row.user_id,
        "request_id": row.request_id,
        "received_timestamp": row.received_ms,
    }
