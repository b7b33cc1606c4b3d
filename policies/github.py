"""GitHub environments: where a CI request came from, and which deployments a rule releases.

Signoff can be a GitHub App's custom deployment protection rule: a job that deploys to a
protected environment (`environment: production`) waits until the Signoff request its own
workflow run opened is decided. Two things make that work:

- `GithubRun`: a request opened with a GitHub Actions OIDC token records where it came from,
  the token's `repository_id`, `run_id` (and `run_attempt`, `repository`) and `environment`
  claims. Any OIDC issuer's token carrying string `repository_id` and `run_id` claims counts:
  nothing here names GitHub's issuer URL.
- `GithubGate`: a rule's `github:` section. Only requests under a rule that has one release a
  deployment, and only to the environment it names (when it names one):

      transitions:
        - to: Production
          approvals: {quorum: 2, roles: [ml-lead, risk-officer]}
          github: {environment: production, wait: 10m}

  `wait` is how long a deployment to that environment waits for its run's request to appear
  before Signoff rejects it, saying what to do (the request is normally opened by an earlier
  job of the same run, so it is there already; the wait covers a job that runs in parallel).

Standard library and pydantic only, like the rest of the policy schema: these models travel in
workflow inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from policies.schema import Policy

__all__ = ["MAX_GATE_WAIT", "GithubGate", "GithubRun", "gate_applies", "gate_wait"]

MAX_GATE_WAIT = timedelta(days=30)
"""GitHub fails a deployment whose custom protection rules have not answered in 30 days."""
DEFAULT_GATE_WAIT = timedelta(minutes=10)
_MAX_CLAIM = 256


class GithubRun(BaseModel):
    """The GitHub Actions run a principal's OIDC token was issued to (its verified claims)."""

    model_config = ConfigDict(frozen=True)

    repository_id: str
    run_id: str
    repository: str | None = None
    run_attempt: str | None = None
    environment: str | None = Field(
        None, description="The environment of the job the token was issued to, if any."
    )

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> GithubRun | None:
        """The run of a verified token; None unless it carries text `repository_id` and
        `run_id` claims (a GitHub Actions token does; other issuers' tokens do not)."""

        def text(name: str) -> str | None:
            value = claims.get(name)
            ok = isinstance(value, str) and 0 < len(value) <= _MAX_CLAIM and value.isprintable()
            return value if ok else None

        repository_id, run_id = text("repository_id"), text("run_id")
        if repository_id is None or run_id is None:
            return None
        return cls(
            repository_id=repository_id,
            run_id=run_id,
            repository=text("repository"),
            run_attempt=text("run_attempt"),
            environment=text("environment"),
        )


class GithubGate(BaseModel):
    """A rule's `github:` section: its requests release GitHub deployments of their run."""

    model_config = ConfigDict(extra="forbid")

    environment: str | None = Field(
        None,
        description="The deployment environment the rule's requests release (exactly, as "
        "GitHub names it); none: any environment of the run.",
    )
    wait: timedelta = Field(
        DEFAULT_GATE_WAIT,
        description="How long a deployment waits for its run's request to appear before "
        "Signoff rejects it.",
    )

    @field_validator("environment")
    @classmethod
    def _environment_name(cls, value: str | None) -> str | None:
        if value is not None and not (0 < len(value) <= 255 and value.isprintable()):
            raise ValueError(
                "must name a GitHub environment exactly as the workflow's `environment:` does "
                "(1 to 255 printable characters), e.g. production; leave it out to release "
                "deployments to any environment of the run"
            )
        return value

    @field_validator("wait", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        from policies.schema import _parse_duration

        parsed = _parse_duration(value)
        if parsed > MAX_GATE_WAIT:
            raise ValueError(
                f"wait is at most 30d: GitHub fails a deployment whose protection rules have "
                f"not answered in 30 days (got {value!r})"
            )
        return parsed


def gate_applies(gate: GithubGate | None, environment: str) -> bool:
    """Whether a request under a rule with this `github:` section releases a deployment to
    `environment`."""
    return gate is not None and gate.environment in (None, environment)


def gate_wait(policy: Policy, environment: str) -> timedelta | None:
    """How long a deployment to `environment` waits for its run's request: the longest
    `wait` of the rules that gate it; None when no rule does (it is rejected at once)."""
    waits = [
        rule.github.wait
        for rule in policy.transitions
        if rule.github is not None and gate_applies(rule.github, environment)
    ]
    return max(waits, default=None)
