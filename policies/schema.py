"""The shape of a policy file, as pydantic models.

The same models travel inside Temporal workflow inputs (through the pydantic data converter), so
they must survive a JSON round trip unchanged and must not import anything beyond the standard
library, pydantic and yaml.

Cross-field rules (roles referenced by a rule exist, a quorum can be reached, check ids are
unique) are collected by `policy_issues` with the location of each offending value, so the loader
can report every one of them with a line number. Validation outside the loader raises them all
at once as a plain `ValueError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal, Self, TypeGuard

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from policies.directory import Directory, directory_issues
from policies.front_door import ProtectedTags, Tracking, front_door_issues
from policies.github import GithubGate, GithubRun
from policies.identities import IdentityRule, identity_issues
from policies.tiers import RuleCondition
from policies.windows import ChangeWindow, Freeze

Loc = tuple[str | int, ...]
"""Where a value sits in the policy document: keys and list indices, as pydantic reports them."""

DEFER_SEMANTIC_CHECKS = "policies.defer_semantic_checks"
"""Validation context key. The loader sets it to collect cross-field issues with their locations
itself instead of receiving them folded into one `ValueError` without a usable location."""


class PermissionLevel(StrEnum):
    """Databricks' registry permission levels, in increasing order of power.

    Members are declared in rank order; each level includes every level before it.
    """

    CAN_READ = "CAN_READ"
    CAN_EDIT = "CAN_EDIT"
    CAN_MANAGE_STAGING_VERSIONS = "CAN_MANAGE_STAGING_VERSIONS"
    CAN_MANAGE_PRODUCTION_VERSIONS = "CAN_MANAGE_PRODUCTION_VERSIONS"
    CAN_MANAGE = "CAN_MANAGE"

    @property
    def rank(self) -> int:
        return list(PermissionLevel).index(self)

    def includes(self, other: PermissionLevel) -> bool:
        return self.rank >= other.rank


# --------------------------------------------------------------------------------------------
# Targets: stages and aliases
# --------------------------------------------------------------------------------------------

STAGES = ("None", "Staging", "Production", "Archived")
_STAGE_BY_LOWER = {stage.lower(): stage for stage in STAGES}
_ALIAS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")
# MLflow reserves "latest" and "v<digits>" because `models:/name@...` URIs would be ambiguous.
_RESERVED_VERSION_ALIAS = re.compile(r"^v\d+$", re.IGNORECASE)
_ALIAS_PATTERN = re.compile(r"^@[A-Za-z0-9_\-*?\[\]!]{1,255}$")


def is_alias(target: str) -> bool:
    return target.startswith("@")


def normalize_target(raw: str) -> str:
    """Give a stage its canonical casing and check an alias against MLflow's naming rules.

    Stages are compared case-insensitively because MLflow itself accepts "production"; aliases
    keep their case because MLflow stores them as given.
    """
    text = raw.strip()
    if is_alias(text):
        name = text[1:]
        if name.lower() == "latest" or _RESERVED_VERSION_ALIAS.match(name):
            raise ValueError(
                f"'{text}' is reserved by MLflow and cannot be used as an alias "
                "(MLflow reserves 'latest' and 'v' followed by digits)"
            )
        if not _ALIAS_NAME.match(name):
            raise ValueError(
                f"'{text}' is not a valid alias; an alias name starts with a letter or '_' and "
                "has at most 255 letters, digits, '_' or '-'"
            )
        return text
    stage = _STAGE_BY_LOWER.get(text.lower())
    if stage is None:
        raise ValueError(
            f"'{raw}' is not a stage ({', '.join(STAGES)}) or an alias such as '@champion'"
        )
    return stage


def _is_alias_pattern(target: str) -> bool:
    return is_alias(target) and any(ch in target for ch in "*?[")


def normalize_rule_target(raw: str) -> str:
    """Like `normalize_target`, but a rule may also name every alias matching a pattern."""
    text = raw.strip()
    if _is_alias_pattern(text):
        if not _ALIAS_PATTERN.match(text):
            raise ValueError(
                f"'{raw}' is not a valid alias pattern; use alias characters and the wildcards "
                "'*', '?' and '[...]', as in '@*' or '@champion-*'"
            )
        return text
    return normalize_target(text)


def target_matches(rule_target: str, target: str) -> bool:
    """Whether a rule's `to` covers a normalized target."""
    if is_alias(rule_target) != is_alias(target):
        return False
    if is_alias(rule_target):
        return fnmatchcase(target, rule_target)
    return rule_target == target


