"""The policy's front-door sections: `tracking:` levels on experiments and `protected_tags:`,
with the loader's messages and the decisions made from them."""

from __future__ import annotations

import pytest

from policies import PermissionLevel, PolicyError, load_policy_text
from policies.front_door import TrackingLevel, tag_refusal, tracking_level_for

BASE = """roles:
  data-scientist: {"*": CAN_EDIT}
  qa-lead: {"*": CAN_EDIT}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - to: Production
    checks: [{type: tag, key: validated_by}, {type: tag, key: data_review}]
    approvals: {quorum: 0}
"""


def test_without_tracking_every_role_logs_everywhere_and_admins_manage() -> None:
    policy = load_policy_text(BASE)
    assert tracking_level_for(policy, ["data-scientist"], "any") is TrackingLevel.EDIT
    assert tracking_level_for(policy, ["platform-admin"], "any") is TrackingLevel.MANAGE
    assert tracking_level_for(policy, ["stranger"], "any") is None


def test_tracking_binds_levels_by_experiment_name_and_the_highest_wins() -> None:
    policy = load_policy_text(
        BASE + 'tracking:\n  data-scientist: {"team-*": EDIT, "*": READ}\n  auditor: {"*": READ}\n'
    )
    assert tracking_level_for(policy, ["data-scientist"], "team-a") is TrackingLevel.EDIT
    assert tracking_level_for(policy, ["data-scientist"], "other") is TrackingLevel.READ
    assert tracking_level_for(policy, ["platform-admin"], "other") is None  # not listed
    assert tracking_level_for(policy, ["auditor"], "x") is TrackingLevel.READ


def test_protected_and_checked_tags() -> None:
    policy = load_policy_text(BASE + "protected_tags:\n  validated_by: [qa-lead]\n")
    edit, manage = PermissionLevel.CAN_EDIT, PermissionLevel.CAN_MANAGE

    def refusal(roles: list[str], level: PermissionLevel, key: str) -> str | None:
        return tag_refusal(policy, roles, level, model="m", key=key, who="lee")

    assert "only qa-lead may set or delete it" in str(
        refusal(["data-scientist"], edit, "validated_by")
    )
    assert refusal(["platform-admin"], manage, "validated_by") is not None  # listed roles only
    assert refusal(["qa-lead"], edit, "validated_by") is None
    assert "needs CAN_MANAGE" in str(refusal(["data-scientist"], edit, "data_review"))
    assert refusal(["platform-admin"], manage, "data_review") is None
    assert refusal(["data-scientist"], edit, "notes") is None


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ('tracking:\n  data-scientist: {"*": WRITE}\n', 10,
         "tracking.data-scientist[\"*\"]: 'WRITE' is not a tracking level; use one of READ, "
         "EDIT, MANAGE"),
        ("protected_tags:\n  validated_by: [qa-leed]\n", 10,
         "protected_tags.validated_by[0]: 'qa-leed' is not a role defined under roles or tracking"),
        ("protected_tags:\n  validated_by: []\n", 10,
         "protected_tags.validated_by: list at least one role that may set this tag"),
    ],
)  # fmt: skip
def test_the_loader_says_what_is_wrong_and_where(extra: str, line: int, message: str) -> None:
    with pytest.raises(PolicyError) as error:
        load_policy_text(BASE + extra, "p.yaml")
    assert [(issue.line, issue.message.split(" (defined")[0]) for issue in error.value.issues] == [
        (line, message)
    ]
