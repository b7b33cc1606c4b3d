"""The policy in words, as the web page shows it above the hash."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policies import load_policy_text
from policies.wording import describe_check, describe_duration, describe_rule

POLICY = """\
roles:
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  risk-officer: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  data-scientist: {"*": CAN_EDIT}
transitions:
  - models: ["*"]
    to: Production
    checks:
      - {type: metric, name: auc, min: 0.8}
      - {type: tag, key: validated_by}
    approvals: {quorum: 2, roles: [ml-lead, risk-officer], self_approval: false}
    expires_after: 7d
    archive_existing_versions: true
  - models: ["*"]
    to: Staging
    approvals: {quorum: 1, self_approval: true}
    expires_after: 1d12h
  - models: ["*"]
    to: "@champion"
    approvals: {quorum: 0}
    checks:
      - {type: metric, name: latency_ms, max: 250}
      - {type: metric, name: f1, min: 0.5, max: 1}
      - {type: tag, key: owner, value: risk}
      - {type: signature}
      - {type: compare, metric: auc, mode: beat}
      - {type: compare, metric: loss, higher_is_better: false, tolerance: 0.01}
      - {type: http, name: gate, url: "https://gate.example/check"}
      - {type: github_actions, repo: acme/models, workflow: validate.yml}
      - {type: jenkins, job: ml/validate}
"""


@pytest.fixture
def policy():
    return load_policy_text(POLICY)


def test_a_production_rule_reads_as_the_brief_says(policy) -> None:
    assert describe_rule(policy.transitions[0]) == (
        "2 approvals from ml-lead or risk-officer, not the requester; expires in 7 days; "
        "checks: auc ≥ 0.80, tag validated_by; the version now in Production is archived"
    )


def test_one_approval_from_anyone_allowed_and_no_checks(policy) -> None:
    assert describe_rule(policy.transitions[1]) == (
        "1 approval; expires in 1 day 12 hours; no checks"
    )


def test_every_check_type_has_words(policy) -> None:
    words = [describe_check(check) for check in policy.transitions[2].checks]
    assert words == [
        "latency_ms ≤ 250",
        "0.50 ≤ f1 ≤ 1",
        "tag owner = risk",
        "a model signature with outputs",
        "auc beats the current version (higher is better)",
        "loss no worse than the current version by more than 0.01 (lower is better)",
        "HTTP check gate",
        "GitHub Actions acme/models/validate.yml on main",
        "Jenkins job ml/validate",
    ]
    assert describe_rule(policy.transitions[2]).startswith("no approval needed; expires in 7 days")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (timedelta(days=7), "7 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=1, minutes=30), "1 hour 30 minutes"),
        (timedelta(minutes=10), "10 minutes"),
        (timedelta(seconds=45), "45 seconds"),
        (timedelta(0), "0 seconds"),
    ],
)
def test_durations(value: timedelta, words: str) -> None:
    assert describe_duration(value) == words
