"""What every resource's models share: the request fields the server checks (model name,
version, stage or alias, comment) and the rule for fields the wire omits when unset."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from policies import STAGES, is_alias, normalize_target

MAX_NAME = 256
MAX_COMMENT = 10_000
MAX_VERSION = 2**63 - 1
"""MLflow stores versions as 64-bit integers; a larger number makes its server answer 500."""
VERSION_PATTERN = r"^[1-9][0-9]{0,18}$"
STAGE_PATTERN = "^(" + "|".join(STAGES) + ")$"
TARGET_PATTERN = "^(" + "|".join(STAGES) + r"|@[A-Za-z_][A-Za-z0-9_-]{0,254})$"
REQUEST_ID_PATTERN = r"^[0-9a-f]+$"


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
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)
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
