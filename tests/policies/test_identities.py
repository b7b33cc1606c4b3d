"""Identity rules: which roles a CI token's claims earn (`roles_for_claims`), and the loader's
reports for rules that cannot be used."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from pydantic import ValidationError

from policies import (
    IdentityRule,
    Policy,
    PolicyError,
    PolicyIssue,
    default_policy_path,
    load_policy,
    load_policy_text,
    policy_hash,
    roles_for_claims,
)

GITHUB = "https://token.actions.githubusercontent.com"
JENKINS = "https://jenkins.example.com/oidc"

POLICY = f"""roles:
  ci-deployer: {{"*": CAN_READ}}
  ci-validator: {{"fraud-*": CAN_READ}}
  ml-lead: {{"*": CAN_MANAGE_PRODUCTION_VERSIONS}}
transitions:
  - to: Staging
    approvals: {{quorum: 1, roles: [ml-lead]}}
identities:
  - issuer: {GITHUB}
    claims:
      repository_id: "123456"
      environment: production
      ref: refs/heads/main
    roles: [ci-deployer]
  - issuer: {GITHUB}
    claims:
      repository_id: "123456"
      job_workflow_ref:
        - acme/models/.github/workflows/validate.yml@refs/heads/main
        - acme/models/.github/workflows/nightly.yml@refs/heads/main
    roles: [ci-validator, ci-deployer]
  - issuer: {JENKINS}
    claims: {{sub: "https://jenkins.example.com/job/deploy/"}}
    roles: [ci-deployer]
"""


def github_claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a GitHub Actions token of the production deployment job on main."""
    claims: dict[str, Any] = {
        "iss": GITHUB,
        "aud": "signoff",
        "sub": "repo:acme/models:environment:production",
        "repository": "acme/models",
        "repository_id": "123456",
        "repository_owner": "acme",
        "repository_owner_id": "4242",
        "environment": "production",
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "job_workflow_ref": "acme/models/.github/workflows/deploy.yml@refs/heads/main",
        "event_name": "push",
        "run_id": "987654321",
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_text(POLICY, "policy.yaml")


def issues_of(text: str) -> list[PolicyIssue]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    return caught.value.issues


# --- roles_for_claims ------------------------------------------------------------------------


def test_matching_claims_get_exactly_the_rules_roles(policy: Policy) -> None:
    assert roles_for_claims(policy, GITHUB, github_claims()) == ["ci-deployer"]


def test_an_issuer_without_rules_is_none_so_its_roles_claim_applies(policy: Policy) -> None:
    assert roles_for_claims(policy, "https://keycloak.example/realms/ml", github_claims()) is None
    assert roles_for_claims(Policy(roles={}, transitions=[]), GITHUB, github_claims()) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"environment": "staging"},
        {"repository_id": "654321"},
        {"ref": "refs/heads/feature"},
        {"ref": "refs/pull/7/merge"},
        {"environment": None},  # the claim is absent
        {"environment": "Production"},  # exact, case-sensitive
        {"environment": " production"},
        {"repository_id": 123456},  # a number is not the text "123456"
        {"environment": ["production"]},  # a list claim never matches a value
    ],
    ids=repr,
)
def test_any_claim_not_matching_exactly_means_no_roles(
    policy: Policy, overrides: dict[str, Any]
) -> None:
    assert roles_for_claims(policy, GITHUB, github_claims(**overrides)) == []


def test_a_list_of_values_matches_any_of_them(policy: Policy) -> None:
    nightly = github_claims(
        environment=None,
        job_workflow_ref="acme/models/.github/workflows/nightly.yml@refs/heads/main",
    )
    assert roles_for_claims(policy, GITHUB, nightly) == ["ci-validator", "ci-deployer"]
    other = github_claims(
        environment=None, job_workflow_ref="acme/models/.github/workflows/other.yml@refs/heads/main"
    )
    assert roles_for_claims(policy, GITHUB, other) == []


def test_every_matching_rule_adds_its_roles_once_in_rule_order(policy: Policy) -> None:
    both = github_claims(
        job_workflow_ref="acme/models/.github/workflows/validate.yml@refs/heads/main"
    )
    assert roles_for_claims(policy, GITHUB, both) == ["ci-deployer", "ci-validator"]


