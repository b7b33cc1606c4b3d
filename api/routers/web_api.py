"""What the web page reads beyond the plain API, under `/ui/api/`: the inbox, the extras of a
request's page and a model's page. Authenticated like every API route (the page's session
cookie, or a bearer token); answers in MLflow's error shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.common import REQUEST_ID_PATTERN, ModelName, Target
from api.models.web import InboxPage, InboxTab, ModelView, RequestExtras
from api.services.web_views import inbox, model_view, request_extras
from workflows.domain import RequestState

router = APIRouter(prefix="/ui/api", tags=["web page"], responses=error_responses(400, 401, 403))


@router.get("/inbox")
async def get_inbox(
    principal: PrincipalDep,
    services: ServicesDep,
    tab: InboxTab = "waiting",
    model: Annotated[ModelName | None, Query()] = None,
    target: Annotated[Target | None, Query()] = None,
    state: RequestState | None = None,
    page_token: Annotated[str | None, Query(max_length=400)] = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 25,
) -> InboxPage:
    """One page of a tab: *waiting* (for the viewer's approval, oldest first), *mine*,
    *decided*. The next page: `page_token` = the `next_page_token` of this one."""
    return await inbox(
        services,
        principal,
        tab=tab,
        model=model,
        target=target or None,
        state=state.value if state else None,
        page_token=page_token,
        page_size=page_size,
    )


@router.get("/requests/{request_id}", responses=error_responses(404))
async def get_request_extras(
    request_id: Annotated[str, Path(min_length=1, max_length=64, pattern=REQUEST_ID_PATTERN)],
    principal: PrincipalDep,
    services: ServicesDep,
) -> RequestExtras:
    return await request_extras(services, principal, request_id)


@router.get("/models/{name}", responses=error_responses(404))
async def get_model_view(
    name: Annotated[str, Path(min_length=1, max_length=256)],
    principal: PrincipalDep,
    services: ServicesDep,
) -> ModelView:
    return await model_view(services, principal, name)
