"""The policy schema and the loader's error reports (file, line, plain sentence)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from policies import (
    STAGES,
    Approvals,
    MetricCheck,
    PermissionLevel,
    Policy,
    PolicyError,
    PolicyIssue,
    Principal,
    TagCheck,
    TransitionRule,
    check_policy_file,
    default_policy_path,
    format_duration,
    is_alias,
    load_policy,
    load_policy_text,
    normalize_target,
    policy_hash,
)

P = PermissionLevel


def issues_of(text: str) -> list[PolicyIssue]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    return caught.value.issues


def only_issue(text: str) -> PolicyIssue:
    issues = issues_of(text)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


# --- the packaged default -------------------------------------------------------------------


def test_default_policy_loads_with_the_documented_rules() -> None:
    path = default_policy_path()
    assert path.name == "default.yaml"
    assert path.parent == Path(__file__).parents[2] / "policies"
    policy = load_policy(path)

    assert policy.roles == {
        "data-scientist": {"*": P.CAN_EDIT},
        "ml-lead": {"*": P.CAN_MANAGE_PRODUCTION_VERSIONS},
        "risk-officer": {"*": P.CAN_MANAGE_PRODUCTION_VERSIONS},
        "platform-admin": {"*": P.CAN_MANAGE},
    }
    assert [rule.to for rule in policy.transitions] == [
        "Production",
        "Staging",
        "Archived",
        "@*",
        "None",
    ]
    prod, staging, archived, alias, none = policy.transitions
    assert prod.approvals == Approvals(
        quorum=2, roles=["ml-lead", "risk-officer"], self_approval=False
    )
    assert prod.archive_existing_versions is True
    assert prod.checks == []
    assert prod.expires_after == timedelta(days=7)
    assert staging.approvals.quorum == 1 and staging.approvals.roles == ["ml-lead"]
    assert staging.expires_after == timedelta(days=3)
    assert staging.archive_existing_versions is False
    assert archived.approvals.roles == ["ml-lead", "platform-admin"]
    assert alias.approvals.roles == ["ml-lead", "risk-officer"]
    assert none.approvals.roles == ["ml-lead", "platform-admin"]
    assert all(rule.models == ["*"] for rule in policy.transitions)
    assert check_policy_file(path) == []


# --- permission levels and targets ----------------------------------------------------------


def test_permission_levels_are_ordered_and_include_lower_ones() -> None:
    order = [
        P.CAN_READ,
        P.CAN_EDIT,
        P.CAN_MANAGE_STAGING_VERSIONS,
        P.CAN_MANAGE_PRODUCTION_VERSIONS,
        P.CAN_MANAGE,
    ]
    assert [level.rank for level in order] == [0, 1, 2, 3, 4]
    assert P.CAN_MANAGE.includes(P.CAN_READ)
    assert P.CAN_MANAGE_PRODUCTION_VERSIONS.includes(P.CAN_MANAGE_STAGING_VERSIONS)
    assert P.CAN_EDIT.includes(P.CAN_EDIT)
    assert not P.CAN_MANAGE_STAGING_VERSIONS.includes(P.CAN_MANAGE_PRODUCTION_VERSIONS)
    assert not P.CAN_READ.includes(P.CAN_EDIT)
    assert isinstance(P.CAN_EDIT, str) and P.CAN_EDIT == "CAN_EDIT"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("production", "Production"),
        ("PRODUCTION", "Production"),
        ("staging", "Staging"),
        ("archived", "Archived"),
        ("none", "None"),
        (" Staging ", "Staging"),
        ("@champion", "@champion"),
        ("@Champion_2-b", "@Champion_2-b"),
        ("@_x", "@_x"),
        ("@version2", "@version2"),
    ],
)
def test_normalize_target_accepts_stages_and_aliases(raw: str, expected: str) -> None:
    assert normalize_target(raw) == expected


def test_normalize_target_refuses_an_unknown_stage_with_a_sentence() -> None:
    with pytest.raises(ValueError) as caught:
        normalize_target("Prod")
    assert str(caught.value) == (
        "'Prod' is not a stage (None, Staging, Production, Archived) or an alias such as "
        "'@champion'"
    )


@pytest.mark.parametrize("raw", ["@latest", "@LATEST", "@v1", "@V42"])
def test_normalize_target_refuses_aliases_reserved_by_mlflow(raw: str) -> None:
    with pytest.raises(ValueError, match="reserved by MLflow"):
        normalize_target(raw)


@pytest.mark.parametrize("raw", ["@", "@1st", "@has space", "@a.b", "@" + "a" * 256, "@*"])
def test_normalize_target_refuses_invalid_alias_names(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a valid alias"):
        normalize_target(raw)


def test_is_alias() -> None:
    assert is_alias("@champion")
    assert not is_alias("Production")
    assert STAGES == ("None", "Staging", "Production", "Archived")


def test_rule_target_is_normalized_and_may_be_an_alias_pattern() -> None:
    assert TransitionRule(to="production").to == "Production"
    assert TransitionRule(to="@*").to == "@*"
    assert TransitionRule(to="@champion-*").to == "@champion-*"
    with pytest.raises(ValidationError, match="is not a valid alias pattern"):
        TransitionRule(to="@ch amp*")
    with pytest.raises(ValidationError, match="is not a stage"):
        TransitionRule(to="live")


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("2h", timedelta(hours=2)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1h30m15s", timedelta(hours=1, minutes=30, seconds=15)),
        (90, timedelta(seconds=90)),
        ("P7D", timedelta(days=7)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
    ],
)
def test_durations(raw: object, expected: timedelta) -> None:
    assert TransitionRule(to="Staging", expires_after=raw).expires_after == expected


@pytest.mark.parametrize("raw", ["7x", "d", "", "soon", True])
def test_durations_refuse_nonsense(raw: object) -> None:
    with pytest.raises(ValidationError, match="is not a duration"):
        TransitionRule(to="Staging", expires_after=raw)


@pytest.mark.parametrize("raw", ["0s", 0, -5, "-P1D"])
def test_durations_must_be_positive(raw: object) -> None:
    with pytest.raises(ValidationError, match="must be longer than zero"):
        TransitionRule(to="Staging", expires_after=raw)


def test_duration_defaults() -> None:
    rule = TransitionRule(to="Staging", checks=[{"type": "tag", "key": "k"}])
    assert rule.expires_after == timedelta(days=7)
    assert rule.checks[0].timeout == timedelta(minutes=10)


# --- checks ---------------------------------------------------------------------------------


def test_checks_are_a_discriminated_union_with_stable_ids() -> None:
    rule = TransitionRule(
        to="Production",
        checks=[
            {"type": "metric", "name": "auc", "min": 0.8},
            {"type": "tag", "key": "validated_by"},
            {"type": "tag", "key": "review", "value": "passed", "timeout": "2h"},
        ],
    )
    metric, tag, tag_value = rule.checks
    assert isinstance(metric, MetricCheck) and metric.min == 0.8 and metric.max is None
    assert isinstance(tag, TagCheck) and tag.value is None
    assert tag_value.timeout == timedelta(hours=2)
    assert [c.check_id for c in rule.checks] == ["metric:auc", "tag:validated_by", "tag:review"]


def test_metric_check_needs_a_bound_that_can_be_met() -> None:
    with pytest.raises(ValidationError, match="needs min, max or both"):
        MetricCheck(name="auc")
    with pytest.raises(ValidationError, match="can never pass"):
        MetricCheck(name="auc", min=0.9, max=0.5)
    assert MetricCheck(name="latency", max=50).max == 50


def test_duplicate_check_ids_in_a_rule_are_refused() -> None:
    with pytest.raises(ValidationError, match="'metric:auc' is already checked by checks\\[0\\]"):
        TransitionRule(
            to="Production",
            checks=[
                {"type": "metric", "name": "auc", "min": 0.8},
                {"type": "metric", "name": "auc", "max": 0.99},
            ],
        )
    # The same key under different check types is two different checks.
    TransitionRule(
        to="Production",
        checks=[{"type": "metric", "name": "x", "min": 0}, {"type": "tag", "key": "x"}],
    )


# --- policy-level semantics outside the loader ----------------------------------------------


def test_unknown_keys_are_refused_everywhere() -> None:
    with pytest.raises(ValidationError):
        Approvals(quorum=1, quorom=2)
    with pytest.raises(ValidationError):
        TagCheck(key="k", vaule="x")
    with pytest.raises(ValidationError):
        Policy(roles={}, transitions=[], extra=1)


def test_policy_refuses_an_approver_role_that_is_not_defined() -> None:
    with pytest.raises(ValidationError, match="'ghost' is not a role defined under roles"):
        Policy(
            roles={"ml-lead": {"*": P.CAN_MANAGE}},
            transitions=[TransitionRule(to="Staging", approvals=Approvals(roles=["ghost"]))],
        )


def test_policy_refuses_a_quorum_no_listed_role_can_reach() -> None:
    with pytest.raises(ValidationError, match="no listed role can approve transitions to"):
        Policy(
            roles={"ml-lead": {"*": P.CAN_MANAGE_STAGING_VERSIONS}},
            transitions=[TransitionRule(to="@champion", approvals=Approvals(roles=["ml-lead"]))],
        )
    # A quorum of 0 needs nobody, and staging moves are within the staging level.
    Policy(
        roles={"ml-lead": {"fraud-*": P.CAN_MANAGE_STAGING_VERSIONS}},
        transitions=[
            TransitionRule(to="Production", approvals=Approvals(quorum=0, roles=["ml-lead"])),
            TransitionRule(to="Staging", approvals=Approvals(roles=["ml-lead"])),
        ],
    )


def test_policy_refuses_a_quorum_when_no_role_at_all_can_approve() -> None:
    with pytest.raises(ValidationError, match="no role defined under roles can approve"):
        Policy(
            roles={"viewer": {"*": P.CAN_READ}},
            transitions=[TransitionRule(to="Archived")],
        )


def test_principal_is_frozen() -> None:
    principal = Principal(sub="alice", roles=["ml-lead"])
    with pytest.raises(ValidationError):
        principal.sub = "mallory"  # type: ignore[misc]


# --- round trip and hash --------------------------------------------------------------------

RICH = """
roles:
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  risk-officer: {"fraud-*": CAN_MANAGE_PRODUCTION_VERSIONS, "*": CAN_READ}
transitions:
  - models: ["fraud-*"]
    to: production
    checks:
      - {type: metric, name: auc, min: 0.80, timeout: 1d12h}
      - {type: metric, name: latency_ms, max: 50}
      - {type: tag, key: validated_by}
      - {type: tag, key: review, value: passed, timeout: 45s}
    approvals: {quorum: 2, roles: [ml-lead, risk-officer], self_approval: true}
    archive_existing_versions: true
    expires_after: 36h
  - to: "@*"
    approvals: {quorum: 0}
