"""Risk tiers: rules that apply only to versions with certain tags, and what `signoff policy
check` says about them.

    - models: ["fraud-*"]
      to: Production
      when: {tags: {risk_tier: high}}     # or a list: {risk_tier: [high, critical]}

A condition reads the version's tags over its registered model's tags (a version's own tag
wins), as they were when the request opened; the request keeps them pinned with its rule.

Two warnings for the policy's author (they never stop a policy from loading):

- a rule that can never match: an earlier rule covers every request it could see (same or
  wider models and target, and a condition no stricter than its own);
- a target left ungoverned by tiers: models and a target that tiered rules cover, with no rule
  without a condition after them, so a version whose tags match none of the tiers (the tag is
  missing, or has a value no rule lists) falls through every rule: Signoff refuses to open a
  request for it, and the policy says nothing about who may move it.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

if TYPE_CHECKING:
    from policies.schema import Loc, Policy, TransitionRule

__all__ = ["RuleCondition", "condition_keys", "condition_matches", "tier_warnings"]


def _values(value: Any) -> Any:
    """A tag condition's value: one text, or a list of texts (any of them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]  # YAML reads `tier: 1` as a number; MLflow tags are text
    return value


TagValues = Annotated[list[str], BeforeValidator(_values), Field(min_length=1)]


class RuleCondition(BaseModel):
    """`when:` on a rule. Every tag named must have one of the values given."""

    model_config = ConfigDict(extra="forbid")

    tags: dict[str, TagValues] = Field(min_length=1)

    def matches(self, tags: Mapping[str, str]) -> bool:
        return all(tags.get(key) in values for key, values in self.tags.items())

    def matched(self, tags: Mapping[str, str]) -> dict[str, str]:
        """The tags that satisfied the condition, as `{key: value}`."""
        return {key: tags[key] for key in self.tags if key in tags}

    def within(self, other: RuleCondition) -> bool:
        """Every set of tags that meets this condition meets `other` too."""
        return all(
            key in self.tags and set(self.tags[key]) <= set(values)
            for key, values in other.tags.items()
        )


def condition_matches(condition: RuleCondition | None, tags: Mapping[str, str] | None) -> bool:
    return condition is None or condition.matches(tags or {})


def condition_keys(policy: Policy) -> set[str]:
    """The tag keys the policy's conditions read: the tags a request pins."""
    return {key for rule in policy.transitions if rule.when for key in rule.when.tags}


# -- warnings ---------------------------------------------------------------------------------


def _pattern_covers(wide: str, narrow: str) -> bool:
    """Whether every name `narrow` matches is matched by `wide` (answers False when unsure)."""
    if wide == narrow or wide == "*":
        return True
    if not any(ch in narrow for ch in "*?["):
        return fnmatchcase(narrow, wide)
    prefix = wide[:-1]
    return (
        wide.endswith("*") and not any(ch in prefix for ch in "*?[") and narrow.startswith(prefix)
    )


def _models_cover(wide: list[str], narrow: list[str]) -> bool:
    return all(any(_pattern_covers(w, n) for w in wide) for n in narrow)


def _target_covers(wide: str, narrow: str) -> bool:
    if wide.startswith("@") != narrow.startswith("@"):
        return False
    return _pattern_covers(wide, narrow) if wide.startswith("@") else wide == narrow


def _shadows(earlier: TransitionRule, later: TransitionRule) -> bool:
    if not (_target_covers(earlier.to, later.to) and _models_cover(earlier.models, later.models)):
        return False
    if earlier.when is None:
        return True
    return later.when is not None and later.when.within(earlier.when)


def _describe(rule: TransitionRule) -> str:
    return f"models {', '.join(rule.models)} to {rule.to}"


def tier_warnings(policy: Policy) -> list[tuple[Loc, str]]:
    """Rules that can never match, and tiered targets with no rule for the other versions."""
    rules = policy.transitions
    warnings: list[tuple[Loc, str]] = []
    ungoverned: dict[tuple[tuple[str, ...], str], list[int]] = {}
    for index, rule in enumerate(rules):
        shadow = next((i for i in range(index) if _shadows(rules[i], rule)), None)
        if shadow is not None:
            warnings.append(
                (
                    ("transitions", index),
                    f"this rule can never match: transitions[{shadow}] "
                    f"({_describe(rules[shadow])}) comes first and covers every request it "
                    "could apply to",
                )
            )
        elif rule.when is not None and not any(
            later.when is None
            and _target_covers(later.to, rule.to)
            and _models_cover(later.models, rule.models)
            for later in rules[index + 1 :]
        ):
            ungoverned.setdefault((tuple(rule.models), rule.to), []).append(index)
    for indices in ungoverned.values():
        tiers = "; ".join(_tier_text(rules[i].when) for i in indices if rules[i].when)
        warnings.append(
            (
                ("transitions", indices[0], "when"),
                f"{_describe(rules[indices[0]])} is governed only by tiers ({tiers}): a version "
                "whose tags match none of them (a tag missing, or another value) falls through "
                "every rule, so Signoff refuses its requests and the policy says nothing about "
                "who may move it; add a rule without `when` after the tiers",
            )
        )
    return warnings


def _tier_text(condition: RuleCondition) -> str:
    return ", ".join(f"{key}: {' or '.join(values)}" for key, values in condition.tags.items())
