"""What a policy means for one move, in words: which rule applies and why, what it asks for,
and what a given principal may do there. `signoff policy explain` and
`GET /api/2.0/signoff/policy/explain` show it; `signoff policy test` checks it against cases.

Every verdict comes from the pure decisions the API and the workflow's validators use
(`policies.decisions`), so an explanation never disagrees with what Signoff then does.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from pydantic import BaseModel, Field

from policies.decisions import (
    approval_refusal,
    approver_roles,
    break_glass_refusal,
    permission_for,
    request_refusal,
)
from policies.reviews import review_rule
from policies.schema import (
    PermissionLevel,
    Policy,
    Principal,
    TransitionRule,
    normalize_target,
    target_matches,
)
from policies.tiers import condition_matches
from policies.wording import describe_check, describe_duration, describe_review, describe_rule

__all__ = [
    "Explanation",
    "PrincipalVerdicts",
    "RuleConsidered",
    "Verdict",
    "explain",
    "explanation_lines",
    "rule_label",
]


class RuleConsidered(BaseModel):
    """One rule looked at, in order, until one matched."""

    index: int
    label: str
    matched: bool
    why: str


class Verdict(BaseModel):
    allowed: bool
    why: str


class PrincipalVerdicts(BaseModel):
    """What one principal may do with the move, each with its reason."""

    sub: str
    roles: list[str]
    permission: PermissionLevel | None
    request: Verdict
    approve: Verdict
    break_glass: Verdict


class Explanation(BaseModel):
    model: str
    version: str | None = None
    target: str
    tags: dict[str, str] = Field(default_factory=dict)
    rule_index: int | None = Field(None, description="Position in `transitions` (from 0).")
    rule_label: str | None = None
    why: str
    considered: list[RuleConsidered]
    words: str | None = Field(None, description="The rule in words, as the web page shows it.")
    checks: list[str] = Field(default_factory=list)
    approver_roles: list[str] = Field(default_factory=list)
    quorum: int | None = None
    self_approval: bool | None = None
    expires_after: str | None = None
    window: str | None = None
    break_glass: str
    principal: PrincipalVerdicts | None = None


def rule_label(rule: TransitionRule) -> str:
    """ "models fraud-*, credit-* to Production"."""
    return f"models {', '.join(rule.models)} to {rule.to}"


def _condition(rule: TransitionRule, tags: Mapping[str, str]) -> tuple[bool, str | None]:
    """Whether the rule's tag condition (a risk tier, `when: {tags: ...}`) holds, and which
    tags met it."""
    if rule.when is None:
        return True, None
    if not condition_matches(rule.when, tags):
        return False, None
    return True, ", ".join(f"{k}={v}" for k, v in rule.when.matched(tags).items())


def _considered(
    policy: Policy, model: str, target: str, tags: Mapping[str, str]
) -> tuple[int | None, list[RuleConsidered]]:
    """The rules in order up to the first that matches, each with why it did or did not."""
    seen: list[RuleConsidered] = []
    for index, rule in enumerate(policy.transitions):
        label = rule_label(rule)
        if not target_matches(rule.to, target):
            seen.append(
                RuleConsidered(
                    index=index,
                    label=label,
                    matched=False,
                    why=f"its target {rule.to} is not {target}",
                )
            )
            continue
        pattern = next((p for p in rule.models if fnmatchcase(model, p)), None)
        if pattern is None:
            why = f"'{model}' matches none of its model patterns"
            seen.append(RuleConsidered(index=index, label=label, matched=False, why=why))
            continue
        holds, tagged = _condition(rule, tags)
        if not holds:
            why = "the version's tags do not meet its condition"
            seen.append(RuleConsidered(index=index, label=label, matched=False, why=why))
            continue
        why = f"'{model}' matches '{pattern}' and the target is {target}" + (
            f"; tags {tagged}" if tagged else ""
        )
        seen.append(RuleConsidered(index=index, label=label, matched=True, why=why))
        return index, seen
    return None, seen


def _verdict(refusal: str | None, yes: str) -> Verdict:
    return Verdict(allowed=False, why=refusal) if refusal else Verdict(allowed=True, why=yes)


def _approve_verdict(
    policy: Policy,
    rule: TransitionRule | None,
    *,
    model: str,
    target: str,
    principal: Principal,
    requester: str | None,
) -> Verdict:
    if rule is None:
        return Verdict(allowed=False, why=f"no rule covers moving '{model}' to {target}")
    if rule.approvals.quorum == 0:
        return Verdict(allowed=False, why="the rule needs no approval: it applies on request")
    refusal = approval_refusal(
        policy,
        rule,
        model=model,
        target=target,
        requester=requester or "",
        approvers=[],
        principal=principal,
    )
    roles = [
        r for r in principal.roles if r in approver_roles(policy, rule, model=model, target=target)
    ]
    yes = f"{principal.sub} may approve as {', '.join(roles)}"
    if requester is None and not rule.approvals.self_approval:
        yes += ", but not a request of their own (the rule forbids self-approval)"
    return _verdict(refusal, yes)


def _principal_verdicts(
    policy: Policy,
    rule: TransitionRule | None,
    *,
    model: str,
    target: str,
    principal: Principal,
    requester: str | None,
) -> PrincipalVerdicts:
    level = permission_for(policy, principal.roles, model)
    request = request_refusal(policy, rule, model=model, target=target, principal=principal)
    glass = break_glass_refusal(policy, rule, model=model, target=target, principal=principal)
    return PrincipalVerdicts(
        sub=principal.sub,
        roles=list(principal.roles),
        permission=level,
        request=_verdict(
            request, f"{principal.sub} may request it (holds {level.value if level else ''})"
        ),
        approve=_approve_verdict(
            policy, rule, model=model, target=target, principal=principal, requester=requester
        ),
        break_glass=_verdict(
            glass, f"{principal.sub} may move it directly (CAN_MANAGE); the move is reviewed"
        ),
    )


def _break_glass_words(policy: Policy, rule: TransitionRule, model: str, target: str) -> str:
    review = review_rule(policy, rule, model=model, stage=target)
    if review is None:
        return "not allowed: the rule does not set `break_glass`"
    if target.startswith("@"):
        return "not possible for an alias: break-glass moves stages only"
    return (
        f"allowed to CAN_MANAGE with a comment; reviewed after the fact: {describe_review(review)}"
    )


def explain(
    policy: Policy,
    *,
    model: str,
    target: str,
    version: str | None = None,
    tags: Mapping[str, str] | None = None,
    principal: Principal | None = None,
    requester: str | None = None,
) -> Explanation:
    """What the policy says about moving `model` (version `version`, with `tags`) to `target`
    (normalized), and, given a principal, what they may do; `requester` names who asked, when
    it matters for self-approval."""
    tags = dict(tags or {})
    target = normalize_target(target)
    index, considered = _considered(policy, model, target, tags)
    rule = policy.transitions[index] if index is not None else None
    verdicts = (
        _principal_verdicts(
            policy, rule, model=model, target=target, principal=principal, requester=requester
        )
        if principal is not None
        else None
    )
    base = Explanation(
        model=model,
        version=version,
        target=target,
        tags=tags,
        considered=considered,
        principal=verdicts,
        why="",
        break_glass="not allowed: no rule covers this move",
    )
    if rule is None or index is None:
        base.why = (
            f"no rule covers moving '{model}' to {target}: Signoff refuses requests for it and "
            "nobody may approve it"
        )
        return base
    return base.model_copy(
        update={
            "rule_index": index,
            "rule_label": rule_label(rule),
            "why": f"transitions[{index}] ({rule_label(rule)}) is the first rule that matches: "
            + considered[-1].why,
            "words": describe_rule(rule),
            "checks": [describe_check(check) for check in rule.checks],
            "approver_roles": approver_roles(policy, rule, model=model, target=target),
            "quorum": rule.approvals.quorum,
            "self_approval": rule.approvals.self_approval,
            "expires_after": describe_duration(rule.expires_after),
            "window": "applied as soon as approved (the rule has no change window)",
            "break_glass": _break_glass_words(policy, rule, model, target),
        }
    )


def explanation_lines(explanation: Explanation) -> list[str]:
    """The explanation as the CLI prints it."""
    e = explanation
    version = f" v{e.version}" if e.version else ""
    lines = [f"{e.model}{version} → {e.target}", f"  rule: {e.why}"]
    lines += [
        f"    transitions[{c.index}] ({c.label}): {'matches' if c.matched else 'no'}: {c.why}"
        for c in e.considered
    ]
    if e.rule_index is not None:
        lines += [
            f"  in words: {e.words}",
            f"  checks: {', '.join(e.checks) or 'none'}",
            f"  who may approve: {', '.join(e.approver_roles) or 'nobody'}",
            f"  quorum: {e.quorum}; self-approval: {'allowed' if e.self_approval else 'no'}",
            f"  expires after: {e.expires_after}",
            f"  window: {e.window}",
        ]
    lines.append(f"  break-glass: {e.break_glass}")
    if e.principal is not None:
        p = e.principal
        level = p.permission.value if p.permission else "no permission"
        lines.append(f"  {p.sub} ({', '.join(p.roles) or 'no roles'}; {level}):")
        for what, verdict in (
            ("request", p.request),
            ("approve", p.approve),
            ("break glass", p.break_glass),
        ):
            lines.append(f"    {what}: {'yes' if verdict.allowed else 'no'}: {verdict.why}")
    return lines
