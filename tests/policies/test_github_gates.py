"""A rule's `github:` section: which GitHub deployments its requests release, and how long a
deployment waits for its run's request (schema, loader messages, `signoff policy check`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from policies import (
    GithubRun,
    PolicyError,
    gate_applies,
    gate_wait,
    load_policy_text,
    policy_hash,
)

ROLES = """roles:
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
transitions:
"""


def load(rules: str):
    return load_policy_text(ROLES + rules, "policy.yaml")


def issues(rules: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load(rules)
    return [str(issue) for issue in caught.value.issues]


def test_a_rule_names_the_environment_it_releases_and_how_long_a_deployment_waits() -> None:
    policy = load(
        """  - to: Production
    github: {environment: production, wait: 10m}
  - to: "@champion"
    github: {environment: production, wait: 1h}
  - to: Staging
    github: {}
  - to: Archived
"""
    )
    production, champion, staging, archived = (rule.github for rule in policy.transitions)
    assert production is not None and production.wait == timedelta(minutes=10)
    assert staging is not None and staging.environment is None
    assert staging.wait == timedelta(minutes=10)  # the default
    assert archived is None
    assert gate_applies(production, "production") and not gate_applies(production, "staging")
    assert gate_applies(staging, "anything") and not gate_applies(archived, "production")
    assert gate_wait(policy, "production") == timedelta(hours=1)  # the longest that applies
    assert gate_wait(policy, "qa") == timedelta(minutes=10)  # only the any-environment rule


def test_an_environment_no_rule_releases_has_no_wait() -> None:
    policy = load("  - to: Production\n    github: {environment: production}\n")
    assert gate_wait(policy, "staging") is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "{enviroment: production}",
            "policy.yaml:5: transitions[0].github.enviroment: unknown key; did you mean "
            "'environment'? allowed keys are environment, wait",
        ),
        (
            "{environment: production, wait: 31d}",
            "policy.yaml:5: transitions[0].github.wait: wait is at most 30d: GitHub fails a "
            "deployment whose protection rules have not answered in 30 days (got '31d')",
        ),
        (
            "{environment: production, wait: soon}",
            "policy.yaml:5: transitions[0].github.wait: 'soon' is not a duration",
        ),
        ('{environment: ""}', "policy.yaml:5: transitions[0].github.environment: must name"),
        ("production", "policy.yaml:5: transitions[0].github: must be a mapping"),
    ],
)
def test_a_bad_github_section_is_explained_with_its_line(section: str, message: str) -> None:
    found = issues(f"  - to: Production\n    github: {section}\n")
    assert len(found) == 1 and found[0].startswith(message), found


def test_policy_check_reports_a_bad_github_section(tmp_path: Path) -> None:
    file = tmp_path / "policy.yaml"
    file.write_text(ROLES + "  - to: Production\n    github: {wait: 45d}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["policy", "check", str(file)])
    assert result.exit_code == 1
    assert "transitions[0].github.wait: wait is at most 30d" in result.output


def test_a_policy_without_github_sections_keeps_its_hash() -> None:
    plain = load("  - to: Production\n")
    assert policy_hash(plain) == policy_hash(load("  - to: Production\n    # no github\n"))
    gated = load("  - to: Production\n    github: {environment: production}\n")
    assert policy_hash(gated) != policy_hash(plain)
    # and the hash survives the round trip through a workflow input
    assert policy_hash(type(gated).model_validate_json(gated.model_dump_json())) == policy_hash(
        gated
    )


def test_a_github_run_comes_only_from_text_repository_and_run_claims() -> None:
    claims = {"repository_id": "123", "run_id": "9", "environment": "production", "x": 1}
    run = GithubRun.from_claims(claims)
    assert run == GithubRun(repository_id="123", run_id="9", environment="production")
    assert GithubRun.from_claims({"repository_id": 123, "run_id": "9"}) is None
    assert GithubRun.from_claims({"sub": "jenkins-job"}) is None
    assert GithubRun.from_claims({"repository_id": "1", "run_id": "a\nb"}) is None
