"""A transition rule in words, for people deciding on a request (the web page shows it above
the policy's hash): "2 approvals from ml-lead or risk-officer, not the requester; expires in 7
days; checks: auc ≥ 0.80, tag validated_by"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from policies.schema import (
    BaseCheck,
    BreakGlassReview,
    CompareCheck,
    GithubActionsCheck,
    HttpCheck,
    JenkinsCheck,
    MetricCheck,
    SignatureCheck,
    TagCheck,
    TransitionRule,
)

__all__ = [
    "describe_check",
    "describe_duration",
    "describe_review",
    "describe_rule",
    "describe_rule_parts",
]


def _number(value: float) -> str:
    """0.8 → 0.80, 3 → 3, 0.875 → 0.875: at least two decimals for fractions."""
    if float(value).is_integer():
        return str(int(value))
    text = f"{value:.2f}"
    return text if float(text) == value else f"{value:g}"


def _or_list(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def describe_duration(value: timedelta) -> str:
    """7 days, 1 day 12 hours, 30 minutes, 45 seconds."""
    seconds = int(value.total_seconds())
    parts: list[str] = []
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}{'' if amount == 1 else 's'}")
    return " ".join(parts[:2]) or "0 seconds"


def describe_check(check: BaseCheck) -> str:
    if isinstance(check, MetricCheck):
        if check.min is not None and check.max is not None:
            return f"{_number(check.min)} ≤ {check.name} ≤ {_number(check.max)}"
        if check.min is not None:
            return f"{check.name} ≥ {_number(check.min)}"
        return f"{check.name} ≤ {_number(check.max)}"  # type: ignore[arg-type]
    if isinstance(check, TagCheck):
        return f"tag {check.key}" if check.value is None else f"tag {check.key} = {check.value}"
    if isinstance(check, SignatureCheck):
        return "a model signature" + (" with outputs" if check.require_outputs else "")
    if isinstance(check, CompareCheck):
        better = "higher" if check.higher_is_better else "lower"
        if check.mode == "beat":
            return f"{check.metric} beats the current version ({better} is better)"
        slack = f" by more than {_number(check.tolerance)}" if check.tolerance else ""
        return f"{check.metric} no worse than the current version{slack} ({better} is better)"
    if isinstance(check, HttpCheck):
        return f"HTTP check {check.name or check.url}"
    if isinstance(check, GithubActionsCheck):
        return f"GitHub Actions {check.repo}/{check.workflow} on {check.ref}"
    if isinstance(check, JenkinsCheck):
        return f"Jenkins job {check.job}"
    return check.check_id


def describe_rule_parts(rule: TransitionRule) -> list[str]:
    """The rule's clauses: who approves, when it expires, what is checked, what moves."""
    approvals = rule.approvals
    if approvals.quorum == 0:
        who = "no approval needed"
    else:
        noun = "approval" if approvals.quorum == 1 else "approvals"
        roles = f" from {_or_list(approvals.roles)}" if approvals.roles else ""
        self_part = "" if approvals.self_approval else ", not the requester"
        who = f"{approvals.quorum} {noun}{roles}{self_part}"
    parts = [who, f"expires in {describe_duration(rule.expires_after)}"]
    if rule.checks:
        parts.append("checks: " + ", ".join(describe_check(check) for check in rule.checks))
    else:
        parts.append("no checks")
    if rule.archive_existing_versions:
        parts.append(f"the version now in {rule.to} is archived")
    return parts


def describe_rule(rule: TransitionRule) -> str:
    return "; ".join(describe_rule_parts(rule))


def describe_review(review: BreakGlassReview) -> str:
    """ "1 acknowledgement from model-risk, not the person who broke the glass, within 3 days"."""
    noun = "acknowledgement" if review.quorum == 1 else "acknowledgements"
    roles = f" from {_or_list(review.roles)}" if review.roles else ""
    return (
        f"{review.quorum} {noun}{roles}, not the person who broke the glass, within "
        f"{describe_duration(review.within)}"
    )
