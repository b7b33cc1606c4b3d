"""What the MLflow front door decides from the policy: levels on experiments (`tracking:`),
who may set which registry tags (`protected_tags:`), and the pure decisions made from them.

    tracking:                       # role -> {experiment name pattern: READ | EDIT | MANAGE}
      data-scientist: {"*": EDIT}
      auditor: {"*": READ}
    protected_tags:                 # tag key -> the roles that may set or delete it
      validated_by: [qa-lead]

Without `tracking:`, every principal holding a role defined under `roles:` may read and log to
every experiment (EDIT), and a role bound CAN_MANAGE on "*" may also delete (MANAGE). A tag key
that a rule's `type: tag` check relies on and that `protected_tags:` does not list may be set or
deleted only with CAN_MANAGE on the model, so a requester cannot satisfy their own check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

if TYPE_CHECKING:
    from policies.schema import PermissionLevel, Policy

__all__ = [
    "ProtectedTags",
    "Tracking",
    "TrackingLevel",
    "checked_tag_keys",
    "front_door_issues",
    "tag_refusal",
    "tracking_level_for",
]

_Loc = tuple[str | int, ...]


class TrackingLevel(StrEnum):
    """Levels on experiments (and their runs, artifacts and logged models), in rank order."""

    READ = "READ"
    EDIT = "EDIT"
    MANAGE = "MANAGE"

    @property
    def rank(self) -> int:
        return list(TrackingLevel).index(self)

    def includes(self, other: TrackingLevel) -> bool:
        return self.rank >= other.rank


Tracking = dict[str, dict[str, TrackingLevel]]
ProtectedTags = dict[Annotated[str, Field(min_length=1)], list[Annotated[str, Field(min_length=1)]]]


def tracking_level_for(
    policy: Policy, roles: Iterable[str], experiment: str
) -> TrackingLevel | None:
    """The highest level the roles hold on the experiment (by name); None: no binding, which
    callers answer exactly as for an experiment that does not exist."""
    roles = list(roles)
    if policy.tracking is None:
        return _default_level(policy, roles)
    best: TrackingLevel | None = None
    for role in roles:
        for pattern, level in policy.tracking.get(role, {}).items():
            if fnmatchcase(experiment, pattern) and (best is None or level.rank > best.rank):
                best = level
    return best


def _default_level(policy: Policy, roles: list[str]) -> TrackingLevel | None:
    from policies.schema import PermissionLevel

    held = [role for role in roles if role in policy.roles]
    if not held:
        return None
    if any(policy.roles[role].get("*") == PermissionLevel.CAN_MANAGE for role in held):
        return TrackingLevel.MANAGE
    return TrackingLevel.EDIT


def checked_tag_keys(policy: Policy, model: str) -> dict[str, str]:
    """Tag keys that a `type: tag` check of a rule covering the model relies on, each with the
    target of the first such rule."""
    keys: dict[str, str] = {}
    for rule in policy.transitions:
        if not any(fnmatchcase(model, pattern) for pattern in rule.models):
            continue
        for check in rule.checks:
            if check.type == "tag":
                keys.setdefault(check.key, rule.to)  # type: ignore[union-attr]
    return keys


def tag_refusal(
    policy: Policy,
    roles: Iterable[str],
    granted: PermissionLevel | None,
    *,
    model: str,
    key: str,
    who: str,
) -> str | None:
    """None when the principal may set or delete the tag `key` on the model (or a version of
    it); otherwise why not. The route's own level (CAN_EDIT) is checked by the caller."""
    from policies.schema import PermissionLevel

    roles = list(roles)
    listed = policy.protected_tags.get(key)
    if listed is not None:
        if any(role in listed for role in roles):
            return None
        return (
            f"the tag {key!r} is protected: only {_or_list(listed)} may set or delete it "
            f"(the policy's protected_tags); {who} is not one"
        )
    target = checked_tag_keys(policy, model).get(key)
    if target is None or (granted is not None and granted.includes(PermissionLevel.CAN_MANAGE)):
        return None
    return (
        f"the tag {key!r} is what the policy's check for moving {model!r} to {target} relies "
        f"on, so setting or deleting it needs CAN_MANAGE on the model ({who} has "
        f"{granted.value if granted else 'no permission'}); list the roles that may set it "
        "under protected_tags"
    )


def _or_list(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def front_door_issues(
    roles: Mapping[str, Any], tracking: Tracking | None, protected_tags: Mapping[str, list[str]]
) -> list[tuple[_Loc, str]]:
    """Roles that `protected_tags:` names but neither `roles:` nor `tracking:` defines, and
    protected keys no role may set."""
    known = set(roles) | set(tracking or {})
    defined = ", ".join(sorted(known)) or "none"
    issues: list[tuple[_Loc, str]] = []
    for key, listed in protected_tags.items():
        if not listed:
            issues.append((("protected_tags", key), "list at least one role that may set this tag"))
        for index, role in enumerate(listed):
            if role not in known:
                issues.append(
                    (
                        ("protected_tags", key, index),
                        f"'{role}' is not a role defined under roles or tracking "
                        f"(defined: {defined})",
                    )
                )
    return issues
