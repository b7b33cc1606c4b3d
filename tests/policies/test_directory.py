"""The policy's `directory:` (source -> tool user -> subject and roles): both entry forms, the
loader's located errors, and `principal_for`, which inbound decisions rely on to give a tool's
user exactly the roles the policy lists and no others."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from policies import (
    Policy,
    PolicyError,
    PolicyIssue,
    Principal,
    default_policy_path,
    load_policy,
    load_policy_text,
    principal_for,
)

BASE = """roles:
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  risk-officer: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
transitions:
  - to: Staging
    approvals: {quorum: 0}
"""

DIRECTORY = """directory:
  slack:
    U024BE7LH: {user: carol, roles: [risk-officer]}
    dave: [ml-lead]
    U0ERIN: {roles: [ml-lead, risk-officer]}
  jira:
    "5b10ac8d82e05b22cc7d4ef5": {user: carol, roles: [ml-lead]}
"""


def issues_of(text: str) -> list[PolicyIssue]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    return caught.value.issues


@pytest.fixture
def policy() -> Policy:
    return load_policy_text(BASE + DIRECTORY, "policy.yaml")


# -- entry forms and principal_for -----------------------------------------------------------


def test_long_form_maps_the_tool_user_to_a_subject_and_roles(policy: Policy) -> None:
    assert principal_for(policy, "slack", "U024BE7LH") == Principal(
        sub="carol", roles=["risk-officer"]
    )


def test_short_form_uses_the_tool_name_as_the_subject(policy: Policy) -> None:
    assert principal_for(policy, "slack", "dave") == Principal(sub="dave", roles=["ml-lead"])


def test_long_form_without_user_also_uses_the_tool_name(policy: Policy) -> None:
    assert principal_for(policy, "slack", "U0ERIN") == Principal(
        sub="U0ERIN", roles=["ml-lead", "risk-officer"]
    )


def test_the_same_person_may_hold_different_roles_per_source(policy: Policy) -> None:
    slack = principal_for(policy, "slack", "U024BE7LH")
    jira = principal_for(policy, "jira", "5b10ac8d82e05b22cc7d4ef5")
    assert slack is not None and jira is not None
    assert slack.sub == jira.sub == "carol"
    assert (slack.roles, jira.roles) == (["risk-officer"], ["ml-lead"])


@pytest.mark.parametrize(
    ("source", "user"),
    [
        ("slack", "mallory"),  # not listed
        ("slack", "carol"),  # the subject is not a tool user id
        ("slack", "u024be7lh"),  # ids are case-sensitive
        ("jira", "dave"),  # listed for another source only
        ("teams", "dave"),  # a source the directory does not have
    ],
)
def test_unlisted_users_have_no_principal(policy: Policy, source: str, user: str) -> None:
    assert principal_for(policy, source, user) is None


def test_a_policy_without_directory_maps_nobody() -> None:
    plain = load_policy_text(BASE)
    assert plain.directory == {}
    assert principal_for(plain, "slack", "dave") is None
    assert load_policy(default_policy_path()).directory == {}


def test_the_directory_survives_a_json_round_trip(policy: Policy) -> None:
    again = Policy.model_validate_json(policy.model_dump_json())
    assert again.directory == policy.directory
    assert principal_for(again, "slack", "dave") == Principal(sub="dave", roles=["ml-lead"])


def test_validation_outside_the_loader_checks_directory_roles() -> None:
    with pytest.raises(ValidationError, match="'ghost' is not a role defined under roles"):
        Policy.model_validate(
            {
                "roles": {"ml-lead": {"*": "CAN_READ"}},
                "transitions": [],
                "directory": {"slack": {"dave": ["ghost"]}},
            }
        )


# -- loader errors, each with its line -------------------------------------------------------


def test_unknown_roles_are_reported_with_their_lines_in_both_forms() -> None:
    issues = issues_of(
        BASE
        + """directory:
  slack:
    U1: {user: carol, roles: [risk-officer, ghost]}
    dave: [ml-led]
"""
    )
    assert [str(issue) for issue in issues] == [
        "policy.yaml:9: directory.slack.U1.roles[1]: 'ghost' is not a role defined under roles "
        "(defined: ml-lead, risk-officer)",
        "policy.yaml:10: directory.slack.dave.roles[0]: 'ml-led' is not a role defined under "
        "roles (defined: ml-lead, risk-officer)",
    ]


def test_malformed_entries_are_reported_with_their_lines() -> None:
    issues = issues_of(
        BASE
        + """directory:
  slack:
    U1: {user: carol}
    U2: {roles: []}
    U3: {roles: [ml-lead], team: x}
    U4: 5
    U5: {user: "", roles: [ml-lead]}
  jira: [ml-lead]
"""
    )
    assert [(issue.line, issue.message) for issue in issues] == [
        (9, "directory.slack.U1.roles: missing; this key is required"),
        (10, "directory.slack.U2.roles: must not be empty"),
        (11, "directory.slack.U3.team: unknown key; allowed keys are user, roles"),
        (12, "directory.slack.U4: must be a mapping of keys to values, got 5"),
        (13, "directory.slack.U5.user: String should have at least 1 character"),
        (14, "directory.jira: must be a mapping of keys to values, got a list"),
    ]


def test_a_source_name_that_cannot_be_a_url_segment_is_refused() -> None:
    (issue,) = issues_of(BASE + 'directory:\n  "bad source!":\n    dave: [ml-lead]\n')
    assert issue.line == 8
    assert issue.message.startswith('directory["bad source!"]')


def test_the_default_policy_has_no_directory_but_a_working_commented_example() -> None:
    assert load_policy(default_policy_path()).directory == {}
    text = default_policy_path().read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("# directory:")
    end = next(index for index in range(start, len(lines)) if lines[index].strip() == "#")
    example = "\n".join(line.removeprefix("# ") for line in lines[start:end])
    policy = load_policy_text(text + "\n" + example + "\n", "default.yaml")
    assert principal_for(policy, "slack", "U024BE7LH") == Principal(sub="carol", roles=["ml-lead"])
    assert principal_for(policy, "jira", "rita") == Principal(sub="rita", roles=["risk-officer"])