"""

RICH_REFORMATTED = """
# The same policy, written differently.
transitions:
  - to: Production          # casing normalized
    models:
      - fraud-*
    expires_after: 1d12h    # 36h
    archive_existing_versions: true
    approvals:
      self_approval: true
      roles: [ml-lead, risk-officer]
      quorum: 2
    checks:
      - type: metric
        name: auc
        min: 0.8
        timeout: 36h
      - {type: metric, name: latency_ms, max: 50.0, timeout: 10m}
      - {type: tag, key: validated_by, value: null}
      - {type: tag, key: review, value: passed, timeout: 45}
  - to: '@*'
    approvals:
      quorum: 0
roles:
  risk-officer:
    "*": CAN_READ
    fraud-*: CAN_MANAGE_PRODUCTION_VERSIONS
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
"""


def test_policy_survives_a_pydantic_json_round_trip() -> None:
    for policy in (load_policy_text(RICH), load_policy(default_policy_path())):
        again = Policy.model_validate_json(policy.model_dump_json())
        assert again == policy
        assert policy_hash(again) == policy_hash(policy)


def test_policy_hash_ignores_formatting_comments_and_order() -> None:
    first = policy_hash(load_policy_text(RICH))
    assert len(first) == 64 and int(first, 16) >= 0
    assert policy_hash(load_policy_text(RICH_REFORMATTED)) == first


def test_policy_hash_changes_with_a_real_change() -> None:
    base = policy_hash(load_policy_text(RICH))
    assert policy_hash(load_policy_text(RICH.replace("quorum: 2", "quorum: 1"))) != base
    assert policy_hash(load_policy_text(RICH.replace("min: 0.80", "min: 0.81"))) != base
    assert (
        policy_hash(load_policy_text(RICH.replace("expires_after: 36h", "expires_after: 2d")))
        != base
    )


# --- loader errors, each with its line ------------------------------------------------------


def test_spec_examples_for_permission_level_and_quorum() -> None:
    issues = issues_of(
        """roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_APPROVE}
