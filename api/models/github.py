"""GitHub App webhooks on the wire: the `deployment_protection_rule` event Signoff acts on (only
the fields it reads; GitHub sends many more, which are ignored) and Signoff's answer to GitHub's
webhook delivery. Shapes: octokit/webhooks `deployment_protection_rule/requested`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_REPOSITORY = r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GithubRepository(_Lenient):
    id: int = Field(ge=1)
    full_name: str = Field(pattern=_REPOSITORY)


class GithubInstallation(_Lenient):
    id: int = Field(ge=1)


class GithubDeployment(_Lenient):
    id: int | None = None


class DeploymentProtectionRuleEvent(_Lenient):
    """`X-GitHub-Event: deployment_protection_rule`."""

    action: str = Field(max_length=64)
    environment: str = Field(min_length=1, max_length=255)
    deployment_callback_url: str = Field(min_length=1, max_length=2048)
    repository: GithubRepository
    installation: GithubInstallation = Field(
        description="Present on events delivered to a GitHub App: whose token answers them."
    )
    deployment: GithubDeployment | None = None


class GithubHookAnswer(BaseModel):
    """Signoff's answer to a webhook delivery (GitHub shows it under the App's deliveries)."""

    event: str
    accepted: bool = Field(description="Whether Signoff acts on it (false: ignored).")
    message: str
    gate_id: str | None = Field(
        None, description="The deployment gate waiting for the run's request and its decision."
    )
