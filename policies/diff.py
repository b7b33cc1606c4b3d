"""`signoff policy diff OLD NEW`: which models and targets change requirements.

Model names are open-ended, so the diff probes each model pattern either policy names (in its
rules and its role bindings, plus `*`), each target either names (every stage, and each alias
or alias pattern), and compares what a request there needs under each policy: the rule's
checks, quorum, approver roles (resolved through the role bindings), self-approval, expiry,
archiving and break-glass. A pattern stands for the models it matches; the probe uses the
pattern itself as the name (`fnmatch("fraud-*", "fraud-*")` holds), so `fraud-*` under a
`*` rule is probed as one of them.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from policies.decisions import approver_roles
from policies.explain import explain
from policies.reviews import review_rule
from policies.schema import STAGES, Policy, is_alias
from policies.wording import describe_check, describe_duration, describe_review

__all__ = ["Change", "policy_diff"]


class Change(BaseModel):
    models: str
    target: str
    changes: list[str]
    """Each as "quorum: 1 → 2"."""

    def line(self) -> str:
        return f"{self.models} → {self.target}: " + "; ".join(self.changes)


def _requirements(policy: Policy, model: str, target: str) -> dict[str, str]:
    explained = explain(policy, model=model, target=target)
    if explained.rule_index is None:
        return {"rule": "no rule (requests refused)"}
    rule = policy.transitions[explained.rule_index]
    review = review_rule(policy, rule, model=model, stage=target)
    roles = approver_roles(policy, rule, model=model, target=target)
    return {
        "rule": "a rule",
        "checks": ", ".join(describe_check(c) for c in rule.checks) or "none",
        "quorum": str(rule.approvals.quorum),
        "approvers": ", ".join(roles) or "nobody",
        "self-approval": "allowed" if rule.approvals.self_approval else "no",
        "expiry": describe_duration(rule.expires_after),
        "archives others": "yes" if rule.archive_existing_versions else "no",
        "break-glass": describe_review(review) if review else "not allowed",
    }


_WILDCARD = re.compile(r"\[[^\]]*\]|[*?]")


def _alias_probe(pattern: str) -> str:
    """A valid alias a target pattern covers: `@*` → `@any`, `@champion-*` → `@champion-x`."""
    name = _WILDCARD.sub("x", pattern[1:])
    return "@any" if name in ("x", "") else f"@{name}"


def _probes(old: Policy, new: Policy) -> tuple[list[str], list[tuple[str, str]]]:
    models: dict[str, None] = {"*": None}
    targets: dict[str, str] = {stage: stage for stage in STAGES}
    for policy in (old, new):
        for rule in policy.transitions:
            models.update(dict.fromkeys(rule.models))
            if is_alias(rule.to):
                shown = rule.to
                targets[shown] = _alias_probe(shown) if _WILDCARD.search(shown) else shown
        for bindings in policy.roles.values():
            models.update(dict.fromkeys(bindings))
    return list(models), list(targets.items())


def policy_diff(old: Policy, new: Policy) -> list[Change]:
    """Every probed (models, target) whose requirements differ, with what changes."""
    models, targets = _probes(old, new)
    changes: list[Change] = []
    for shown_target, target in targets:
        for model in models:
            before = _requirements(old, model, target)
            after = _requirements(new, model, target)
            if before == after:
                continue
            if "checks" not in before or "checks" not in after:
                what = [f"{_words(before)} → {_words(after)}"]
            else:
                what = [
                    f"{key}: {before[key]} → {after[key]}"
                    for key in before
                    if before[key] != after[key]
                ]
            changes.append(Change(models=model, target=shown_target, changes=what))
    return changes


def _words(requirements: dict[str, str]) -> str:
    if "checks" not in requirements:
        return requirements["rule"]
    return (
        f"{requirements['quorum']} approval(s) from {requirements['approvers']}, checks "
        f"{requirements['checks']}"
    )
