"""The record of every inbound webhook message (decisions from chat and ticket tools, MLflow's
own events): `GET /api/2.0/signoff/hooks/inbound`, for registry admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.inbound import inbound_json
from api.models.hooks import InboundMessage, InboundMessageList
from api.services.permissions import require_registry_admin

router = APIRouter(
    prefix="/api/2.0/signoff/hooks",
    tags=["inbound decisions"],
    responses=error_responses(400, 401, 403),
)


@router.get("/inbound")
async def list_inbound(
    principal: PrincipalDep,
    services: ServicesDep,
    source: Annotated[str | None, Query(max_length=64)] = None,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> InboundMessageList:
    """Every inbound message, newest first: only registry admins, since it shows who tried
    to decide what across all models."""
    require_registry_admin(services, principal, "list inbound messages")
    rows = await services.ledger.inbound.recent(source=source, limit=max_results)
    return InboundMessageList(
        messages=[InboundMessage.model_validate(inbound_json(row)) for row in rows]
    )
