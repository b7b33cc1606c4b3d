"""Break-glass reviews: `/api/2.0/signoff/break-glass/reviews/` `list`, `get`, `acknowledge`.

Every break-glass move opens one; the roles the policy names (`break_glass: {review: ...}`)
acknowledge it, not the person who broke the glass. Answers: 404 for a review of a model the
caller has no binding for (as for a missing one), 403 when the policy does not let the caller
acknowledge it (with why), 400 once it is acknowledged, 503 if Temporal is unreachable.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.break_glass_reviews import AcknowledgeReview, Review, ReviewList, ReviewResponse
from api.models.common import ModelName
from api.services.break_glass_reviews import (
    ReviewFilter,
    acknowledge,
    list_reviews,
    readable_review,
    why_not,
)

router = APIRouter(
    prefix="/api/2.0/signoff/break-glass/reviews",
    tags=["break-glass reviews"],
    responses=error_responses(400, 401, 403),
)


@router.get("/list")
async def list_break_glass_reviews(
    principal: PrincipalDep,
    services: ServicesDep,
    state: Annotated[ReviewFilter, Query(description="open (default), overdue or all")] = "open",
    name: Annotated[ModelName | None, Query()] = None,
    mine: Annotated[bool, Query(description="Only those waiting for the caller.")] = False,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReviewList:
    """Reviews of models the caller may read, the nearest deadline first."""
    reviews = await list_reviews(
        services, principal=principal, which=state, name=name, mine=mine, limit=max_results
    )
    return ReviewList(
        reviews=[Review.of(r, why_not=why_not(services, r, principal)) for r in reviews]
    )


@router.get("/get", responses=error_responses(404))
async def get_break_glass_review(
    id: Annotated[str, Query(min_length=1, max_length=128, pattern=r"^breakglass-[0-9a-f]+$")],
    principal: PrincipalDep,
    services: ServicesDep,
) -> ReviewResponse:
    review = await readable_review(services, review_id=id, principal=principal)
    return ReviewResponse(review=Review.of(review, why_not=why_not(services, review, principal)))


@router.post("/acknowledge", responses=error_responses(404, 503))
async def acknowledge_break_glass_review(
    body: AcknowledgeReview, principal: PrincipalDep, services: ServicesDep
) -> ReviewResponse:
    """Acknowledge the review as the caller: they have looked at the move and its reason."""
    review = await acknowledge(
        services, review_id=body.id, principal=principal, comment=body.comment
    )
    return ReviewResponse(review=Review.of(review, why_not=why_not(services, review, principal)))
