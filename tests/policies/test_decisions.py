"""The pure decision functions the API and the workflow validators share."""

from __future__ import annotations

import pytest

from policies import (
    PermissionLevel,
    Policy,
    Principal,
    TransitionRule,
    acting_roles,
    approval_refusal,
    approvals_needed,
    approver_roles,
    cancel_refusal,
    default_policy_path,
    load_policy,
    load_policy_text,
    permission_for,
    quorum_met,
    rejection_refusal,
    required_level,
    rule_for,
)

P = PermissionLevel

POLICY = load_policy_text(
    """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_STAGING_VERSIONS}
  risk-officer: {"fraud-*": CAN_MANAGE_PRODUCTION_VERSIONS, "*": CAN_READ}
  platform-admin: {"*": CAN_MANAGE}
  auditor: {"credit-?": CAN_READ}
transitions:
  - models: ["fraud-*"]
    to: Production
    approvals: {quorum: 2, roles: [ml-lead, risk-officer]}
  - to: Production
    approvals: {quorum: 1, roles: [risk-officer, platform-admin], self_approval: true}
  - to: "@champion"
    approvals: {quorum: 1, roles: [platform-admin]}
  - to: "@*"
    approvals: {quorum: 1}
  - to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
  - models: ["sandbox-*"]
    to: Archived
    approvals: {quorum: 0}
""",
    "decisions.yaml",
)


def who(sub: str, *roles: str) -> Principal:
    return Principal(sub=sub, roles=list(roles))


# --- permission_for -------------------------------------------------------------------------


def test_permission_follows_fnmatch_patterns() -> None:
    assert (
        permission_for(POLICY, ["risk-officer"], "fraud-detector")
        == P.CAN_MANAGE_PRODUCTION_VERSIONS
    )
    assert permission_for(POLICY, ["risk-officer"], "churn") == P.CAN_READ
    assert permission_for(POLICY, ["auditor"], "credit-1") == P.CAN_READ
    assert permission_for(POLICY, ["auditor"], "credit-12") is None


def test_permission_is_case_sensitive() -> None:
    assert permission_for(POLICY, ["risk-officer"], "Fraud-detector") == P.CAN_READ


def test_permission_takes_the_highest_level_across_roles() -> None:
    assert permission_for(POLICY, ["data-scientist", "ml-lead"], "churn") == (
        P.CAN_MANAGE_STAGING_VERSIONS
    )
    assert permission_for(POLICY, ["ml-lead", "risk-officer"], "fraud-x") == (
        P.CAN_MANAGE_PRODUCTION_VERSIONS
    )
    assert permission_for(POLICY, ["platform-admin", "data-scientist"], "x") == P.CAN_MANAGE


def test_no_binding_means_none() -> None:
    assert permission_for(POLICY, [], "churn") is None
    assert permission_for(POLICY, ["unknown-role"], "churn") is None
    assert permission_for(POLICY, ["auditor"], "churn") is None


# --- required_level and rule_for ------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "level"),
    [
        ("None", P.CAN_MANAGE_STAGING_VERSIONS),
        ("Staging", P.CAN_MANAGE_STAGING_VERSIONS),
        ("archived", P.CAN_MANAGE_STAGING_VERSIONS),
        ("Production", P.CAN_MANAGE_PRODUCTION_VERSIONS),
        ("production", P.CAN_MANAGE_PRODUCTION_VERSIONS),
        ("@champion", P.CAN_MANAGE_PRODUCTION_VERSIONS),
        ("@*", P.CAN_MANAGE_PRODUCTION_VERSIONS),
    ],
)
def test_required_level(target: str, level: PermissionLevel) -> None:
    assert required_level(target) == level


def test_required_level_refuses_unknown_targets() -> None:
    with pytest.raises(ValueError, match="is not a stage"):
        required_level("Prod")


def test_first_matching_rule_wins() -> None:
    fraud = rule_for(POLICY, "fraud-detector", "Production")
    general = rule_for(POLICY, "churn", "production")
    assert fraud is POLICY.transitions[0]
    assert general is POLICY.transitions[1]


def test_alias_rules_match_exactly_then_by_pattern() -> None:
    assert rule_for(POLICY, "churn", "@champion") is POLICY.transitions[2]
    assert rule_for(POLICY, "churn", "@challenger") is POLICY.transitions[3]
    assert rule_for(POLICY, "churn", "@Champion") is POLICY.transitions[3]  # aliases keep case


def test_stage_and_alias_rules_do_not_cross() -> None:
    only_alias = Policy(roles={}, transitions=[TransitionRule(to="@*", approvals={"quorum": 0})])
    assert rule_for(only_alias, "m", "Production") is None
    only_stage = Policy(
        roles={}, transitions=[TransitionRule(to="Staging", approvals={"quorum": 0})]
    )
    assert rule_for(only_stage, "m", "@staging") is None
    assert rule_for(only_stage, "m", "STAGING") is only_stage.transitions[0]


