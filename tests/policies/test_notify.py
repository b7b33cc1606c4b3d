"""A rule's `notify: {slack: "#channel"}`: accepted forms, the loader's sentences and lines,
`signoff policy check`, and the pinned hash of policies that do not use it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from policies import PolicyError, PolicyIssue, TransitionRule, load_policy_text, policy_hash

ROLES = """roles:
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
transitions:
"""


def issues_of(rules: str) -> list[PolicyIssue]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(ROLES + rules, "policy.yaml")
    return caught.value.issues


@pytest.mark.parametrize("channel", ["#model-approvals", "#ml.prod_2", "C0123456789", "G01ABCDEF9"])
def test_a_channel_name_or_id_is_accepted(channel: str) -> None:
    policy = load_policy_text(ROLES + f'  - to: Production\n    notify: {{slack: "{channel}"}}\n')
    assert policy.transitions[0].notify.slack == channel


def test_a_rule_without_notify_announces_nowhere_and_keeps_its_hash() -> None:
    plain = load_policy_text(ROLES + "  - to: Production\n")
    assert plain.transitions[0].notify.slack is None
    notified = load_policy_text(ROLES + "  - to: Production\n    notify: {slack: '#a'}\n")
    assert policy_hash(plain) != policy_hash(notified)
    # The hash of a policy without `notify` is the one it had before the field existed.
    data = plain.model_dump(mode="json")
    del data["transitions"][0]["notify"]
    assert policy_hash(type(plain).model_validate(data)) == policy_hash(plain)


def test_it_survives_a_json_round_trip_as_workflow_input() -> None:
    rule = TransitionRule(to="Production", notify={"slack": "#model-approvals"})
    assert TransitionRule.model_validate_json(rule.model_dump_json()) == rule


@pytest.mark.parametrize(
    ("rules", "line", "message"),
    [
        (
            "  - to: Production\n    notify:\n      slack: #model-approvals\n",
            5,
            "transitions[0].notify: slack is empty; quote the channel",
        ),
        (
            "  - to: Production\n    notify: {}\n",
            5,
            "transitions[0].notify: names no destination",
        ),
        (
            "  - to: Production\n    notify: {slack: Model Approvals}\n",
            5,
            "transitions[0].notify.slack: 'Model Approvals' is not a Slack channel; write '#name'",
        ),
        (
            "  - to: Production\n    notify: {slak: '#a'}\n",
            5,
            "transitions[0].notify.slak: unknown key; did you mean 'slack'?",
        ),
        (
            "  - to: Production\n    notify: '#a'\n",
            5,
            "transitions[0].notify: must be a mapping of keys to values, got '#a'",
        ),
    ],
)
def test_the_loader_says_what_is_wrong_and_where(rules: str, line: int, message: str) -> None:
    issues = issues_of(rules)
    assert len(issues) == 1, [str(issue) for issue in issues]
    assert issues[0].line == line
    assert message in issues[0].message, issues[0].message


def test_policy_check_reports_a_bad_channel(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ROLES + "  - to: Production\n    notify: {slack: 'general'}\n")
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:5: transitions[0].notify.slack: 'general' is not a Slack channel" in (
        result.output
    )
    path.write_text(ROLES + "  - to: Production\n    notify: {slack: '#general'}\n")
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