def test_rules_apply_only_to_their_own_issuer(policy: Policy) -> None:
    jenkins = {"iss": JENKINS, "sub": "https://jenkins.example.com/job/deploy/"}
    assert roles_for_claims(policy, JENKINS, jenkins) == ["ci-deployer"]
    # The same claims presented under another issuer earn nothing from these rules.
    assert roles_for_claims(policy, GITHUB, jenkins) == []
    assert roles_for_claims(policy, f"{JENKINS}/", jenkins) is None
    assert roles_for_claims(policy, JENKINS, {"sub": "https://jenkins.example.com/job/x/"}) == []


def test_identity_rules_survive_a_json_round_trip(policy: Policy) -> None:
    """The policy is pinned in Temporal workflow inputs, so it must round-trip unchanged."""
    again = Policy.model_validate_json(policy.model_dump_json())
    assert again == policy
    assert policy_hash(again) == policy_hash(policy)
    rule = policy.identities[0]
    assert rule == IdentityRule(
        issuer=GITHUB,
        claims={
            "repository_id": ["123456"],
            "environment": ["production"],
            "ref": ["refs/heads/main"],
        },
        roles=["ci-deployer"],
    )


LATER_RULE_FIELDS = (
    "auto_request", "break_glass", "when", "windows", "freezes", "rollback", "notify", "github"
)  # fmt: skip


