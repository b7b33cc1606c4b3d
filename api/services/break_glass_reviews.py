"""Break-glass reviews: opened for every break-glass move (`api.services.break_glass`),
listed (open, overdue, waiting for the caller), acknowledged by the roles the policy names.

Who may acknowledge is `policies.review_refusal`, the same function the review workflow's
validator runs on the policy pinned with the review; lists use it with the running policy to
say which reviews wait for the caller.
"""

from __future__ import annotations

import logging
from typing import Literal

from api.deps import Services
from api.services.errors import Invalid, NotFound, Refused
from api.services.permissions import has_binding
from policies import BreakGlassReview as ReviewRule
from policies import Principal, TransitionRule, review_refusal, review_rule
from workflows.client import DecisionRefused, NoOpenRequest
from workflows.domain import AuditEntry, BreakGlassReview
from workflows.messages import Decision, ReviewInput
from workflows.reviews import review_workflow_id
from workflows.reviews.client import Reviews

log = logging.getLogger(__name__)

ReviewFilter = Literal["open", "overdue", "all"]


async def _reviews(services: Services) -> Reviews:
    transitions = await services.transitions()
    return Reviews(transitions.client, services.settings.task_queue)


async def open_review(
    services: Services, rule: TransitionRule, entry: AuditEntry
) -> BreakGlassReview | None:
    """Open the review of the break-glass move `entry` recorded: in the ledger at once (so it
    is listed), then its workflow (which keeps the deadline). The move is made already, so a
    failure here is logged, never raised: the ledger row stays OPEN for people to see."""
    assert entry.from_stage is not None and entry.to_stage is not None
    review = review_rule(services.policy, rule, model=entry.model, stage=entry.to_stage)
    if review is None:
        return None
    inp = ReviewInput(
        review_id=entry.id,
        model=entry.model,
        version=entry.version,
        from_stage=entry.from_stage,
        to_stage=entry.to_stage,
        mover=entry.user_id,
        comment=entry.comment,
        review=review,
        policy=services.policy,
        policy_hash=services.policy_hash,
        opened_ms=entry.creation_timestamp,
    )
    opened = inp.opening_review(review_workflow_id(entry.id))
    try:
        await services.ledger.reviews.record(opened)
        return await (await _reviews(services)).start(inp)
    except Exception:
        log.exception("could not open the review of break-glass move %s", entry.id)
        return opened


def why_not(services: Services, review: BreakGlassReview, principal: Principal) -> str | None:
    """Why the principal may not acknowledge the review now (None: they may)."""
    if not review.state.is_open:
        return "the review is acknowledged"
    return review_refusal(
        services.policy,
        review_rule_of(review),
        model=review.model,
        mover=review.mover,
        acknowledgers=[a.user_id for a in review.acknowledgements],
        principal=principal,
    )


def review_rule_of(review: BreakGlassReview) -> ReviewRule:
    """The review rule as the review pinned it (roles resolved, quorum)."""
    return ReviewRule(quorum=review.quorum, roles=review.roles)


async def readable_review(
    services: Services, *, review_id: str, principal: Principal
) -> BreakGlassReview:
    review = await services.ledger.reviews.get(review_id)
    if review is None or not has_binding(services, principal, review.model):
        raise NotFound(f"no break-glass review with id {review_id!r}")
    return review


async def list_reviews(
    services: Services,
    *,
    principal: Principal,
    which: ReviewFilter,
    name: str | None,
    mine: bool,
    limit: int,
) -> list[BreakGlassReview]:
    """Reviews of models the principal may read, most pressing first; `mine`: only those
    they may acknowledge now."""
    reviews = await services.ledger.reviews.search(
        open_only=which == "open" or mine,
        overdue_only=which == "overdue",
        model=name,
        limit=limit,
    )
    readable = [r for r in reviews if has_binding(services, principal, r.model)]
    if mine:
        return [r for r in readable if why_not(services, r, principal) is None]
    return readable


async def acknowledge(
    services: Services, *, review_id: str, principal: Principal, comment: str | None
) -> BreakGlassReview:
    review = await readable_review(services, review_id=review_id, principal=principal)
    if not review.state.is_open:
        raise Invalid(f"the review of {review_id} is already acknowledged")
    try:
        after = await (await _reviews(services)).acknowledge(
            review, Decision(principal=principal, comment=comment)
        )
    except NoOpenRequest as err:
        raise Invalid(f"the review of {review_id} has no running workflow; it is closed") from err
    except DecisionRefused as err:
        if err.not_open:
            raise Invalid(err.reason) from err
        raise Refused(err.reason) from err
    return after
