"""The running policy explained for one move: `GET /api/2.0/signoff/policy/explain`
(`signoff policy explain --api`). Needs CAN_READ on the model; the version must exist (its
tags are what a risk tier would read; `tag=KEY=VALUE` overrides one). Without `as`, the
explanation is for the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.common import MAX_NAME, ModelName, Target, Version
from api.models.policy import PolicyExplainResponse
from api.services.errors import Invalid
from api.services.mlflow import existing_version
from api.services.permissions import require_permission
from policies import PermissionLevel, Principal
from policies.explain import explain

router = APIRouter(
    prefix="/api/2.0/signoff/policy",
    tags=["policy"],
    responses=error_responses(400, 401, 403, 404, 502, 503),
)

MAX_TAGS = 50


def _tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Invalid(f"tag {pair!r}: write KEY=VALUE")
        tags[key] = value
    return tags


@router.get("/explain")
async def explain_policy(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    target: Annotated[Target, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
    as_sub: Annotated[
        str | None, Query(alias="as", min_length=1, max_length=MAX_NAME, description="Subject.")
    ] = None,
    role: Annotated[list[str], Query(max_length=MAX_TAGS, description="Roles of `as`.")] = [],  # noqa: B006
    tag: Annotated[
        list[str], Query(max_length=MAX_TAGS, description="KEY=VALUE, over the version's tags.")
    ] = [],  # noqa: B006
) -> PolicyExplainResponse:
    """Which rule applies to moving the version to `target` and why, its checks, who may
    approve, the quorum, the expiry, and whether the principal could request, approve or
    break glass, and if not, why."""
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    if role and as_sub is None:
        raise Invalid("`role` describes the principal named by `as`; send `as` too")
    current = await existing_version(services, name, version)
    subject = Principal(sub=as_sub, roles=role) if as_sub is not None else principal
    explanation = explain(
        services.policy,
        model=name,
        target=target,
        version=version,
        tags={**current.tags, **_tags(tag)},
        principal=subject,
    )
    return PolicyExplainResponse(explanation=explanation, policy_hash=services.policy_hash)
