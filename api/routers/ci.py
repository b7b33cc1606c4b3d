"""CI jobs report the outcome of their validation check: `POST /api/2.0/signoff/ci/callback`.

Two ways to authenticate, either suffices:
- `callback_token`: the single-use token Signoff derived for this check and passed to the job
  (GitHub: the `callback_token` workflow input). No bearer token needed. It is derived again
  here from the request and check ids with `SIGNOFF_CALLBACK_KEY` and compared in constant
  time (`workflows.ci.callback`); only its SHA-256 is sent on to the workflow, which accepts
  it once.
- `Authorization: Bearer <JWT>`: for example the job's own OIDC token. The caller must hold at
  least CAN_READ on the model and one of the check's `callback_roles` (the workflow decides).

A bearer token that is sent must be valid, even alongside a callback token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.deps import ServicesDep, TransitionsDep, bearer_principal
from api.errors import ApiError, bad_request, error_responses, forbidden, not_found
from api.models.ci import CiCallbackResponse
from api.models.transition_requests import Check
from api.services.permissions import has_binding, require_permission
from policies import PermissionLevel
from workflows.ci.callback import CALLBACK_PATH, token_matches
from workflows.client import CallbackRefused, NoOpenRequest
from workflows.messages import MAX_CALLBACK_SUMMARY, CiCallback, callback_token_digest

router = APIRouter(tags=["ci"])

_bearer = HTTPBearer(auto_error=False)


class CiCallbackBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")
    check: str = Field(
        min_length=1, max_length=512, description="The check's name, e.g. github_actions:o/r/f"
    )
    passed: StrictBool
    details_url: str | None = Field(None, max_length=2048, pattern=r"^https?://\S+$")
    summary: str | None = Field(None, max_length=MAX_CALLBACK_SUMMARY)
    callback_token: str | None = Field(None, min_length=1, max_length=512, repr=False)


@router.post(
    CALLBACK_PATH,
    responses=error_responses(400, 401, 403, 404, 503),
    # The bearer token is optional: `{}` is the alternative, a callback_token in the body.
    openapi_extra={"security": [{}]},
)
async def ci_callback(
    body: CiCallbackBody,
    services: ServicesDep,
    transitions: TransitionsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CiCallbackResponse:
    principal = await bearer_principal(services, credentials.credentials) if credentials else None
    if principal is None and body.callback_token is None:
        raise ApiError(
            401,
            "a CI callback needs the check's callback_token in the body or "
            "'Authorization: Bearer <JWT>'",
        )
    request = await services.ledger.requests.get(body.request_id)
    if request is None or not has_binding(services, principal, request.model):
        raise not_found(f"no transition request with id {body.request_id!r}")
    if principal is not None:
        require_permission(services, principal, request.model, PermissionLevel.CAN_READ)
    if not request.state.is_open:
        raise bad_request(
            f"request {request.id} is no longer open (it is {request.state.value}); "
            "its checks take no more results"
        )
    if body.callback_token is not None and body.check in {c.check_id for c in request.checks}:
        # (A check the request does not have: the workflow says so.)
        key = services.settings.callback_key
        if key is None or not token_matches(
            key, body.callback_token, request_id=request.id, check_id=body.check
        ):
            raise forbidden(
                f"the callback token is not the one issued for {body.check} of this request"
            )
    callback = CiCallback(
        check_id=body.check,
        passed=body.passed,
        details_url=body.details_url,
        summary=body.summary or "",
        callback_token_sha256=(
            callback_token_digest(body.callback_token) if body.callback_token else None
        ),
        principal=principal,
    )
    try:
        result = await transitions.ci_callback(request.workflow_id, request.run_id, callback)
    except NoOpenRequest as err:  # the run ended after the ledger last heard from it
        raise bad_request(
            f"request {request.id} is no longer open; its checks take no more results"
        ) from err
    except CallbackRefused as err:
        if err.kind == "refused":
            raise forbidden(err.reason) from err
        raise bad_request(f"request {request.id}: {err.reason}") from err
    return CiCallbackResponse(request_id=request.id, check=Check.of(result))
