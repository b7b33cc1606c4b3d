"""Development tokens, signed with `SIGNOFF_JWT_SECRET`: `signoff token`, and the one per role
that `signoff dev` prints."""

from __future__ import annotations

from typing import Annotated

import typer

from api.auth import issue_dev_token
from api.settings import ApiSettings
from policies import load_policy


def token(
    sub: Annotated[str, typer.Option(help="The user the token names.")],
    role: Annotated[list[str], typer.Option(help="A role; repeat for several.")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 12 * 3600,
) -> None:
    """Print a development token signed with SIGNOFF_JWT_SECRET."""
    typer.echo(issue_dev_token(ApiSettings(), sub, role, ttl_s=ttl))


def dev_tokens(settings: ApiSettings) -> dict[str, str]:
    """One development token per role of the policy, for user `dev-<role>`."""
    policy = load_policy(settings.resolved_policy_file)
    return {role: issue_dev_token(settings, f"dev-{role}", [role]) for role in sorted(policy.roles)}
