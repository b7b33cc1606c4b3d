"""`policy explain`, `policy test` and `policy diff`, on the default policy and on a tiered one
(a high tier for `fraud-*` models above the general rule), as pure functions and as the
`signoff policy` commands (in-process), and the break-glass review rules they show."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from policies import (
    Principal,
    approval_refusal,
    default_policy_path,
    load_policy,
    load_policy_text,
    review_refusal,
    review_rule,
    rule_for,
)
from policies.cases import load_cases, run_cases
from policies.diff import policy_diff
from policies.explain import explain

DEFAULT = load_policy(default_policy_path())
TIERED_TEXT = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  risk-officer: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  model-risk: {"fraud-*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - models: ["fraud-*"]
    to: Production
    checks:
      - {type: metric, name: auc, min: 0.85}
      - {type: compare, metric: auc, mode: beat}
    approvals: {quorum: 3, roles: [model-risk, risk-officer]}
    expires_after: 14d
    break_glass: {review: {quorum: 1, roles: [model-risk], within: 3d}}
  - models: ["*"]
    to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
    break_glass: true
  - models: ["*"]
    to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
"""
TIERED = load_policy_text(TIERED_TEXT)
LEE = Principal(sub="lee", roles=["ml-lead"])
MO = Principal(sub="mo", roles=["model-risk"])
ADA = Principal(sub="ada", roles=["platform-admin", "model-risk"])

CASES = """
cases:
  - name: the high tier needs model risk
    model: fraud-detector
    target: Production
    principal: {sub: mo, roles: [model-risk]}
    expect: {rule: 0, may_approve: true, quorum: 3}
  - name: an ML lead approves the other models
    model: churn
    target: production
    principal: {sub: lee, roles: [ml-lead]}
    expect: {rule: "models * to Production", may_approve: true, quorum: 1, may_break_glass: false}
  - name: nobody governs Archived
    model: churn
    target: Archived
    expect: {rule: null}
"""


def test_explain_names_the_rule_its_reasons_and_what_a_principal_may_do() -> None:
    explained = explain(
        TIERED, model="fraud-detector", target="Production", version="7", principal=LEE
    )
    assert explained.rule_index == 0
    assert "'fraud-detector' matches 'fraud-*'" in explained.why
    assert explained.checks == ["auc ≥ 0.85", "auc beats the current version (higher is better)"]
    assert explained.approver_roles == ["model-risk", "risk-officer"]
    assert (explained.quorum, explained.expires_after) == (3, "14 days")
    assert "1 acknowledgement from model-risk" in explained.break_glass
    verdicts = explained.principal
    assert verdicts is not None and verdicts.request.allowed
    assert not verdicts.approve.allowed
    assert (
        verdicts.approve.why == "only model-risk or risk-officer may approve transitions of "
        "'fraud-detector' to Production; lee is not one"
    )
    assert "break-glass needs CAN_MANAGE" in verdicts.break_glass.why

    other = explain(TIERED, model="churn", target="Production", principal=ADA)
    assert other.rule_index == 1
    assert [c.matched for c in other.considered] == [False, True]
    assert "matches none of its model patterns" in other.considered[0].why
    assert other.principal is not None and other.principal.break_glass.allowed


@pytest.mark.parametrize("policy", [DEFAULT, TIERED], ids=["default", "tiered"])
@pytest.mark.parametrize("model", ["fraud-detector", "churn"])
@pytest.mark.parametrize("target", ["Production", "Staging", "Archived", "None", "@champion"])
@pytest.mark.parametrize("who", [LEE, MO, ADA, Principal(sub="dana", roles=["data-scientist"])])
def test_explain_agrees_with_the_decisions_the_api_and_workflow_make(
    policy, model: str, target: str, who: Principal
) -> None:
    explained = explain(policy, model=model, target=target, principal=who, requester="rae")
    rule = rule_for(policy, model, target)
    assert explained.rule_index == (policy.transitions.index(rule) if rule else None)
    assert explained.principal is not None
    if rule is not None and rule.approvals.quorum:
        refusal = approval_refusal(
            policy, rule, model=model, target=target, requester="rae", approvers=[], principal=who
        )
        assert explained.principal.approve.allowed == (refusal is None)
        assert refusal is None or explained.principal.approve.why == refusal