transitions:
  - to: Production
    approvals:
      quorum: -1
"""
    )
    assert [str(i) for i in issues] == [
        "policy.yaml:3: roles.ml-lead[\"*\"]: 'CAN_APPROVE' is not a permission level; use one "
        "of CAN_READ, CAN_EDIT, CAN_MANAGE_STAGING_VERSIONS, CAN_MANAGE_PRODUCTION_VERSIONS, "
        "CAN_MANAGE",
        "policy.yaml:7: transitions[0].approvals.quorum: must be 0 or more, got -1",
    ]


def test_unknown_key_names_the_allowed_keys_and_a_likely_one() -> None:
    issue = only_issue(
        """roles: {}
transitions:
  - to: Staging
    aproval: {quorum: 0}
"""
    )
    assert issue.line == 4
    assert issue.message.startswith(
        "transitions[0].aproval: unknown key; did you mean 'approvals'?"
    )
    assert "allowed keys are models, to, checks, approvals" in issue.message


def test_unknown_key_inside_a_check() -> None:
    issue = only_issue(
        """roles: {}
transitions:
  - to: Staging
    approvals: {quorum: 0}
    checks:
      - type: metric
        name: auc
        minimum: 0.8
"""
    )
    assert issue.line == 8
    assert issue.message.startswith("transitions[0].checks[0].minimum: unknown key")
    assert "did you mean 'min'?" in issue.message


def test_missing_key_points_at_the_parent_mapping() -> None:
    issue = only_issue(
        """roles: {}