def test_the_hash_of_a_policy_without_identities_is_unchanged_by_the_new_field() -> None:
    text = POLICY.split("identities:")[0]
    plain = load_policy_text(text)
    assert plain.identities == []
    # The hash is what it was before the later fields existed (identities, directory, and the
    # rules' LATER_RULE_FIELDS, the front door's tracking and protected_tags): none of them is
    # in what is hashed while unused.
    later = {"identities", "directory", "tracking", "protected_tags"}
    before = {k: v for k, v in plain.model_dump(mode="json").items() if k not in later}
    for rule in before["transitions"]:
        for later_field in LATER_RULE_FIELDS:
            del rule[later_field]
    canonical = json.dumps(before, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert policy_hash(plain) == hashlib.sha256(canonical.encode()).hexdigest()
    with_rules = load_policy_text(POLICY)
    assert policy_hash(with_rules) != policy_hash(plain)
    broken_glass = plain.model_copy(deep=True)
    broken_glass.transitions[0].break_glass = True
    assert policy_hash(broken_glass) != policy_hash(plain)


def test_policy_validation_outside_the_loader_checks_rule_roles() -> None:
    with pytest.raises(ValidationError, match="'ghost' is not a role defined under roles"):
        Policy.model_validate(
            {
                "roles": {"ci-deployer": {"*": "CAN_READ"}},
                "transitions": [],
                "identities": [
                    {"issuer": GITHUB, "claims": {"repository_id": "1"}, "roles": ["ghost"]}
                ],
            }
        )


# --- the packaged default ---------------------------------------------------------------------


def test_the_default_policy_has_no_identity_rules_but_a_working_commented_example() -> None:
    assert load_policy(default_policy_path()).identities == []
    text = default_policy_path().read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("# identities:")
    end = next(index for index in range(start, len(lines)) if lines[index].strip() == "#")
    example = "\n".join(line.removeprefix("# ") for line in lines[start:end])
    assert "  # ci-deployer:" in text
    uncommented = text.replace("  # ci-deployer:", "  ci-deployer:") + "\n" + example + "\n"
    policy = load_policy_text(uncommented, "default.yaml")
    assert [rule.issuer for rule in policy.identities] == [GITHUB, JENKINS]
    claims = github_claims(repository_id="123456789")
    assert roles_for_claims(policy, GITHUB, claims) == ["ci-deployer"]
    assert roles_for_claims(policy, GITHUB, github_claims(repository_id="123456789", ref="x")) == []


# --- loader errors, each with its line --------------------------------------------------------

BASE = """roles:
  ci-deployer: {"*": CAN_READ}
transitions:
  - to: Staging
    approvals: {quorum: 0}
"""


def test_an_undefined_role_in_a_rule_is_reported_with_its_line() -> None:
    issues = issues_of(
        BASE
        + f"""identities:
  - issuer: {GITHUB}
    claims: {{repository_id: "1"}}
    roles:
      - ci-deployer
      - ci-deployr
"""
    )
    assert [str(issue) for issue in issues] == [
        "policy.yaml:11: identities[0].roles[1]: 'ci-deployr' is not a role defined under roles "
        "(defined: ci-deployer)"
    ]


def test_undefined_roles_are_found_even_when_another_rule_is_broken() -> None:
    issues = issues_of(
        BASE
        + f"""identities:
  - issuer: {GITHUB}
    claims: {{}}
    roles: [ci-deployer]
  - issuer: {GITHUB}
    claims: {{repository_id: "1"}}
    roles: [deployer]
"""
    )
    assert [(issue.line, issue.message.split(":")[0]) for issue in issues] == [
        (8, "identities[0].claims"),
        (12, "identities[1].roles[0]"),
    ]
    assert "would grant its roles to every token of the issuer" in issues[0].message


def test_a_claim_value_yaml_reads_as_a_number_or_boolean_must_be_quoted() -> None:
    issues = issues_of(
        BASE
        + f"""identities:
  - issuer: {GITHUB}
    claims:
      repository_id: 123456
      environment: [production, yes]
    roles: [ci-deployer]
"""
    )
    assert [issue.line for issue in issues] == [9, 10]
    assert issues[0].message == (
        "identities[0].claims.repository_id: 123456 is a number, not text; claims are compared "
        'as text, so write the value in quotes, e.g. "123456"'
    )
    assert issues[1].message.startswith(
        "identities[0].claims.environment: YAML reads this value as true, not text"
    )


@pytest.mark.parametrize(
    ("rule", "line", "expected"),
    [
        (
            "  - issuer: token.actions.githubusercontent.com\n"
            '    claims: {repository_id: "1"}\n'
            "    roles: [ci-deployer]\n",
            7,
            "identities[0].issuer: 'token.actions.githubusercontent.com' is not an issuer URL",
        ),
        (
            f"  - issuer: {GITHUB}\n    claims: {{repository_id: []}}\n    roles: [ci-deployer]\n",
            8,
            "identities[0].claims.repository_id: list at least one value",
        ),
        (
            f'  - issuer: {GITHUB}\n    claims: {{repository_id: ""}}\n    roles: [ci-deployer]\n',
            8,
            "identities[0].claims.repository_id: must not be empty",
        ),
        (
            f"  - issuer: {GITHUB}\n"
            "    claims: {repository_id: {id: 1}}\n"
            "    roles: [ci-deployer]\n",
            8,
            "identities[0].claims.repository_id: must be a text value or a list of text values",
        ),
        (
            f'  - issuer: {GITHUB}\n    claims: {{repository_id: "1"}}\n    roles: []\n',
            9,
            "identities[0].roles: must not be empty",
        ),
        (
            f'  - issuer: {GITHUB}\n    claims: {{repository_id: "1"}}\n',
            7,
            "identities[0].roles: missing; this key is required",
        ),
        (
            f'  - issuer: {GITHUB}\n    claim: {{repository_id: "1"}}\n    roles: [ci-deployer]\n',
            8,
            "identities[0].claim: unknown key; did you mean 'claims'? allowed keys are issuer, "
            "claims, roles",
        ),
    ],
    ids=["issuer not a URL", "empty list", "empty text", "mapping", "no roles", "roles missing",
         "misspelt key"],
)  # fmt: skip
def test_a_malformed_rule_is_reported_with_its_line(rule: str, line: int, expected: str) -> None:
    issues = issues_of(BASE + "identities:\n" + rule)
    assert any(issue.line == line and issue.message.startswith(expected) for issue in issues), [
        str(issue) for issue in issues
    ]


def test_identities_must_be_a_list() -> None:
    issues = issues_of(BASE + f"identities:\n  issuer: {GITHUB}\n")
    assert [str(issue) for issue in issues] == [
        "policy.yaml:6: identities: must be a list, got a mapping"
    ]


def test_a_misspelt_top_level_key_suggests_identities() -> None:
    issues = issues_of(BASE + "identity: []\n")
    assert len(issues) == 1
    assert issues[0].line == 6
    assert "did you mean 'identities'?" in issues[0].message