def test_no_rule_for_unmatched_model_or_target() -> None:
    assert rule_for(POLICY, "churn", "Archived") is None
    assert rule_for(POLICY, "sandbox-1", "Archived") is POLICY.transitions[5]
    assert rule_for(POLICY, "churn", "None") is None


def test_rule_for_refuses_invalid_targets() -> None:
    with pytest.raises(ValueError, match="reserved by MLflow"):
        rule_for(POLICY, "churn", "@latest")


def test_default_policy_has_a_rule_for_every_target() -> None:
    policy = load_policy(default_policy_path())
    for target in ("None", "Staging", "Production", "Archived", "@champion", "@shadow-2"):
        rule = rule_for(policy, "any-model", target)
        assert rule is not None
        assert rule.to == (target if target[0] != "@" else "@*")


# --- approvals ------------------------------------------------------------------------------

FRAUD_PROD = POLICY.transitions[0]


def refusal(principal: Principal, **kwargs: object) -> str | None:
    args: dict[str, object] = {
        "model": "fraud-detector",
        "target": "Production",
        "requester": "dana",
        "approvers": [],
        "principal": principal,
    }
    args.update(kwargs)
    rule = args.pop("rule", FRAUD_PROD)
    return approval_refusal(POLICY, rule, **args)  # type: ignore[arg-type]


def test_a_qualified_approver_may_approve() -> None:
    assert refusal(who("rita", "risk-officer")) is None
    assert refusal(who("rita", "risk-officer"), approvers=["other"]) is None


def test_permission_below_the_required_level_is_refused_first() -> None:
    # Wrong role, self-approval and a repeat would all apply too: permission is named first.
    message = refusal(who("dana", "data-scientist"), requester="dana", approvers=["dana"])
    assert message == (
        "dana has CAN_EDIT on 'fraud-detector'; to approve a transition to Production "
        "CAN_MANAGE_PRODUCTION_VERSIONS is needed"
    )


def test_no_binding_is_refused_as_no_permission() -> None:
    assert refusal(who("zed", "auditor")) == (
        "zed has no permission on 'fraud-detector'; to approve a transition to Production "
        "CAN_MANAGE_PRODUCTION_VERSIONS is needed"
    )


def test_role_not_listed_is_refused_second() -> None:
    # platform-admin has enough permission but is not among the rule's roles.
    message = refusal(who("dana", "platform-admin"), requester="dana", approvers=["dana"])
    assert message == (
        "only ml-lead or risk-officer may approve transitions of 'fraud-detector' to "
        "Production; dana is not one"
    )


def test_the_listed_role_itself_must_carry_the_level() -> None:
    # Permission comes from platform-admin, but the capacity the rule names (ml-lead) is
    # only a staging manager.
    message = refusal(who("max", "ml-lead", "platform-admin"))
    assert message == (
        "max is ml-lead, which has CAN_MANAGE_STAGING_VERSIONS on 'fraud-detector'; to approve "
        "a transition to Production that role needs CAN_MANAGE_PRODUCTION_VERSIONS"
    )


def test_self_approval_is_refused_third() -> None:
    message = refusal(who("rita", "risk-officer"), requester="rita", approvers=["rita"])
    assert message == ("rita may not approve their own request; the policy forbids self-approval")


def test_self_approval_when_the_rule_allows_it() -> None:
    general = rule_for(POLICY, "churn", "Production")
    assert general is not None and general.approvals.self_approval
    assert (
        refusal(who("ada", "platform-admin"), rule=general, model="churn", requester="ada") is None
    )


def test_a_second_approval_by_the_same_person_is_refused_last() -> None:
    assert refusal(who("rita", "risk-officer"), approvers=["rita"]) == (
        "rita has already approved this request"
    )


def test_empty_role_list_means_any_role_with_the_level() -> None:
    any_alias = rule_for(POLICY, "fraud-x", "@shadow")
    assert any_alias is not None and any_alias.approvals.roles == []
    assert refusal(who("rita", "risk-officer"), rule=any_alias, target="@shadow") is None
    assert refusal(who("lee", "ml-lead"), rule=any_alias, target="@shadow") == (
        "lee has CAN_MANAGE_STAGING_VERSIONS on 'fraud-detector'; to approve a transition to "
        "@shadow CAN_MANAGE_PRODUCTION_VERSIONS is needed"
    )


