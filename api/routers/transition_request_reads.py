"""Signoff's reads of transition requests, which the Databricks API has no room for: one
request by id (`get`), a long-poll until it is decided (`wait`), and `search` across versions,
under `/api/2.0/signoff/transition-requests/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ServicesDep, TransitionsDep
from api.errors import error_responses
from api.models.common import REQUEST_ID_PATTERN, ModelName
from api.models.transition_requests import (
    TransitionRequest,
    TransitionRequestList,
    TransitionRequestResponse,
)
from api.services.requests import freshest, readable_request, search, wait_decided
from workflows.domain import RequestState

router = APIRouter(
    prefix="/api/2.0/signoff/transition-requests",
    tags=["transition requests"],
    responses=error_responses(400, 401, 403),
)

RequestIdQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=REQUEST_ID_PATTERN)]


@router.get("/get", responses=error_responses(404, 503))
async def get_transition_request(
    id: RequestIdQuery,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> TransitionRequestResponse:
    """One request with its check results and approvals."""
    request = await readable_request(services, request_id=id, principal=principal)
    request = await freshest(request, transitions)
    return TransitionRequestResponse(
        request=TransitionRequest.of(request, policy=services.policy, viewer=principal)
    )


@router.get("/wait", responses=error_responses(404, 503))
async def wait_for_transition_request(
    id: RequestIdQuery,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
    timeout_s: Annotated[float, Query(gt=0, le=300)] = 30.0,
    seen_state: Annotated[
        RequestState | None,
        Query(
            description="The state the caller last saw (e.g. PENDING from `create`): a request "
            "decided since then answers at once. Without it, the state the wait first reads."
        ),
    ] = None,
) -> TransitionRequestResponse:
    """Long-poll: answer when the request is decided (closed; or, if it was PENDING, approved
    and SCHEDULED for its change window), or with its state after `timeout_s`."""
    request = await readable_request(services, request_id=id, principal=principal)
    request = await wait_decided(
        services, request, transitions, timeout_s=timeout_s, seen_state=seen_state
    )
    return TransitionRequestResponse(
        request=TransitionRequest.of(request, policy=services.policy, viewer=principal)
    )


@router.get("/search")
async def search_transition_requests(
    principal: PrincipalDep,
    services: ServicesDep,
    name: Annotated[ModelName | None, Query()] = None,
    open_only: bool = True,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TransitionRequestList:
    """Requests across versions (newest first), limited to models the caller may read."""
    requests = await search(
        services, principal=principal, name=name, open_only=open_only, max_results=max_results
    )
    return TransitionRequestList(
        requests=[
            TransitionRequest.of(request, policy=services.policy, viewer=principal)
            for request in requests
        ]
    )