def required_level(target: str) -> PermissionLevel:
    """The level an approver needs, following Databricks: only moves among the non-production
    stages are open to staging managers; anything that reaches production traffic (the Production
    stage, or an alias, which serving code resolves directly) needs a production manager."""
    if is_alias(target.strip()):
        return PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS
    if normalize_target(target) == "Production":
        return PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS
    return PermissionLevel.CAN_MANAGE_STAGING_VERSIONS


# --------------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------------

_SHORT_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TIMEDELTA = TypeAdapter(timedelta)


def _parse_duration(value: Any) -> timedelta:
    """Accept the short forms people write in YAML as well as what pydantic itself emits (ISO
    8601), so a policy read from YAML and one read back from a Temporal payload validate alike."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 7d, 2h, 30m, 45s or 1d12h")
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int):
        result = timedelta(seconds=value)
    else:
        match = _SHORT_DURATION.match(value.strip()) if isinstance(value, str) else None
        if match and any(match.groups()):
            days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
            result = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        else:
            try:
                result = _TIMEDELTA.validate_python(value)
            except ValidationError:
                raise ValueError(
                    f"{value!r} is not a duration; write e.g. 7d, 2h, 30m, 45s, 1d12h, a number "
                    "of seconds, or ISO 8601 such as P7D"
                ) from None
    if result <= timedelta(0):
        raise ValueError(f"a duration must be longer than zero, got {value!r}")
    return result


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]
"""A positive timedelta written as "7d", "2h", "30m", "45s", "1d12h", seconds, or ISO 8601."""


def format_duration(value: timedelta) -> str:
    """The short form people write in policies: 7d, 1d12h, 30m, 1.5s."""
    whole = int(value.total_seconds())
    parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m")]
    text = "".join(f"{amount}{unit}" for amount, unit in parts if amount)
    seconds = value.total_seconds() - (whole - whole % 60)
    if seconds or not text:
        text += f"{seconds:g}s"
    return text


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    # A misspelt key silently ignored would weaken a governance rule; refuse it instead.
    model_config = ConfigDict(extra="forbid")


class BaseCheck(_Strict):
    """What every check has. To add a check type: subclass this with a `type: Literal[...]`
    field and a `check_id`, and add the class to the `Check` union below."""

    timeout: Duration = timedelta(minutes=10)

    @property
    def check_id(self) -> str:
        raise NotImplementedError


class MetricCheck(BaseCheck):
    type: Literal["metric"] = "metric"
    name: str = Field(min_length=1, description="The key of a metric of the version's run.")
    min: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @property
    def check_id(self) -> str:
        return f"metric:{self.name}"

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError(f"the metric check on '{self.name}' needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(
                f"the metric check on '{self.name}' can never pass: min {self.min} is above "
                f"max {self.max}"
            )
        return self


class TagCheck(BaseCheck):
    type: Literal["tag"] = "tag"
    key: str = Field(min_length=1)
    value: str | None = Field(None, description="None: the tag must merely be present.")

    @property
    def check_id(self) -> str:
        return f"tag:{self.key}"


class SignatureCheck(BaseCheck):
    """The version's MLflow model declares an input (and, by default, output) signature."""

    type: Literal["signature"] = "signature"
    require_outputs: bool = True

    @property
    def check_id(self) -> str:
        return "signature"


class CompareCheck(BaseCheck):
    """A run metric against the same metric of the version now at the target (the champion).
    `beat`: strictly better; `not_worse`: no worse than the champion by more than `tolerance`.
    Passes, saying so, when there is no champion yet."""

    type: Literal["compare"] = "compare"
    metric: str = Field(min_length=1)
    mode: Literal["beat", "not_worse"] = "not_worse"
    higher_is_better: bool = True
    tolerance: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0

    @property
    def check_id(self) -> str:
        return f"compare:{self.metric}"


