"""The Slack message that follows a request (`notify.slack`): where it is and every call made
for it, `GET /api/2.0/signoff/slack/messages/get`, for whoever may read the request."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.slack import SlackMessageRecord, SlackMessageResponse
from api.routers.transition_request_reads import RequestIdQuery
from api.services.errors import NotFound
from api.services.requests import readable_request

router = APIRouter(
    prefix="/api/2.0/signoff/slack/messages",
    tags=["slack"],
    responses=error_responses(400, 401, 403, 404),
)


@router.get("/get")
async def get_slack_message(
    request_id: RequestIdQuery, principal: PrincipalDep, services: ServicesDep
) -> SlackMessageResponse:
    """A request's Slack message: channel, `ts`, the revision it shows, state and attempts."""
    await readable_request(services, request_id=request_id, principal=principal)
    message = await services.ledger.slack_messages.get(request_id)
    if message is None:
        raise NotFound(f"request {request_id!r} has no Slack message (no notify.slack on its rule)")
    return SlackMessageResponse(message=SlackMessageRecord.of(message))
