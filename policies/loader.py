"""Reading a policy file and explaining everything wrong with it.

Policies are written by hand and reviewed in git, so a failed load reports every problem at
once, each with the file, the line of the offending YAML node and a plain sentence, rather than
pydantic's raw error dump. Reading the file is the only I/O in the policies package.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from policies.front_door import TrackingLevel, front_door_issues
from policies.identities import IdentityRule, identity_issues
from policies.schema import (
    CHECK_TYPES,
    DEFER_SEMANTIC_CHECKS,
    Loc,
    PermissionLevel,
    Policy,
    TransitionRule,
    format_loc,
    policy_issues,
    role_issues,
    rule_issues,
)
from policies.tiers import tier_warnings


@dataclass(frozen=True)
class PolicyIssue:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class PolicyError(Exception):
    """A policy file that cannot be used, with every issue found in it."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


def default_policy_path() -> Path:
    return Path(__file__).with_name("default.yaml")


def load_policy(path: str | Path) -> Policy:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError([PolicyIssue(file, None, "no such policy file")]) from None
    except IsADirectoryError:
        raise PolicyError([PolicyIssue(file, None, "is a directory, not a policy file")]) from None
    except UnicodeDecodeError:
        raise PolicyError([PolicyIssue(file, None, "is not UTF-8 text")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PolicyError([PolicyIssue(file, None, f"cannot be read: {reason}")]) from None
    return load_policy_text(text, file)


def check_policy_file(path: str | Path) -> list[PolicyIssue]:
    """For `signoff policy check FILE`: an empty list means the file is a valid policy."""
    try:
        load_policy(path)
    except PolicyError as exc:
        return exc.issues
    return []


def policy_warnings_of_file(path: str | Path) -> list[PolicyIssue]:
    """What `signoff policy check` warns about in a valid policy (rules that can never match,
    targets left ungoverned by tiers), each with its line; empty for an invalid file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        policy = load_policy_text(text, file)
    except (OSError, UnicodeDecodeError, PolicyError):
        return []
    root, _, _ = _parse_yaml(text, file)
    issues = []
    for loc, message in tier_warnings(policy):
        where, line = _locate(root, loc) if root is not None else (format_loc(loc), None)
        issues.append(PolicyIssue(file, line, f"{where}: {message}"))
    return _sorted(issues)


def load_policy_text(text: str, filename: str = "<policy>") -> Policy:
    root, data, issues = _parse_yaml(text, filename)
    if root is None:
        raise PolicyError(issues)
    if not isinstance(root, yaml.MappingNode):
        issues.append(
            PolicyIssue(
                filename,
                _line(root),
                "a policy must be a mapping with the keys roles and transitions, "
                f"got {_describe_input(data)}",
            )
        )
        raise PolicyError(issues)

    policy: Policy | None = None
    try:
        policy = Policy.model_validate(data, context=_DEFER)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            issues.append(_issue_for_error(root, error, filename))
        semantic = _partial_semantic_issues(data)
    else:
        semantic = policy_issues(policy)

    for loc, message in semantic:
        path, line = _locate(root, loc)
        issues.append(PolicyIssue(filename, line, f"{path}: {message}" if path else message))
    if issues or policy is None:
        raise PolicyError(_sorted(issues))
    return policy


_DEFER = {DEFER_SEMANTIC_CHECKS: True}
_ROLES = TypeAdapter(dict[str, dict[str, PermissionLevel]])


def _partial_semantic_issues(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Cross-field issues among the parts that did validate, so one broken rule does not hide
    an undefined role referenced by another."""
    rules: list[tuple[int, TransitionRule]] = []
    raw_rules = data.get("transitions")
    for index, raw in enumerate(raw_rules if isinstance(raw_rules, list) else []):
        try:
            rules.append((index, TransitionRule.model_validate(raw, context=_DEFER)))
        except ValidationError:
            continue
    issues = [
        (("transitions", index, *loc), message)
        for index, rule in rules
        for loc, message in rule_issues(rule)
    ]
    identities: list[tuple[int, IdentityRule]] = []
    raw_identities = data.get("identities")
    for index, raw in enumerate(raw_identities if isinstance(raw_identities, list) else []):
        try:
            identities.append((index, IdentityRule.model_validate(raw)))
        except ValidationError:
            continue
    try:
        roles = _ROLES.validate_python(data.get("roles"))
    except ValidationError:
        return issues  # without valid roles, role references cannot be judged
    return (
        issues
        + role_issues(roles, rules)
        + identity_issues(roles, identities)
        + _partial_front_door_issues(roles, data)
    )


_TRACKING = TypeAdapter(dict[str, dict[str, TrackingLevel]] | None)
_PROTECTED = TypeAdapter(dict[str, list[str]])


def _partial_front_door_issues(
    roles: dict[str, dict[str, PermissionLevel]], data: dict[str, Any]
) -> list[tuple[Loc, str]]:
    try:
        tracking = _TRACKING.validate_python(data.get("tracking"))
        protected = _PROTECTED.validate_python(data.get("protected_tags") or {})
    except ValidationError:
        return []
    return front_door_issues(roles, tracking, protected)


def _sorted(issues: list[PolicyIssue]) -> list[PolicyIssue]:
    return sorted(issues, key=lambda issue: issue.line or 0)


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _parse_yaml(text: str, filename: str) -> tuple[yaml.Node | None, Any, list[PolicyIssue]]:
    """Compose the node tree (kept for line numbers) and build the data from that same tree."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
            message = "the policy file is empty; it needs at least the keys roles and transitions"
            return None, None, [PolicyIssue(filename, None, message)]
        issues = _duplicate_keys(root, filename)
        data = loader.construct_document(root)
        return root, data, issues
    except yaml.MarkedYAMLError as exc:
        return None, None, [_yaml_issue(exc, filename)]
    except yaml.YAMLError as exc:
        return None, None, [PolicyIssue(filename, None, f"YAML syntax error: {exc}")]
    finally:
        loader.dispose()


def _yaml_issue(exc: yaml.MarkedYAMLError, filename: str) -> PolicyIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    if exc.context == "expected a single document in the stream":
        message = "a policy file holds a single YAML document, but a second one starts here"
    elif isinstance(exc, yaml.constructor.ConstructorError):
        message = f"unsupported YAML: {exc.problem}"
    else:
        message = f"YAML syntax error: {exc.problem or 'not valid YAML'}"
        if exc.context:
            # The problem is often noticed a line after its cause; say where the construct began.
            started = exc.context_mark.line + 1 if exc.context_mark else None
            since = f" that starts on line {started}" if started and started != line else ""
            message += f" ({exc.context}{since})"
    return PolicyIssue(filename, line, message)


def _duplicate_keys(root: yaml.Node, filename: str) -> list[PolicyIssue]:
    """YAML silently keeps the last of two equal keys; in a policy that hides a rule or a role
    binding, so it is an error."""
    issues: list[PolicyIssue] = []
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    seen_nodes: set[int] = set()
    while stack:
        node, loc = stack.pop()
        if id(node) in seen_nodes:  # anchors and aliases share nodes
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = key_node.value
                if key in first_line:
                    where = f"{format_loc(loc)}: " if loc else ""
                    issues.append(
                        PolicyIssue(
                            filename,
                            _line(key_node),
                            f"{where}duplicate key '{key}' (first on line {first_line[key]}); "
                            "YAML would silently keep only the last one",
                        )
                    )
                else:
                    first_line[key] = _line(key_node)
                stack.append((value_node, (*loc, key)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*loc, index)) for index, item in enumerate(node.value))
    return issues


def _discriminator(node: yaml.MappingNode) -> str | None:
    for key_node, value_node in node.value:
        if key_node.value == "type" and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return None


def _locate(root: yaml.Node, loc: Loc) -> tuple[str, int]:
    """Map a pydantic `loc` to a readable path and the line of the deepest node it reaches.

    A key that is absent from the YAML (a missing required key, or a default the semantic checks
    looked at) leaves the line at its parent mapping. Discriminated-union tags, which pydantic
    inserts into `loc` ("checks", 0, "metric", "min"), are dropped from the path.
    """
    node: yaml.Node | None = root
    line = _line(root)
    parts: list[str | int] = []
    for part in loc:
        if part == "[key]":  # pydantic's marker for an invalid dict key: the key's own line
            continue
        if isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (key, value)
                    for key, value in node.value
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part)
                ),
                None,
            )
            if match is None and isinstance(part, str) and _discriminator(node) == part:
                continue
            if match is not None:
                line = _line(match[0])
                node = match[1]
            else:
                node = None
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                node = node.value[part]
                line = _line(node)
            else:
                node = None
        else:
            node = None
        parts.append(part)
    return format_loc(tuple(parts)), line


# --------------------------------------------------------------------------------------------
# Turning pydantic errors into sentences
# --------------------------------------------------------------------------------------------


def _describe_input(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _unwrap(tp: Any) -> Any:
    """The type under `Annotated[...]` and `X | None` (an optional section such as a rule's
    `github:`), so its allowed keys can be listed."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            members = [member for member in get_args(tp) if member is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, to list the keys it allows."""
    tp: Any = Policy
    for part in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif origin is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif origin is dict:
            tp = get_args(tp)[1]
        elif origin in (Union, types.UnionType):
            members = [_unwrap(m) for m in get_args(tp)]
            optional = _optional_model(tp)
            if optional is not None:
                field = optional.model_fields.get(str(part))
                if field is None:
                    return None
                tp = field.annotation
                continue
            tp = next(
                (
                    m
                    for m in members
                    if isinstance(m, type)
                    and issubclass(m, BaseModel)
                    and "type" in m.model_fields
                    and m.model_fields["type"].default == part
                ),
                None,
            )
            if tp is None:
                return None
        else:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    return _optional_model(tp)


def _optional_model(tp: Any) -> type[BaseModel] | None:
    """The model of an `X | None` annotation (not a discriminated union of checks)."""
    if get_origin(tp) not in (Union, types.UnionType):
        return None
    members = [_unwrap(m) for m in get_args(tp)]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) == 1 and "type" not in models[0].model_fields:
        return models[0]
    return None


def _unknown_key_message(loc: Loc) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    allowed = [field.alias or name for name, field in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ";"
    return f"unknown key{hint} allowed keys are {', '.join(allowed)}"


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    got = _describe_input(error.get("input"))
    if kind == "missing":
        return "missing; this key is required"
    if kind == "extra_forbidden":
        return _unknown_key_message(tuple(error["loc"]))
    if kind == "enum" and error["loc"][:1] == ("tracking",):
        levels = ", ".join(level.value for level in TrackingLevel)
        return f"{got} is not a tracking level; use one of {levels}"
    if kind == "enum":
        levels = ", ".join(level.value for level in PermissionLevel)
        return f"{got} is not a permission level; use one of {levels}"
    if kind == "union_tag_invalid":
        tags = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"{ctx.get('tag')!r} is not a check type; use one of {tags}"
    if kind == "union_tag_not_found":
        return f"a check needs a type ({', '.join(CHECK_TYPES)})"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "greater_than_equal":
        return f"must be {ctx['ge']} or more, got {got}"
    if kind == "greater_than":
        return f"must be more than {ctx['gt']}, got {got}"
    if kind == "too_short":
        return "must not be empty"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, got {got}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {got}"
    if kind == "finite_number":
        return f"must be a finite number, got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {got}"
    if kind in ("string_type", "string_sub_type"):
        return f"must be text, got {got}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping of keys to values, got {got}"
    return str(error["msg"])


def _issue_for_error(root: yaml.Node, error: ErrorDetails, filename: str) -> PolicyIssue:
    loc: Loc = tuple(error["loc"])
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, "type")  # point at the `type:` line when there is one
    path, line = _locate(root, loc)
    message = _message(error)
    return PolicyIssue(filename, line, f"{path}: {message}" if path else message)
