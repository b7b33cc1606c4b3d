"""What a Slack interaction means, once its signature is verified: reading Slack's payload,
opening the reject modal, and the sentences that tell the person how their click went.

The decisions themselves go through `services.directory_decisions` (the Slack user mapped by
the policy's `directory: {slack: ...}`, then exactly the API's path); the route
(`api.routers.slack_hooks`) verifies, claims and acknowledges."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

from pydantic import ValidationError

from api.deps import Services
from api.models.activities import DecisionResponse
from api.models.common import REQUEST_ID_PATTERN
from api.models.slack import BlockActions, OtherInteraction, ViewSubmission
from api.services.directory_decisions import directory_principal
from api.services.errors import Invalid, Unavailable
from api.services.requests import readable_request
from workflows.domain import RequestState
from workflows.settings import WorkerSettings
from workflows.slack.blocks import (
    APPROVE_ACTION,
    REASON_ACTION,
    REASON_BLOCK,
    REJECT_ACTION,
    REJECT_CALLBACK,
    reject_modal,
)
from workflows.slack.web_api import DELIVERED, SlackWebApi

SOURCE = "slack"
"""The inbound source Slack's interactions are recorded under, and the `directory:` key."""
MAX_FORM_FIELDS = 10

Interaction = BlockActions | ViewSubmission | OtherInteraction


@dataclass(frozen=True)
class Click:
    """An Approve or Reject button pressed by a Slack user on a request's message."""

    action: str
    user: str
    request_id: str
    trigger_id: str | None
    response_url: str | None


@dataclass(frozen=True)
class Rejection:
    """The reject modal, submitted with its reason."""

    user: str
    request_id: str
    reason: str
    response_url: str | None


def parse_interaction(raw: bytes) -> Interaction:
    """Slack's form body (`payload=<JSON>`), as the payload it carries; Invalid otherwise."""
    try:
        form = parse_qs(raw.decode("utf-8"), strict_parsing=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Invalid("the body is not a form (application/x-www-form-urlencoded)") from None
    payloads = form.get("payload", [])
    if len(payloads) != 1:
        raise Invalid("the body needs one 'payload' field, Slack's interaction as JSON")
    try:
        data = json.loads(payloads[0])
    except ValueError:
        raise Invalid("the 'payload' field is not JSON") from None
    if not isinstance(data, dict):
        raise Invalid("the 'payload' field is not a JSON object")
    kinds: dict[object, type[Interaction]] = {
        "block_actions": BlockActions,
        "view_submission": ViewSubmission,
    }
    try:
        return kinds.get(data.get("type"), OtherInteraction).model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in err.errors(include_url=False)
        )
        raise Invalid(f"the payload is not a Slack interaction Signoff knows: {problems}") from None


def click_of(interaction: BlockActions) -> Click | None:
    """The Approve or Reject click a `block_actions` payload carries; None for any other."""
    action = next(
        (a for a in interaction.actions if a.action_id in (APPROVE_ACTION, REJECT_ACTION)), None
    )
    if action is None:
        return None
    return Click(
        action=action.action_id,
        user=interaction.user.id,
        request_id=_request_id(action.value),
        trigger_id=interaction.trigger_id,
        response_url=interaction.response_url,
    )


def rejection_of(submission: ViewSubmission) -> Rejection | None:
    """The reason given in the reject modal; None for another app view. Invalid when the
    metadata Signoff put in the modal is not there."""
    view = submission.view
    if view.callback_id != REJECT_CALLBACK:
        return None
    try:
        metadata = json.loads(view.private_metadata)
        request_id, response_url = metadata["request_id"], metadata.get("response_url")
    except (ValueError, KeyError, TypeError):
        raise Invalid("the reject modal's private_metadata is not Signoff's") from None
    field = view.state.get("values", {}).get(REASON_BLOCK, {}).get(REASON_ACTION, {})
    reason = field.get("value") if isinstance(field, dict) else None
    return Rejection(
        user=submission.user.id,
        request_id=_request_id(request_id),
        reason=(reason or "").strip() if isinstance(reason, str) else "",
        response_url=response_url if isinstance(response_url, str) else None,
    )


def _request_id(value: object) -> str:
    if not isinstance(value, str) or len(value) > 64 or not re.match(REQUEST_ID_PATTERN, value):
        raise Invalid(f"{str(value)[:80]!r} is not a Signoff request id")
    return value


def slack_api(settings: WorkerSettings) -> SlackWebApi | None:
    token = settings.slack_bot_token
    if token is None or not token.get_secret_value():
        return None
    return SlackWebApi(token, settings.slack_api_url, settings.webhook_allow_hosts)


async def open_reject_dialog(services: Services, click: Click) -> None:
    """Ask the person why (`views.open`), if they may reject at all: listed in the directory,
    able to read the model, the request still open. The rejection itself comes with the
    modal's submission and meets every rule of an API rejection."""
    principal = directory_principal(services, SOURCE, click.user)
    request = await readable_request(services, request_id=click.request_id, principal=principal)
    if request.state is not RequestState.PENDING:
        raise Invalid(f"the request is no longer open (it is {request.state.value})")
    api = slack_api(services.settings)
    if api is None or not click.trigger_id:
        raise Unavailable(
            "Signoff cannot open the reason dialog: SIGNOFF_SLACK_BOT_TOKEN is not set"
            if api is None
            else "Slack sent no trigger_id to open the reason dialog with",
            which="slack",
        )
    call = await asyncio.to_thread(
        api.open_view, click.trigger_id, reject_modal(request, click.response_url)
    )
    if call.outcome != DELIVERED:
        raise Unavailable(f"Slack did not open the reason dialog ({call.error})", which="slack")


def decided_text(action: str, decided: DecisionResponse) -> str:
    """What the person who clicked is told when Signoff recorded their decision."""
    outcome = decided.request
    if action == "reject":
        return "You rejected the request; it is closed."
    if outcome.state is RequestState.APPLIED:
        return f"You approved the request ({outcome.approvals} of {outcome.quorum}): applied."
    if outcome.state is RequestState.APPLYING:
        why = f" ({outcome.reason})" if outcome.reason else ""
        return f"You approved the request: it is being applied{why}."
    if outcome.state is RequestState.SCHEDULED:
        return (
            f"You approved the request ({outcome.approvals} of {outcome.quorum}): it waits for "
            f"its change window and applies {_slack_date(outcome.apply_at)}."
        )
    waiting = max(outcome.quorum - outcome.approvals, 0)
    more = f"; {waiting} more needed" if waiting else "; its checks are still running"
    return f"You approved the request ({outcome.approvals} of {outcome.quorum}{more})."


def _slack_date(ms: int | None) -> str:
    """An instant as Slack shows it on each reader's own clock (its `<!date^…>` formatting),
    with the time in UTC for clients that cannot."""
    if ms is None:
        return "when it opens"
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return f"<!date^{ms // 1000}^{{date_short_pretty}} at {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def refusal_text(action: str, status: int, message: str) -> str:
    """What the person is told when Signoff did not record their click."""
    what = {"approve": "approval", "reject": "rejection"}.get(action, "click")
    if status >= 500:
        return f"Signoff could not act on your {what} just now: {message}"
    return f"Signoff did not record your {what}: {message}"