def test_a_break_glass_review_names_its_reviewers_and_refuses_self_review() -> None:
    high = review_rule(TIERED, TIERED.transitions[0], model="fraud-detector", stage="Production")
    assert high is not None and (high.quorum, high.roles) == (1, ["model-risk"])
    default = review_rule(TIERED, TIERED.transitions[1], model="churn", stage="Production")
    assert default is not None and default.roles == ["ml-lead"]  # the rule's approvers
    assert review_rule(TIERED, TIERED.transitions[2], model="churn", stage="Staging") is None

    def refusal(who: Principal, acknowledged: list[str] = []) -> str | None:  # noqa: B006
        return review_refusal(
            TIERED,
            high,
            model="fraud-detector",
            mover="ada",
            acknowledgers=acknowledged,
            principal=who,
        )

    assert refusal(MO) is None
    assert refusal(ADA) == (
        "ada may not review their own break-glass move; someone else in model-risk must"
    )
    assert (
        refusal(LEE) == "only model-risk may review break-glass moves of 'fraud-detector'; "
        "lee is not one"
    )
    assert refusal(MO, ["mo"]) == "mo has already acknowledged this review"


def test_a_break_glass_review_with_an_unknown_role_is_a_policy_error() -> None:
    with pytest.raises(Exception, match=r"review\.roles\[0\]: 'auditor' is not a role"):
        load_policy_text(
            TIERED_TEXT.replace("roles: [model-risk], within", "roles: [auditor], within")
        )


def test_policy_cases_pass_and_a_failing_case_shows_a_diff() -> None:
    results = run_cases(TIERED, load_cases(CASES))
    assert [r.passed for r in results] == [True, True, True]
    on_default = run_cases(DEFAULT, load_cases(CASES))
    assert [r.passed for r in on_default] == [False, False, False]
    lines = on_default[0].lines()
    assert (
        lines[0] == 'FAIL case 0 "the high tier needs model risk": fraud-detector → '
        "Production as mo [model-risk]"
    )
    assert not any(line.startswith(("  - rule", "  + rule")) for line in lines)  # both rule 0
    assert "  - quorum: 3" in lines and "  + quorum: 2" in lines
    assert any(
        line.startswith("  + may_approve: false  (mo has no permission on 'fraud-detector'")
        for line in lines
    )


def test_policy_diff_lists_the_models_and_targets_whose_requirements_change() -> None:
    lines = [change.line() for change in policy_diff(DEFAULT, TIERED)]
    fraud = next(line for line in lines if line.startswith("fraud-* → Production: "))
    assert (
        "quorum: 2 → 3" in fraud
        and "approvers: ml-lead, risk-officer → model-risk, risk-officer" in fraud
    )
    assert "checks: none → auc ≥ 0.85, auc beats the current version" in fraud
    assert any(line.startswith("* → Production: ") and "quorum: 2 → 1" in line for line in lines)
    assert any(line.startswith("* → Archived: ") and "→ no rule" in line for line in lines)
    assert policy_diff(TIERED, TIERED) == []


# -- the commands ---------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"tiered": tmp_path / "tiered.yaml", "cases": tmp_path / "cases.yaml"}
    paths["tiered"].write_text(TIERED_TEXT, encoding="utf-8")
    paths["cases"].write_text(CASES, encoding="utf-8")
    return paths


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, list(args))


def test_signoff_policy_test_exits_non_zero_on_a_failing_case(files: dict[str, Path]) -> None:
    passing = run("policy", "test", str(files["tiered"]), str(files["cases"]))
    assert passing.exit_code == 0, passing.output
    assert "3 passed, 0 failed" in passing.output
    failing = run("policy", "test", str(default_policy_path()), str(files["cases"]))
    assert failing.exit_code == 1
    assert "FAIL case 0" in failing.output and "  + quorum: 2" in failing.output
    assert "0 passed, 3 failed" in failing.output


def test_signoff_policy_explain_and_diff(files: dict[str, Path]) -> None:
    explained = run(
        "policy",
        "explain",
        "fraud-detector",
        "7",
        "Production",
        "--as",
        "mo",
        "--role",
        "model-risk",
        "--policy",
        str(files["tiered"]),
    )
    assert explained.exit_code == 0, explained.output
    assert "transitions[0] (models fraud-* to Production) is the first rule" in explained.output
    assert "    approve: yes: mo may approve as model-risk" in explained.output
    assert "    break glass: no: mo has CAN_MANAGE_PRODUCTION_VERSIONS" in explained.output
    diff = run("policy", "diff", str(default_policy_path()), str(files["tiered"]))
    assert diff.exit_code == 0, diff.output
    assert "fraud-* → Production: " in diff.output
    same = run("policy", "diff", str(files["tiered"]), str(files["tiered"]))
    assert same.output.strip() == "no model or target changes its requirements"


def test_the_readme_cases_example_passes_on_the_default_policy() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("A cases file, reviewed") :]
    example = section[
        section.index("```yaml\n") + 8 : section.index("```", section.index("```yaml\n") + 8)
    ]
    results = run_cases(DEFAULT, load_cases(example))
    assert [r.passed for r in results] == [True], [r.lines() for r in results]
