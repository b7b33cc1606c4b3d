"""Risk tiers (`when:`), rollback rules (`rollback:`), and what `signoff policy check` warns
about: rules that can never match, targets left ungoverned by tiers."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from policies import (
    Policy,
    condition_keys,
    load_policy_text,
    policy_hash,
    policy_warnings_of_file,
    request_rule,
    rule_for,
)
from tests.policies.test_schema_loader import issues_of, only_issue

ROLES = """
roles:
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  model-risk: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  on-call: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  viewer: {"*": CAN_READ}
"""

TIERED = (
    ROLES
    + """
transitions:
  - models: ["fraud-*"]
    to: Production
    when: {tags: {risk_tier: high}}
    approvals: {quorum: 3, roles: [model-risk, ml-lead]}
    expires_after: 14d
    rollback: {approvals: {quorum: 1, roles: [on-call]}}
  - models: ["fraud-*"]
    to: Production
    when: {tags: {risk_tier: [low, medium]}}
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Production
    approvals: {quorum: 2, roles: [ml-lead]}
"""
)


class Pinned:
    """What a request pinned, as `request_rule` reads it."""

    def __init__(self, model: str, target: str, tags: dict[str, str], rollback: bool) -> None:
        self.model, self.target, self.tags = model, target, tags
        self.rollback = object() if rollback else None


def test_a_rule_is_chosen_by_the_tags_pinned() -> None:
    policy = load_policy_text(TIERED)
    high = rule_for(policy, "fraud-v2", "Production", {"risk_tier": "high"})
    low = rule_for(policy, "fraud-v2", "Production", {"risk_tier": "low", "other": "x"})
    untagged = rule_for(policy, "fraud-v2", "Production", {})
    assert high is policy.transitions[0] and high.approvals.quorum == 3
    assert high.expires_after == timedelta(days=14)
    assert low is policy.transitions[1] and low.approvals.roles == ["ml-lead"]
    assert rule_for(policy, "fraud-v2", "Production", {"risk_tier": "medium"}) is low
    assert untagged is policy.transitions[2]
    assert rule_for(policy, "fraud-v2", "Production") is policy.transitions[2]
    assert condition_keys(policy) == {"risk_tier"}


def test_a_number_is_read_as_text_and_an_empty_condition_is_refused() -> None:
    policy = load_policy_text(
        ROLES + "transitions:\n  - to: Staging\n    when: {tags: {tier: 1}}\n"
    )
    assert policy.transitions[0].when is not None
    assert policy.transitions[0].when.tags == {"tier": ["1"]}
    assert (
        "must not be empty"
        in only_issue(ROLES + "transitions:\n  - to: Staging\n    when: {tags: {}}\n").message
    )
    issue = only_issue(ROLES + "transitions:\n  - to: Staging\n    when: {tags: {tier: []}}\n")
    assert (issue.line, issue.message) == (9, "transitions[0].when.tags.tier: must not be empty")
    unknown = issues_of(ROLES + "transitions:\n  - to: Staging\n    when: {tag: {tier: a}}\n")
    assert [i.message for i in unknown] == [
        "transitions[0].when.tags: missing; this key is required",
        "transitions[0].when.tag: unknown key; did you mean 'tags'? allowed keys are tags",
    ]


def test_the_rollback_rule_replaces_checks_approvals_expiry_and_windows() -> None:
    policy = load_policy_text(TIERED)
    high = policy.transitions[0]
    rollback = high.for_rollback()
    assert rollback.approvals.quorum == 1 and rollback.approvals.roles == ["on-call"]
    assert rollback.checks == [] and rollback.expires_after == timedelta(days=1)
    assert rollback.models == high.models and rollback.rollback is None
    # Without `rollback:` a rollback runs under the target's own rule.
    low = policy.transitions[1]
    assert low.for_rollback() is low
    assert request_rule(policy, Pinned("fraud-a", "Production", {"risk_tier": "high"}, True)) == (
        rollback
    )
    assert request_rule(policy, Pinned("fraud-a", "Production", {"risk_tier": "low"}, True)) is low


def test_a_rollback_rule_naming_an_undefined_role_is_reported_on_its_line() -> None:
    text = ROLES + (
        "transitions:\n"
        "  - to: Production\n"
        "    rollback: {approvals: {quorum: 1, roles: [on-cal]}}\n"
    )
    issue = only_issue(text)
    assert issue.line == 9
    assert issue.message.startswith(
        "transitions[0].rollback.approvals.roles[0]: 'on-cal' is not a role defined under roles"
    )
    weak = only_issue(
        ROLES
        + "transitions:\n  - to: Production\n"
        + "    rollback: {approvals: {quorum: 1, roles: [viewer]}}\n"
    )
    assert "no listed role can approve transitions to Production" in weak.message
    missing = issues_of(ROLES + "transitions:\n  - to: Production\n    rollback: {}\n")
    assert [i.message for i in missing] == [
        "transitions[0].rollback.approvals: missing; this key is required"
    ]


def test_new_fields_leave_the_hash_of_a_policy_without_them_alone() -> None:
    plain = load_policy_text(ROLES + "transitions:\n  - to: Production\n")
    tiered = load_policy_text(
        ROLES + "transitions:\n  - to: Production\n    when: {tags: {risk_tier: high}}\n"
    )
    assert policy_hash(plain) != policy_hash(tiered)
    assert Policy.model_validate_json(tiered.model_dump_json()) == tiered
    assert policy_hash(Policy.model_validate_json(tiered.model_dump_json())) == policy_hash(tiered)


# -- policy check warnings --------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_well_tiered_policy_has_no_warning(tmp_path: Path) -> None:
    assert policy_warnings_of_file(write(tmp_path, TIERED)) == []


def test_a_rule_that_can_never_match_is_reported(tmp_path: Path) -> None:
    text = ROLES + (
        "transitions:\n"
        "  - to: Production\n"  # line 8
        "    approvals: {quorum: 2}\n"
        "  - models: [fraud-*]\n"  # line 10: shadowed by the catch-all above
        "    to: Production\n"
        "  - models: [fraud-*]\n"  # line 12: shadowed too, whatever its tier
        "    to: Production\n"
        "    when: {tags: {risk_tier: high}}\n"
        "  - to: '@champion-*'\n"
        "  - to: '@champion-eu'\n"  # line 16: covered by the pattern above
    )
    warnings = policy_warnings_of_file(write(tmp_path, text))
    assert [(w.line, w.message.split(":")[0]) for w in warnings] == [
        (10, "transitions[1]"),
        (12, "transitions[2]"),
        (16, "transitions[4]"),
    ]
    assert warnings[0].message.endswith(
        "this rule can never match: transitions[0] (models * to Production) comes first and "
        "covers every request it could apply to"
    )


def test_a_narrower_tier_after_a_wider_one_can_never_match(tmp_path: Path) -> None:
    text = ROLES + (
        "transitions:\n"
        "  - to: Production\n"
        "    when: {tags: {risk_tier: [high, critical]}}\n"
        "  - to: Production\n"
        "    when: {tags: {risk_tier: critical, region: eu}}\n"  # within the first: never
        "  - to: Production\n"
        "    when: {tags: {risk_tier: low}}\n"  # not within it: fine
        "  - to: Production\n"
    )
    warnings = policy_warnings_of_file(write(tmp_path, text))
    assert [(w.line, "can never match" in w.message) for w in warnings] == [(10, True)]


def test_tiers_without_a_fallback_leave_the_target_ungoverned(tmp_path: Path) -> None:
    text = ROLES + (
        "transitions:\n"
        "  - models: [fraud-*]\n"
        "    to: Production\n"
        "    when: {tags: {risk_tier: high}}\n"  # line 10
        "  - models: [fraud-*]\n"
        "    to: Production\n"
        "    when: {tags: {risk_tier: low}}\n"
        "  - to: Staging\n"
    )
    path = write(tmp_path, text)
    (warning,) = policy_warnings_of_file(path)
    assert warning.line == 10
    assert warning.message == (
        "transitions[0].when: models fraud-* to Production is governed only by tiers "
        "(risk_tier: high; risk_tier: low): a version whose tags match none of them (a tag "
        "missing, or another value) falls through every rule, so Signoff refuses its requests "
        "and the policy says nothing about who may move it; add a rule without `when` after the "
        "tiers"
    )
    # `signoff policy check` prints it as a warning and still passes the file.
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "policy", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"warning: {path}:10: transitions[0].when: models fraud-* to Production" in done.stderr
    assert done.stdout.strip() == f"{path}: OK (1 warning(s))"
