"""Break-glass reviews: who must acknowledge a direct move after the fact, decided from the
policy and plain values, like `policies.decisions` (the API and the review workflow's Update
validator reach the same answer; a refusal is a sentence, never raised).

    break_glass: {review: {quorum: 1, roles: [model-risk], within: 3d}}

`break_glass: true` asks for the default review: one acknowledgement, within 3 days, from a
role that may approve the rule's own target.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.decisions import approver_roles, permission_for
from policies.schema import BreakGlassReview, Policy, Principal, TransitionRule

__all__ = ["review_refusal", "review_rule", "reviewer_roles"]


def _or_list(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names) or "no role"
    return f"{', '.join(names[:-1])} or {names[-1]}"


def review_rule(
    policy: Policy, rule: TransitionRule, *, model: str, stage: str
) -> BreakGlassReview | None:
    """The review a break-glass move of `model` to `stage` under `rule` opens, with its roles
    resolved (never empty unless no role can approve the target); None where the rule does not
    allow break-glass."""
    if rule.break_glass is None:
        return None
    review = rule.break_glass.review
    roles = review.roles or approver_roles(policy, rule, model=model, target=stage)
    return review.model_copy(update={"roles": list(roles)})


def review_refusal(
    policy: Policy,
    review: BreakGlassReview,
    *,
    model: str,
    mover: str,
    acknowledgers: Sequence[str],
    principal: Principal,
) -> str | None:
    """None when the principal may acknowledge the review now. Checked from what the
    principal is (a reviewer role, a binding on the model) to what they did (broke the glass
    themselves, acknowledged already), like `approval_refusal`."""
    listed = [role for role in principal.roles if role in review.roles]
    if not listed:
        return (
            f"only {_or_list(review.roles)} may review break-glass moves of '{model}'; "
            f"{principal.sub} is not one"
        )
    if permission_for(policy, listed, model) is None:
        return (
            f"{principal.sub} is {_or_list(listed)}, which has no permission on '{model}'; a "
            "reviewer must be able to read the model"
        )
    if principal.sub == mover:
        return (
            f"{principal.sub} may not review their own break-glass move; someone else in "
            f"{_or_list(review.roles)} must"
        )
    if principal.sub in acknowledgers:
        return f"{principal.sub} has already acknowledged this review"
    return None


def reviewer_roles(principal: Principal, review: BreakGlassReview) -> list[str]:
    """The roles in which `principal` acknowledges, for the record."""
    return [role for role in dict.fromkeys(principal.roles) if role in review.roles]
