"""Who may do what, decided from a policy and plain values.

These are pure functions so the API (before it touches a workflow) and the workflow's Update
validators (inside the deterministic sandbox) reach the same answer from the same inputs. A
refusal is returned as a sentence for the caller, never raised, so each side can wrap it in its
own error type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, Protocol

from policies.schema import (
    PermissionLevel,
    Policy,
    Principal,
    TransitionRule,
    normalize_target,
    required_level,
    target_matches,
)
from policies.tiers import condition_matches

__all__ = [
    "acting_roles",
    "approval_refusal",
    "approver_roles",
    "approvals_needed",
    "break_glass_refusal",
    "cancel_refusal",
    "permission_for",
    "quorum_met",
    "rejection_refusal",
    "request_refusal",
    "required_level",
    "request_rule",
    "rule_for",
]


def permission_for(policy: Policy, roles: Iterable[str], model: str) -> PermissionLevel | None:
    """The highest level any of these roles grants on the model; None when nothing binds them,
    which callers treat as "this model does not exist for you"."""
    best: PermissionLevel | None = None
    for role in roles:
        for pattern, level in policy.roles.get(role, {}).items():
            if fnmatchcase(model, pattern) and (best is None or level.rank > best.rank):
                best = level
    return best


def rule_for(
    policy: Policy, model: str, target: str, tags: Mapping[str, str] | None = None
) -> TransitionRule | None:
    """The first matching rule, so a specific rule placed above a catch-all one wins. `tags`
    are the version's (over its model's) as the request pinned them; a rule with a `when`
    matches only tags that meet it."""
    normalized = normalize_target(target)
    for rule in policy.transitions:
        if (
            target_matches(rule.to, normalized)
            and any(fnmatchcase(model, pattern) for pattern in rule.models)
            and condition_matches(rule.when, tags)
        ):
            return rule
    return None


class PinnedRequest(Protocol):
    """What a request pinned that decides its rule (a `RequestSnapshot` has it)."""

    model: str
    target: str
    tags: Mapping[str, str]
    rollback: Any


def request_rule(policy: Policy, request: PinnedRequest) -> TransitionRule | None:
    """The rule `policy` gives an open request: chosen by the tags it pinned, and the rule's
    rollback rule for a governed rollback."""
    rule = rule_for(policy, request.model, request.target, request.tags)
    if rule is not None and request.rollback is not None:
        return rule.for_rollback()
    return rule


def quorum_met(rule: TransitionRule, approvers: Sequence[str]) -> bool:
    return approvals_needed(rule, approvers) == 0


def approvals_needed(rule: TransitionRule, approvers: Sequence[str]) -> int:
    """Approvals still missing. Distinct subjects are counted so a replayed or retried approval
    can never make up a quorum on its own."""
    return max(0, rule.approvals.quorum - len(set(approvers)))


def _or_list(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _authority_refusal(
    policy: Policy,
    rule: TransitionRule,
    *,
    model: str,
    target: str,
    principal: Principal,
    verb: str,
) -> str | None:
    """The permission and role checks shared by approve and reject.

    When the rule lists roles, the principal must hold one of them, and that listed role itself
    must carry the required level: someone who is an ml-lead (staging only) and also a
    platform-admin acts as an approver only in the capacity the rule names.
    """
    need = required_level(target)
    shown = normalize_target(target)
    level = permission_for(policy, principal.roles, model)
    if level is None or not level.includes(need):
        has = f"has {level.value}" if level else "has no permission"
        return (
            f"{principal.sub} {has} on '{model}'; to {verb} a transition to {shown} "
            f"{need.value} is needed"
        )
    listed = rule.approvals.roles
    if listed:
        acting = [role for role in principal.roles if role in listed]
        if not acting:
            return (
                f"only {_or_list(listed)} may {verb} transitions of '{model}' to {shown}; "
                f"{principal.sub} is not one"
            )
        acting_level = permission_for(policy, acting, model)
        if acting_level is None or not acting_level.includes(need):
            held = acting_level.value if acting_level else "no permission"
            return (
                f"{principal.sub} is {_or_list(acting)}, which has {held} on '{model}'; to "
                f"{verb} a transition to {shown} that role needs {need.value}"
            )
    return None


def approver_roles(policy: Policy, rule: TransitionRule, *, model: str, target: str) -> list[str]:
    """Every role in which someone may approve or reject this move (authority only: not the
    requester rule, not who already approved). The rule's listed roles that themselves carry
    the level the target needs, or, when it lists none, every role of the policy that does.
    A principal passes `_authority_refusal` exactly when they hold one of these."""
    need = required_level(target)
    candidates = rule.approvals.roles or sorted(policy.roles)
    found = []
    for role in candidates:
        level = permission_for(policy, [role], model)
        if level is not None and level.includes(need):
            found.append(role)
    return list(dict.fromkeys(found))


def acting_roles(
    policy: Policy,
    rule: TransitionRule,
    *,
    model: str,
    target: str,
    principal: Principal,
    cancelling: bool = False,
    requester: str | None = None,
) -> list[str]:
    """The roles in which `principal` decides, for the record beside their decision: those of
    theirs that make them an approver of this move; for a cancel, those that give them
    CAN_MANAGE on the model (none when they cancel their own request)."""
    if cancelling:
        if principal.sub == requester:
            return []
        return [
            role
            for role in dict.fromkeys(principal.roles)
            if (level := permission_for(policy, [role], model)) is not None
            and level.includes(PermissionLevel.CAN_MANAGE)
        ]
    eligible = set(approver_roles(policy, rule, model=model, target=target))
    return [role for role in dict.fromkeys(principal.roles) if role in eligible]


def approval_refusal(
    policy: Policy,
    rule: TransitionRule,
    *,
    model: str,
    target: str,
    requester: str,
    approvers: Sequence[str],
    principal: Principal,
) -> str | None:
    """None when the principal may approve now. Reasons are checked from the most fundamental
    (what the principal is) to the most circumstantial (what they already did), so the answer
    names the thing that would have to change first."""
    refusal = _authority_refusal(
        policy, rule, model=model, target=target, principal=principal, verb="approve"
    )
    if refusal is not None:
        return refusal
    if principal.sub == requester and not rule.approvals.self_approval:
        return (
            f"{principal.sub} may not approve their own request; the policy forbids self-approval"
        )
    if principal.sub in approvers:
        return f"{principal.sub} has already approved this request"
    return None


def rejection_refusal(
    policy: Policy,
    rule: TransitionRule,
    *,
    model: str,
    target: str,
    principal: Principal,
) -> str | None:
    """A requester may reject their own request (it only closes it), and one rejection is
    final, so only authority is checked."""
    return _authority_refusal(
        policy, rule, model=model, target=target, principal=principal, verb="reject"
    )


def cancel_refusal(
    policy: Policy, *, model: str, requester: str, principal: Principal
) -> str | None:
    if principal.sub == requester:
        return None
    level = permission_for(policy, principal.roles, model)
    if level is not None and level.includes(PermissionLevel.CAN_MANAGE):
        return None
    has = f"has {level.value}" if level else "has no permission"
    return (
        f"only the requester ({requester}) or someone with CAN_MANAGE on '{model}' may cancel "
        f"this request; {principal.sub} {has} there"
    )


def request_refusal(
    policy: Policy,
    rule: TransitionRule | None,
    *,
    model: str,
    target: str,
    principal: Principal,
) -> str | None:
    """None when the principal may request moving the model to `target` under `rule` (the
    one the policy gives that move; None when no rule covers it): CAN_READ, and a rule."""
    level = permission_for(policy, principal.roles, model)
    if level is None:
        return (
            f"{principal.sub} has no permission on '{model}'; requesting a transition needs "
            f"{PermissionLevel.CAN_READ.value}"
        )
    if rule is None:
        return (
            f"no rule of the policy covers moving '{model}' to {normalize_target(target)}, so "
            "it cannot be requested"
        )
    return None


def break_glass_refusal(
    policy: Policy,
    rule: TransitionRule | None,
    *,
    model: str,
    target: str,
    principal: Principal,
) -> str | None:
    """None when the principal may move the model to `target` directly (break-glass):
    CAN_MANAGE on the model, a stage target, and a rule that sets `break_glass`."""
    level = permission_for(policy, principal.roles, model)
    if level is None or not level.includes(PermissionLevel.CAN_MANAGE):
        has = f"has {level.value}" if level else "has no permission"
        return (
            f"{principal.sub} {has} on '{model}'; break-glass needs "
            f"{PermissionLevel.CAN_MANAGE.value}"
        )
    shown = normalize_target(target)
    if shown.startswith("@"):
        return f"break-glass moves stages only (transition-stage); {shown} is an alias"
    if rule is None:
        return f"no rule of the policy covers moving '{model}' to {shown}"
    if rule.break_glass is None:
        return f"the rule for '{model}' to {rule.to} does not set `break_glass`"
    return None