transitions:
  - models: ["a"]
    approvals: {quorum: 0}
"""
    )
    assert (issue.line, issue.message) == (3, "transitions[0].to: missing; this key is required")
    top = only_issue("# a comment\n\nroles: {}\n")
    assert (top.line, top.message) == (3, "transitions: missing; this key is required")


def test_bad_target_is_reported_on_its_line() -> None:
    issue = only_issue(
        """roles: {}
transitions:
  - approvals: {quorum: 0}
    to: Prod
"""
    )
    assert issue.line == 4
    assert issue.message == (
        "transitions[0].to: 'Prod' is not a stage (None, Staging, Production, Archived) or an "
        "alias such as '@champion'"
    )


def test_check_type_errors_point_at_the_check() -> None:
    issues = issues_of(
        """roles: {}
transitions:
  - to: Staging
    approvals: {quorum: 0}
    checks:
      - {type: metric, name: auc}
      - name: x
        type: smoke_test
      - {key: x}
      - type: tag
        key: k
        timeout: forever
"""
    )
    assert [(i.line, i.message) for i in issues] == [
        (6, "transitions[0].checks[0]: the metric check on 'auc' needs min, max or both"),
        (
            8,
            "transitions[0].checks[1].type: 'smoke_test' is not a check type; use one of "
            "metric, tag, signature, compare, http, github_actions, jenkins",
        ),
        (
            9,
            "transitions[0].checks[2].type: a check needs a type (metric, tag, signature, "
            "compare, http, github_actions, jenkins)",
        ),
        (
            12,
            "transitions[0].checks[3].timeout: 'forever' is not a duration; write e.g. 7d, 2h, "
            "30m, 45s, 1d12h, a number of seconds, or ISO 8601 such as P7D",
        ),
    ]


def test_type_errors_read_as_sentences() -> None:
    issues = issues_of(
        """roles:
  ml-lead: [CAN_READ]
  viewer:
transitions:
  - to: 5
    models: []
    archive_existing_versions: maybe
    approvals: {quorum: two}
"""
    )
    assert [(i.line, i.message) for i in issues] == [
        (2, "roles.ml-lead: must be a mapping of keys to values, got a list"),
        (3, "roles.viewer: must be a mapping of keys to values, got nothing"),
        (5, "transitions[0].to: must be text, got 5"),
        (6, "transitions[0].models: must not be empty"),
        (7, "transitions[0].archive_existing_versions: must be true or false, got 'maybe'"),
        (8, "transitions[0].approvals.quorum: must be a whole number, got 'two'"),
    ]


def test_semantic_errors_are_located() -> None:
    issues = issues_of(
        """roles:
  ml-lead: {"*": CAN_MANAGE_STAGING_VERSIONS}
  viewer: {"*": CAN_READ}
transitions:
  - to: Production
    checks:
      - {type: metric, name: auc, min: 0.8}
      - {type: tag, key: a}
      - {type: metric, name: auc, max: 0.99}
    approvals:
      quorum: 1
      roles: [ml-lead, ghost]
  - to: Staging
    approvals: {roles: [viewer]}
  - to: "@champion"
"""
    )
    assert [(i.line, i.message) for i in issues] == [
        (
            9,
            "transitions[0].checks[2]: 'metric:auc' is already checked by checks[0]; each check "
            "may appear once per rule",
        ),
        (
            12,
            "transitions[0].approvals.roles[1]: 'ghost' is not a role defined under roles "
            "(defined: ml-lead, viewer)",
        ),
        (
            12,
            "transitions[0].approvals.roles: no listed role can approve transitions to "
            "Production, which needs CAN_MANAGE_PRODUCTION_VERSIONS: ml-lead has "
            "CAN_MANAGE_STAGING_VERSIONS",
        ),
        (
            14,
            "transitions[1].approvals.roles: no listed role can approve transitions to "
            "Staging, which needs CAN_MANAGE_STAGING_VERSIONS: viewer has CAN_READ",
        ),
        (
            15,
            "transitions[2].approvals: no role defined under roles can approve transitions to "
            "@champion, which needs CAN_MANAGE_PRODUCTION_VERSIONS, so a quorum of 1 can never "
            "be met: ml-lead has CAN_MANAGE_STAGING_VERSIONS, viewer has CAN_READ",
        ),
    ]


def test_every_error_is_reported_at_once_structural_and_semantic() -> None:
    issues = issues_of(
        """roles:
  ml-lead: {"*": CAN_MANAGE}
transitions:
  - to: Prod
    expires_after: 0s
  - to: Staging
    approvals: {roles: [ghost]}
  - to: Archived
    approvals: {quorum: -2}
    archive_existing_versions: true
"""
    )
    assert [i.line for i in issues] == [4, 5, 7, 9]
    assert issues[0].message.startswith("transitions[0].to: 'Prod' is not a stage")
    assert issues[1].message == (
        "transitions[0].expires_after: a duration must be longer than zero, got '0s'"
    )
    # Rule 1 is valid on its own, so its reference to an undefined role is still found.
    assert issues[2].message.startswith("transitions[1].approvals.roles[0]: 'ghost' is not")
    assert issues[3].message == "transitions[2].approvals.quorum: must be 0 or more, got -2"


def test_duplicate_keys_are_errors() -> None:
    issues = issues_of(
        """roles:
  ml-lead: {"*": CAN_MANAGE}
  ml-lead: {"*": CAN_READ}
