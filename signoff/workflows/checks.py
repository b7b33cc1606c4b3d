"""How each validation check judges the evidence it gathered. Pure: the activities fetch the
evidence from MLflow, these functions decide, so the verdicts are testable without a server."""

from __future__ import annotations

import math

from signoff.policies import MetricCheck, TagCheck
from signoff.workflows.types import CheckResult, CheckStatus


def evaluate_metric(check: MetricCheck, metrics: dict[str, float]) -> CheckResult:
    evidence: dict[str, object] = {"metric": check.name, "min": check.min, "max": check.max}
    value = metrics.get(check.name)
    if value is None:
        logged = ", ".join(sorted(metrics)) or "none"
        return _result(
            check,
            CheckStatus.FAILED,
            f"metric {check.name!r} is not logged on the run (logged: {logged})",
            evidence,
        )
    evidence["value"] = value
    if math.isnan(value):
        # NaN compares false with every bound, so without this it would pass them all.
        return _result(
            check, CheckStatus.FAILED, f"{check.name} is NaN, which meets no bound", evidence
        )
    if check.min is not None and value < check.min:
        return _result(
            check, CheckStatus.FAILED, f"{check.name} = {value} < min {check.min}", evidence
        )
    if check.max is not None and value > check.max:
        return _result(
            check, CheckStatus.FAILED, f"{check.name} = {value} > max {check.max}", evidence
        )
    bounds = " and ".join(
        part
        for part in (
            f">= {check.min}" if check.min is not None else "",
            f"<= {check.max}" if check.max is not None else "",
        )
        if part
    )
    return _result(check, CheckStatus.PASSED, f"{check.name} = {value} {bounds}", evidence)


def evaluate_tag(check: TagCheck, tags: dict[str, str]) -> CheckResult:
    evidence: dict[str, object] = {"key": check.key, "expected": check.value}
    if check.key not in tags:
        return _result(check, CheckStatus.FAILED, f"tag {check.key!r} is not set", evidence)
    actual = tags[check.key]
    evidence["value"] = actual
    if check.value is not None and actual != check.value:
        summary = f"tag {check.key} = {actual!r}, expected {check.value!r}"
        return _result(check, CheckStatus.FAILED, summary, evidence)
    return _result(check, CheckStatus.PASSED, f"tag {check.key} = {actual!r}", evidence)


def _result(
    check: MetricCheck | TagCheck, status: CheckStatus, summary: str, evidence: dict[str, object]
) -> CheckResult:
    return CheckResult(
        check_id=check.check_id, type=check.type, status=status, summary=summary, evidence=evidence
    )