def test_staging_managers_approve_staging_moves() -> None:
    staging = rule_for(POLICY, "churn", "staging")
    assert staging is not None
    kwargs = {"rule": staging, "model": "churn", "target": "staging"}
    assert refusal(who("lee", "ml-lead"), **kwargs) is None
    assert refusal(who("rita", "risk-officer"), **kwargs) == (
        "rita has CAN_READ on 'churn'; to approve a transition to Staging "
        "CAN_MANAGE_STAGING_VERSIONS is needed"
    )


# --- rejections and cancellations -----------------------------------------------------------


def test_rejection_needs_the_same_authority_as_approval() -> None:
    kwargs = {"model": "fraud-detector", "target": "Production"}
    assert (
        rejection_refusal(POLICY, FRAUD_PROD, principal=who("rita", "risk-officer"), **kwargs)
        is None
    )
    assert rejection_refusal(
        POLICY, FRAUD_PROD, principal=who("dana", "data-scientist"), **kwargs
    ) == (
        "dana has CAN_EDIT on 'fraud-detector'; to reject a transition to Production "
        "CAN_MANAGE_PRODUCTION_VERSIONS is needed"
    )
    assert rejection_refusal(
        POLICY, FRAUD_PROD, principal=who("ada", "platform-admin"), **kwargs
    ) == (
        "only ml-lead or risk-officer may reject transitions of 'fraud-detector' to "
        "Production; ada is not one"
    )


def test_cancel_by_requester_or_manager_only() -> None:
    kwargs = {"model": "churn", "requester": "dana"}
    assert cancel_refusal(POLICY, principal=who("dana"), **kwargs) is None
    assert cancel_refusal(POLICY, principal=who("ada", "platform-admin"), **kwargs) is None
    assert cancel_refusal(POLICY, principal=who("lee", "ml-lead"), **kwargs) == (
        "only the requester (dana) or someone with CAN_MANAGE on 'churn' may cancel this "
        "request; lee has CAN_MANAGE_STAGING_VERSIONS there"
    )
    assert cancel_refusal(POLICY, principal=who("zed", "auditor"), **kwargs) == (
        "only the requester (dana) or someone with CAN_MANAGE on 'churn' may cancel this "
        "request; zed has no permission there"
    )


# --- quorum ---------------------------------------------------------------------------------


def test_quorum_counts_distinct_approvers() -> None:
    assert FRAUD_PROD.approvals.quorum == 2
    assert approvals_needed(FRAUD_PROD, []) == 2
    assert not quorum_met(FRAUD_PROD, [])
    assert approvals_needed(FRAUD_PROD, ["rita", "rita"]) == 1
    assert not quorum_met(FRAUD_PROD, ["rita", "rita"])
    assert approvals_needed(FRAUD_PROD, ["rita", "rob"]) == 0
    assert quorum_met(FRAUD_PROD, ["rita", "rob"])
    assert approvals_needed(FRAUD_PROD, ["a", "b", "c"]) == 0


def test_a_quorum_of_zero_is_met_at_once() -> None:
    sandbox = POLICY.transitions[5]
    assert quorum_met(sandbox, [])
    assert approvals_needed(sandbox, []) == 0


@pytest.mark.parametrize(
    ("model", "target"),
    [
        ("fraud-x", "Production"),
        ("credit-1", "Production"),
        ("credit-1", "@champion"),
        ("credit-1", "@shadow"),
        ("credit-1", "Staging"),
    ],
)
def test_approver_roles_are_exactly_the_roles_that_pass_the_authority_checks(
    model: str, target: str
) -> None:
    """The inbox's index agrees with the validator: a person holding one of these roles, and
    only such a person, passes the role and permission checks."""
    rule = rule_for(POLICY, model, target)
    assert rule is not None
    listed = approver_roles(POLICY, rule, model=model, target=target)
    for role in POLICY.roles:
        refusal = rejection_refusal(
            POLICY, rule, model=model, target=target, principal=Principal(sub="x", roles=[role])
        )
        assert (refusal is None) == (role in listed), (role, refusal)


def test_the_roles_recorded_beside_a_decision_are_those_it_was_made_in() -> None:
    rule = rule_for(POLICY, "fraud-x", "Production")
    assert rule is not None
    carol = Principal(sub="carol", roles=["data-scientist", "risk-officer", "ml-lead"])
    common = {"model": "fraud-x", "target": "Production", "principal": carol}
    # ml-lead is listed but only manages staging versions: not a role to approve this in.
    assert acting_roles(POLICY, rule, **common) == ["risk-officer"]
    admin = Principal(sub="ada", roles=["ml-lead", "platform-admin"])
    assert acting_roles(
        POLICY, rule, model="fraud-x", target="Production", principal=admin, cancelling=True
    ) == ["platform-admin"]
    assert acting_roles(POLICY, rule, **common, cancelling=True, requester="carol") == []