transitions: []
transitions: []
"""
    )
    assert [(i.line, i.message) for i in issues] == [
        (
            3,
            "roles: duplicate key 'ml-lead' (first on line 2); YAML would silently keep only "
            "the last one",
        ),
        (
            5,
            "duplicate key 'transitions' (first on line 4); YAML would silently keep only the "
            "last one",
        ),
    ]


def test_yaml_syntax_errors_have_a_line() -> None:
    tab = only_issue("roles: {}\ntransitions:\n\t- to: Staging\n")
    assert tab.line == 3
    assert tab.message.startswith("YAML syntax error: found character '\\t'")

    unclosed = only_issue('roles:\n  ml-lead: {"*": CAN_MANAGE\ntransitions: []\n')
    assert unclosed.line == 3
    assert unclosed.message == (
        "YAML syntax error: expected ',' or '}', but got ':' (while parsing a flow mapping "
        "that starts on line 2)"
    )

    two_docs = only_issue("roles: {}\ntransitions: []\n---\nroles: {}\n")
    assert two_docs.line == 3
    assert "single YAML document" in two_docs.message

    unsafe = only_issue("roles: !!python/object:os.system {}\ntransitions: []\n")
    assert unsafe.line == 1
    assert unsafe.message.startswith("unsupported YAML:")


def test_empty_and_non_mapping_files() -> None:
    for text in ("", "# only a comment\n", "---\n"):
        issue = only_issue(text)
        assert issue.line is None
        assert str(issue) == (
            "policy.yaml: the policy file is empty; it needs at least the keys roles and "
            "transitions"
        )
    listed = only_issue("\n- roles\n")
    assert (listed.line, listed.message) == (
        2,
        "a policy must be a mapping with the keys roles and transitions, got a list",
    )


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(missing)
    assert str(caught.value) == f"{missing}: no such policy file"
    assert check_policy_file(tmp_path) == [
        PolicyIssue(str(tmp_path), None, "is a directory, not a policy file")
    ]


def test_check_policy_file_and_error_text(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("roles: {}\ntransitions: []\n", encoding="utf-8")
    assert check_policy_file(good) == []

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "roles: {}\ntransitions:\n  - to: Prod\n    approvals: {quorum: -1}\n", encoding="utf-8"
    )
    issues = check_policy_file(bad)
    assert [(i.file, i.line) for i in issues] == [(str(bad), 3), (str(bad), 4)]
    with pytest.raises(PolicyError) as caught:
        load_policy(str(bad))
    assert str(caught.value) == "\n".join(str(i) for i in issues)
    assert str(caught.value).splitlines()[1] == (
        f"{bad}:4: transitions[0].approvals.quorum: must be 0 or more, got -1"
    )


def test_policy_issue_str() -> None:
    assert str(PolicyIssue("p.yaml", 7, "bad")) == "p.yaml:7: bad"
    assert str(PolicyIssue("p.yaml", None, "bad")) == "p.yaml: bad"


@pytest.mark.parametrize(
    ("written", "shown"),
    [("7d", "7d"), ("1d12h", "1d12h"), ("30m", "30m"), ("45s", "45s"), ("1h30m15s", "1h30m15s")],
)
def test_durations_are_shown_as_they_are_written(written: str, shown: str) -> None:
    rule = TransitionRule.model_validate({"to": "Staging", "expires_after": written})
    assert format_duration(rule.expires_after) == shown


# --- auto_request and break_glass --------------------------------------------------------------

RULES = """\
roles:
  ml-lead: {"*": CAN_MANAGE}
transitions:
"""


def test_auto_request_takes_true_or_the_rules_own_target() -> None:
    policy = load_policy_text(
        RULES
        + "  - {to: staging, auto_request: Staging}\n"
        + "  - {to: Production, auto_request: true, break_glass: true}\n"
        + "  - {to: Archived}\n",
        "policy.yaml",
    )
    assert [rule.auto_request for rule in policy.transitions] == [True, True, False]
    assert [bool(rule.break_glass) for rule in policy.transitions] == [False, True, False]


def test_auto_request_naming_another_target_is_refused_with_its_line() -> None:
    issue = only_issue(RULES + "  - to: Staging\n    auto_request: Production\n")
    assert issue.line == 5
    assert "auto_request names Production, but this rule governs transitions to Staging" in (
        issue.message
    )


def test_auto_request_needs_one_target_not_an_alias_pattern() -> None:
    issue = only_issue(RULES + '  - {to: "@*", auto_request: true}\n')
    assert "auto_request needs one target, but @* is an alias pattern" in issue.message
