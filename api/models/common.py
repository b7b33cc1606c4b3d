"""What every resource's models share: the request fields the server checks (model name,
version, stage or alias, comment) and the rule for fields the wire omits when unset."""

from __future__ import annotations

import posixpath
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from policies import STAGES, is_alias, normalize_target

MAX_NAME = 256
MAX_COMMENT = 10_000
MAX_VERSION = 2**63 - 1
"""MLflow stores versions as 64-bit integers; a larger number makes its server answer 500."""
VERSION_PATTERN = r"^[1-9][0-9]{0,18}$"
STAGE_PATTERN = "^(" + "|".join(STAGES) + ")$"
TARGET_PATTERN = "^(" + "|".join(STAGES) + r"|@[A-Za-z_][A-Za-z0-9_-]{0,254})$"
REQUEST_ID_PATTERN = r"^[0-9a-f]+$"
NAME_PATTERN = r"^(?!\.\.)(?!\.$)[^/:]*[^/:\s][^/:]*$"
"""MLflow's rule for a registered model's name (`mlflow.utils.validation._validate_model_name`)
as a pattern: not blank, no '/' or ':', and not a path that resolves to another name ('.', or
starting with '..'). `_model_name` checks the same in Python."""


def _model_name(value: str) -> str:
    """MLflow's own checks, made before anything is looked up: a name MLflow would refuse is
    400 for everyone, whether or not the caller has a binding on it, so it tells nothing about
    which models exist."""
    if not value.strip():
        raise ValueError("a model name must not be empty or only whitespace")
    if "/" in value or ":" in value:
        raise ValueError(f"invalid model name {value!r}: MLflow's names cannot contain '/' or ':'")
    if posixpath.normpath(value) != value or value == "." or value.startswith(".."):
        raise ValueError(
            f"invalid model name {value!r}: MLflow refuses names that resolve to another path"
        )
    return value


def _version(value: Any) -> str:
    text = str(value).strip() if isinstance(value, int | str) else ""
    if not text.isdigit() or not 1 <= int(text) <= MAX_VERSION:
        raise ValueError(f"a model version is a positive integer, got {value!r}")
    return str(int(text))


def _target(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("stage must be a string such as 'Production' or '@champion'")
    return normalize_target(value)


def _stage(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("stage must be a string: None, Staging, Production or Archived")
    target = normalize_target(value)
    if is_alias(target):
        raise ValueError(
            f"{target!r} is an alias; transition-stage moves stages only (None, Staging, "
            "Production, Archived). Move an alias through transition-requests/create"
        )
    return target


ModelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME),
    AfterValidator(_model_name),
    Field(
        description="A registered model's name, by MLflow's rules: not blank, no '/' or ':', "
        "not '.' nor starting with '..'.",
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
]
Version = Annotated[
    str,
    StringConstraints(pattern=VERSION_PATTERN, max_length=19),
    BeforeValidator(_version),
    Field(description="A positive integer, MLflow's version number (sent as a string)."),
]
Target = Annotated[
    str,
    StringConstraints(pattern=TARGET_PATTERN, max_length=MAX_NAME),
    BeforeValidator(_target),
    Field(description="A stage (any casing; answered canonical) or an alias such as @champion."),
]
Stage = Annotated[
    str,
    StringConstraints(pattern=STAGE_PATTERN),
    BeforeValidator(_stage),
    Field(description="A stage: None, Staging, Production or Archived (any casing)."),
]
Comment = Annotated[str | None, Field(default=None, max_length=MAX_COMMENT)]
RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=REQUEST_ID_PATTERN)
]


class Body(BaseModel):
    """A request body: fields the server does not know are ignored, as Databricks does."""

    model_config = ConfigDict(extra="ignore")


def _is_none(value: object) -> bool:
    return value is None


def omitted(description: str | None = None) -> Any:
    """A field the wire leaves out, rather than sending null, when it has no value."""
    return Field(None, exclude_if=_is_none, description=description)


class Empty(BaseModel):
    """`{}`: what Databricks answers for a delete."""