class HttpCheck(BaseCheck):
    """POST the request's context as JSON to `url`; a 2xx answer `{"passed": bool,
    "details": ...}` decides."""

    type: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://\S+$")
    name: str | None = Field(None, min_length=1, description="Default: the URL.")
    headers: dict[str, str] = Field(default_factory=dict)

    @property
    def check_id(self) -> str:
        return f"http:{self.name or self.url}"


class _CiCheck(BaseCheck):
    """What the checks that run in a CI system share."""

    timeout: Duration = timedelta(hours=1)
    poll_interval: Duration = timedelta(seconds=30)
    callback_roles: list[str] = Field(
        default_factory=list,
        description="Roles whose callers (e.g. a CI identity) may report this check's result "
        "with their own token; empty: only the single-use callback token counts.",
    )


class GithubActionsCheck(_CiCheck):
    """Dispatch a workflow_dispatch workflow and wait for its conclusion (by callback, else
    by polling the run)."""

    type: Literal["github_actions"] = "github_actions"
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    workflow: str = Field(min_length=1, description="File name (validate.yml) or numeric id.")
    ref: str = "main"
    inputs: dict[str, str] = Field(default_factory=dict)

    @property
    def check_id(self) -> str:
        return f"github_actions:{self.repo}/{self.workflow}"


class JenkinsCheck(_CiCheck):
    """Trigger a parameterized Jenkins job and wait for its build's result (by callback, else
    by polling the queue item and the build)."""

    type: Literal["jenkins"] = "jenkins"
    job: str = Field(min_length=1, description="Job name; folders as 'folder/job'.")
    parameters: dict[str, str] = Field(default_factory=dict)

    @property
    def check_id(self) -> str:
        return f"jenkins:{self.job}"


CHECK_TYPES = ("metric", "tag", "signature", "compare", "http", "github_actions", "jenkins")
CI_CHECK_TYPES = ("github_actions", "jenkins")
"""Checks that run in an external CI system and report back by callback or polling."""

CiCheck = Annotated[GithubActionsCheck | JenkinsCheck, Field(discriminator="type")]
"""A check that runs in a CI system: the one union of the CI check models."""


def is_ci_check(check: BaseCheck) -> TypeGuard[CiCheck]:
    """Whether `check` runs in a CI system (and so is a `CiCheck`)."""
    return check.type in CI_CHECK_TYPES


