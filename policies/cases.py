"""Policy tests: cases a policy must meet, reviewed in the same pull request as the policy.

    - name: a risk officer approves fraud models in Production
      model: fraud-detector
      version_tags: {risk_tier: high}
      target: Production
      principal: {sub: rita, roles: [risk-officer]}
      expect: {rule: 0, may_approve: true, quorum: 2}

`expect.rule` is the index of the rule in `transitions` (from 0), its label
("models fraud-* to Production"), or null for "no rule applies". Every other expectation is
optional: `may_request`, `may_approve`, `may_break_glass`, `quorum`, `approver_roles`.
A case is judged by `policies.explain`, which the API's decisions share.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policies.explain import Explanation, explain, rule_label
from policies.schema import Policy, Principal

__all__ = ["CaseFile", "CaseResult", "CasesError", "load_cases", "run_cases"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expectation(_Strict):
    rule: int | str | None = Field(..., description="Index, label, or null for no rule.")
    may_request: bool | None = None
    may_approve: bool | None = None
    may_break_glass: bool | None = None
    quorum: int | None = None
    approver_roles: list[str] | None = None


class PolicyCase(_Strict):
    name: str | None = None
    model: str = Field(min_length=1)
    version: str | None = None
    version_tags: dict[str, str] = Field(default_factory=dict)
    target: str = Field(min_length=1)
    principal: Principal | None = None
    requester: str | None = None
    expect: Expectation


class CaseFile(_Strict):
    cases: list[PolicyCase] = Field(min_length=1)


class CasesError(ValueError):
    """A cases file that cannot be read; the message says where."""


class Difference(BaseModel):
    what: str
    expected: Any
    got: Any
    why: str | None = None


class CaseResult(BaseModel):
    index: int
    case: PolicyCase
    differences: list[Difference]

    @property
    def passed(self) -> bool:
        return not self.differences

    @property
    def title(self) -> str:
        c = self.case
        who = f" as {c.principal.sub} [{', '.join(c.principal.roles)}]" if c.principal else ""
        name = f' "{c.name}"' if c.name else ""
        return f"case {self.index}{name}: {c.model} → {c.target}{who}"

    def lines(self) -> list[str]:
        """PASS/FAIL and, for a failure, a diff: `- expected`, `+ got`."""
        if self.passed:
            return [f"PASS {self.title}"]
        out = [f"FAIL {self.title}"]
        for diff in self.differences:
            out.append(f"  - {diff.what}: {_shown(diff.expected)}")
            out.append(
                f"  + {diff.what}: {_shown(diff.got)}" + (f"  ({diff.why})" if diff.why else "")
            )
        return out


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def load_cases(text: str, filename: str = "<cases>") -> list[PolicyCase]:
    """Cases from YAML: a list of cases, or a mapping with `cases:`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CasesError(f"{filename}: not valid YAML: {err}") from None
    if isinstance(data, list):
        data = {"cases": data}
    try:
        return CaseFile.model_validate(data).cases
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in err.errors(include_url=False)
        )
        raise CasesError(f"{filename}: {problems}") from None


def _rule_matches(expected: int | str | None, got: Explanation) -> bool:
    if expected is None or isinstance(expected, int):
        return expected == got.rule_index
    return expected.strip() == (got.rule_label or "")


def _rule_shown(policy: Policy, index: int | str | None) -> str | None:
    if isinstance(index, int) and 0 <= index < len(policy.transitions):
        return f"{index} ({rule_label(policy.transitions[index])})"
    return None if index is None else str(index)


def _judge(policy: Policy, case: PolicyCase) -> list[Difference]:
    got = explain(
        policy,
        model=case.model,
        target=case.target,
        version=case.version,
        tags=case.version_tags,
        principal=case.principal,
        requester=case.requester,
    )
    want = case.expect
    diffs: list[Difference] = []
    if not _rule_matches(want.rule, got):
        diffs.append(
            Difference(
                what="rule",
                expected=_rule_shown(policy, want.rule),
                got=_rule_shown(policy, got.rule_index),
                why=got.why,
            )
        )
    verdicts = got.principal
    for key, verdict in (
        ("may_request", verdicts.request if verdicts else None),
        ("may_approve", verdicts.approve if verdicts else None),
        ("may_break_glass", verdicts.break_glass if verdicts else None),
    ):
        expected = getattr(want, key)
        if expected is None:
            continue
        if verdict is None:
            diffs.append(
                Difference(what=key, expected=expected, got=None, why="the case names no principal")
            )
        elif verdict.allowed != expected:
            diffs.append(
                Difference(what=key, expected=expected, got=verdict.allowed, why=verdict.why)
            )
    if want.quorum is not None and want.quorum != got.quorum:
        diffs.append(Difference(what="quorum", expected=want.quorum, got=got.quorum))
    if want.approver_roles is not None and sorted(want.approver_roles) != sorted(
        got.approver_roles
    ):
        diffs.append(
            Difference(what="approver_roles", expected=want.approver_roles, got=got.approver_roles)
        )
    return diffs


def run_cases(policy: Policy, cases: list[PolicyCase]) -> list[CaseResult]:
    """Each case judged against the policy. A case whose target is not a valid target fails
    with that reason rather than stopping the others."""
    results: list[CaseResult] = []
    for index, case in enumerate(cases):
        try:
            diffs = _judge(policy, case)
        except ValueError as err:
            diffs = [Difference(what="target", expected=case.target, got=None, why=str(err))]
        results.append(CaseResult(index=index, case=case, differences=diffs))
    return results