Check = Annotated[
    MetricCheck
    | TagCheck
    | SignatureCheck
    | CompareCheck
    | HttpCheck
    | GithubActionsCheck
    | JenkinsCheck,
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------------------------
# Rules and the policy
# --------------------------------------------------------------------------------------------


class Approvals(_Strict):
    quorum: Annotated[int, Field(strict=True, ge=0)] = 1
    roles: list[str] = Field(
        default_factory=list, description="Empty: any role with the required permission."
    )
    self_approval: bool = False


class BreakGlassReview(_Strict):
    """After a break-glass move: how many people, in which roles, must acknowledge it, and
    within how long of the move (after which the review is overdue and announced as such)."""

    quorum: Annotated[int, Field(strict=True, ge=1)] = 1
    roles: list[str] = Field(
        default_factory=list,
        description="Empty: the roles that may approve the rule's target.",
    )
    within: Duration = timedelta(days=3)


class BreakGlass(_Strict):
    """`break_glass:` written as a mapping: allowed, with the review every such move opens."""

    review: BreakGlassReview = Field(default_factory=BreakGlassReview)


def _deferred(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get(DEFER_SEMANTIC_CHECKS))


_SLACK_CHANNEL_NAME = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
_SLACK_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{8,20}$")


class Notify(_Strict):
    """Where a rule's requests are announced, and kept up to date, as they open and progress."""

    slack: str | None = Field(
        None,
        description="A Slack channel, '#name' or an id such as C0123456789, where a message "
        "with Approve / Reject buttons follows each request.",
    )

    @model_validator(mode="before")
    @classmethod
    def _names_a_destination(cls, data: Any, info: ValidationInfo) -> Any:
        # Only a file being loaded is held to this: a validated rule dumped and read back (a
        # workflow input) carries `slack: null` wherever nothing is notified.
        if not _deferred(info):
            return data
        if isinstance(data, dict) and not data:
            raise ValueError("names no destination; write e.g. notify: {slack: '#channel'}")
        if isinstance(data, dict) and "slack" in data and data["slack"] is None:
            raise ValueError(
                "slack is empty; quote the channel, as in slack: '#model-approvals' "
                "(in YAML a bare # starts a comment)"
            )
        return data

    @field_validator("slack")
    @classmethod
    def _slack_channel(cls, value: str | None) -> str | None:
        if value is None:
            return None
        channel = value.strip()
        if _SLACK_CHANNEL_NAME.match(channel) or _SLACK_CHANNEL_ID.match(channel):
            return channel
        raise ValueError(
            f"{value!r} is not a Slack channel; write '#name' (lowercase letters, digits, "
            "'-', '_' and '.', at most 80) or a channel id such as C0123456789"
        )


def _raise_issues(issues: list[tuple[Loc, str]]) -> None:
    if issues:
        raise ValueError("\n".join(f"{format_loc(loc)}: {message}" for loc, message in issues))


class RollbackRule(_Strict):
    """`rollback:` on a rule: what a governed rollback to the rule's target needs instead of
    the rule's own checks, approvals, expiry and windows (none of them inherited)."""

    approvals: Approvals
    checks: list[Check] = Field(default_factory=list)
    expires_after: Duration = timedelta(days=1)
    windows: list[ChangeWindow] = Field(default_factory=list)
    freezes: list[Freeze] = Field(default_factory=list)


class TransitionRule(_Strict):
    models: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    to: str
    checks: list[Check] = Field(default_factory=list)
    approvals: Approvals = Field(default_factory=Approvals)
    archive_existing_versions: bool = False
    expires_after: Duration = timedelta(days=7)
    auto_request: bool | str = Field(
        False,
        description="Open a request to this rule's target when MLflow announces a new version "
        "(`model_version.created`). `true`, or the rule's own target, e.g. `Staging`.",
    )
    break_glass: BreakGlass | None = Field(
        None,
        description="CAN_MANAGE principals may apply this transition directly through "
        "`transition-stage`, with a mandatory comment, recorded, announced and reviewed after "
        "the fact: `true`, or `{review: {quorum, roles, within}}` (default: 1 of the rule's "
        "approver roles within 3d).",
    )
    when: RuleCondition | None = Field(
        None, description="Risk tiers: the rule applies only to versions with these tags."
    )
    windows: list[ChangeWindow] = Field(
        default_factory=list, description="When an approved move may be applied (any of them)."
    )
    freezes: list[Freeze] = Field(
        default_factory=list, description="Days on which no approved move is applied."
    )
    rollback: RollbackRule | None = Field(
        None, description="The rule for governed rollbacks to this target; default this rule."
    )

    notify: Notify = Field(
        default_factory=Notify,
        description="Where this rule's requests are announced: `{slack: '#channel'}`.",
    )

    github: GithubGate | None = Field(
        None,
        description="Requests under this rule release GitHub deployments of the workflow run "
        "that opened them (`policies.github`).",
    )

    def for_rollback(self) -> TransitionRule:
        """The rule a governed rollback to this target runs under."""
        if self.rollback is None:
            return self
        return self.model_copy(
            update={
                "checks": self.rollback.checks,
                "approvals": self.rollback.approvals,
                "expires_after": self.rollback.expires_after,
                "windows": self.rollback.windows,
                "freezes": self.rollback.freezes,
                "auto_request": False,
                "rollback": None,
            }
        )

    @field_validator("auto_request")
    @classmethod
    def _auto_request_flag(cls, value: bool | str, info: ValidationInfo) -> bool | str:
        if isinstance(value, bool):
            return value
        to = info.data.get("to")
        try:
            named = normalize_target(value)
        except ValueError as err:
            raise ValueError(f"auto_request: {err}") from None
        if to is not None and named != to:
            raise ValueError(
                f"auto_request names {named}, but this rule governs transitions to {to}; "
                f"write `auto_request: true` (or `{to}`) on the rule for {named}"
            )
        return True

    @field_validator("break_glass", mode="before")
    @classmethod
    def _break_glass_flag(cls, value: Any) -> Any:
        if value is True:
            return BreakGlass()
        if value is False or value is None:
            return None
        if not isinstance(value, dict | BreakGlass):
            raise ValueError(
                "break_glass must be true, false, or a mapping such as "
                "{review: {quorum: 1, roles: [model-risk], within: 3d}}"
            )
        return value

    @field_serializer("break_glass")
    def _break_glass_as_written(self, value: BreakGlass | bool | None) -> bool | dict[str, Any]:
        """`true` for the default review, so policies written before reviews keep their hash."""
        if not value:
            return False
        if value is True or value == BreakGlass():
            return True
        return {"review": value.review.model_dump(mode="json")}

    @field_validator("to")
    @classmethod
    def _normalize_to(cls, value: str) -> str:
        return normalize_rule_target(value)

    @model_validator(mode="after")
    def _semantics(self, info: ValidationInfo) -> Self:
        if not _deferred(info):
            _raise_issues(rule_issues(self))
        if self.auto_request and _is_alias_pattern(self.to):
            raise ValueError(
                f"auto_request needs one target, but {self.to} is an alias pattern; name the "
                "alias the new versions should be requested for"
            )
        return self


class Policy(_Strict):
    roles: dict[str, dict[str, PermissionLevel]]
    transitions: list[TransitionRule]
    identities: list[IdentityRule] = Field(
        default_factory=list,
        description="Roles for CI identities (GitHub Actions, Jenkins) from their OIDC claims.",
    )
    directory: Directory = Field(
        default_factory=dict,
        description="Per inbound decision source: the tool's users, as subject and roles.",
    )
    tracking: Tracking | None = Field(
        None,
        description="The front door's levels on experiments: role -> {experiment name pattern: "
        "READ | EDIT | MANAGE}; absent: every role of the policy may read and log everywhere.",
    )
    protected_tags: ProtectedTags = Field(
        default_factory=dict,
        description="Registry tag key -> the roles that may set or delete it (front door).",
    )

    @model_validator(mode="after")
    def _semantics(self, info: ValidationInfo) -> Self:
        if not _deferred(info):
            # Rule-level issues were already raised by each TransitionRule.
            _raise_issues(
                role_issues(self.roles, enumerate(self.transitions))
                + identity_issues(self.roles, enumerate(self.identities))
                + directory_issues(self.roles, self.directory)
                + front_door_issues(self.roles, self.tracking, self.protected_tags)
            )
        return self


class Principal(BaseModel):
    """Who is acting, as the API authenticated them: subject and roles from the JWT."""

    model_config = ConfigDict(frozen=True)

    sub: str
    roles: list[str] = Field(default_factory=list)
    github: GithubRun | None = Field(
        None, description="The GitHub Actions run of an OIDC token's claims, if it has one."
    )


# --------------------------------------------------------------------------------------------
# Cross-field validation
# --------------------------------------------------------------------------------------------


def rule_issues(rule: TransitionRule) -> list[tuple[Loc, str]]:
    """Issues within one rule, located relative to the rule."""
    issues: list[tuple[Loc, str]] = []
    first_index: dict[str, int] = {}
    for index, check in enumerate(rule.checks):
        first = first_index.setdefault(check.check_id, index)
        if first != index:
            issues.append(
                (
                    ("checks", index),
                    f"'{check.check_id}' is already checked by checks[{first}]; "
                    "each check may appear once per rule",
                )
            )
    return issues


def _highest_level(levels: dict[str, PermissionLevel]) -> PermissionLevel | None:
    return max(levels.values(), key=lambda level: level.rank, default=None)


def _review_role_issues(
    roles: dict[str, dict[str, PermissionLevel]], rule_index: int, rule: TransitionRule
) -> list[tuple[Loc, str]]:
    """Roles a break-glass review names must be defined."""
    if not isinstance(rule.break_glass, BreakGlass):
        return []
    at: Loc = ("transitions", rule_index, "break_glass", "review", "roles")
    defined = ", ".join(roles) or "none"
    return [
        ((*at, index), f"'{role}' is not a role defined under roles (defined: {defined})")
        for index, role in enumerate(rule.break_glass.review.roles)
        if role not in roles
    ]


def role_issues(
    roles: dict[str, dict[str, PermissionLevel]],
    rules: Iterable[tuple[int, TransitionRule]],
) -> list[tuple[Loc, str]]:
    """Issues between rules and the roles they name, for rules given with their index (the
    loader also runs this over the rules that validated when others did not)."""
    issues: list[tuple[Loc, str]] = []
    for rule_index, rule in rules:
        for check_index, check in enumerate(rule.checks):
            for role_index, role in enumerate(getattr(check, "callback_roles", [])):
                if role not in roles:
                    defined = ", ".join(roles) or "none"
                    issues.append(
                        (
                            ("transitions", rule_index, "checks", check_index, "callback_roles",
                             role_index),
                            f"'{role}' is not a role defined under roles (defined: {defined})",
                        )
                    )  # fmt: skip
        issues.extend(_review_role_issues(roles, rule_index, rule))
        at: Loc = ("transitions", rule_index, "approvals")
        issues.extend(_approval_issues(roles, rule.to, rule.approvals, at))
        if rule.rollback is not None:
            at = ("transitions", rule_index, "rollback", "approvals")
            issues.extend(_approval_issues(roles, rule.to, rule.rollback.approvals, at))
    return issues


def _approval_issues(
    roles: dict[str, dict[str, PermissionLevel]], target: str, approvals: Approvals, at: Loc
) -> list[tuple[Loc, str]]:
    """Issues between one `approvals:` and the roles: undefined roles, an unreachable quorum."""
    issues: list[tuple[Loc, str]] = []
    listed = approvals.roles
    for role_index, role in enumerate(listed):
        if role not in roles:
            defined = ", ".join(roles) or "none"
            issues.append(
                (
                    (*at, "roles", role_index),
                    f"'{role}' is not a role defined under roles (defined: {defined})",
                )
            )
    if approvals.quorum == 0:
        return issues
    need = required_level(target)
    candidates = [role for role in listed if role in roles] if listed else list(roles)
    if listed and not candidates:
        return issues  # only undefined roles are listed; reported above
    best = {role: _highest_level(roles[role]) for role in candidates}
    if any(level is not None and level.includes(need) for level in best.values()):
        return issues
    held = ", ".join(
        f"{role} has {level.value if level else 'no permission'}" for role, level in best.items()
    )
    if listed:
        issues.append(
            (
                (*at, "roles"),
                f"no listed role can approve transitions to {target}, which needs "
                f"{need.value}: {held}",
            )
        )
    else:
        issues.append(
            (
                at,
                f"no role defined under roles can approve transitions to {target}, which "
                f"needs {need.value}, so a quorum of {approvals.quorum} can never be met"
                + (f": {held}" if held else ""),
            )
        )
    return issues


def policy_issues(policy: Policy) -> list[tuple[Loc, str]]:
    """Every cross-field issue of a policy, each with the location of the offending value."""
    issues: list[tuple[Loc, str]] = []
    for rule_index, rule in enumerate(policy.transitions):
        issues.extend((("transitions", rule_index, *loc), msg) for loc, msg in rule_issues(rule))
    issues.extend(role_issues(policy.roles, enumerate(policy.transitions)))
    issues.extend(identity_issues(policy.roles, enumerate(policy.identities)))
    issues.extend(directory_issues(policy.roles, policy.directory))
    issues.extend(front_door_issues(policy.roles, policy.tracking, policy.protected_tags))
    return issues


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_loc(loc: Loc) -> str:
    """Render a location the way a reader would point at it: `roles.ml-lead["*"]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def policy_hash(policy: Policy) -> str:
    """A content hash that pins which policy a request ran under. It covers the validated model,
    not the YAML text, so comments, key order and formatting do not change it."""
    data = policy.model_dump(mode="json")
    # Fields added later are left out while unused, so existing policies keep their hash.
    for added in ("identities", "directory", "tracking", "protected_tags"):
        if not data.get(added):
            data.pop(added, None)
    for rule in data.get("transitions", []):
        for added in (
            "auto_request",
            "break_glass",
            "when",
            "windows",
            "freezes",
            "rollback",
            "github",
        ):
            if not rule.get(added):
                rule.pop(added, None)
        if not any((rule.get("notify") or {}).values()):
            rule.pop("notify", None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
