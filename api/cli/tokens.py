"""Development tokens, signed with `SIGNOFF_JWT_SECRET`: `signoff token`, and the one per role
that `signoff dev` prints."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.client import load_settings, warn

if TYPE_CHECKING:
    from api.settings import ApiSettings


def token(
    sub: Annotated[str, typer.Option(help="The user the token names.", metavar="USER")],
    role: Annotated[
        list[str], typer.Option(help="A role of the policy; repeat for several.", metavar="ROLE")
    ],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", metavar="SECONDS")] = 12 * 3600,
) -> None:
    """Print a development token signed with SIGNOFF_JWT_SECRET.

    Use it as SIGNOFF_TOKEN. A role the policy (SIGNOFF_POLICY_FILE) does not define is
    warned about on stderr; the token is minted anyway, since the API may run another policy.
    """
    from api.auth import issue_dev_token

    settings = load_settings()
    warn_unknown_roles(settings, role)
    typer.echo(issue_dev_token(settings, sub, role, ttl_s=ttl))


def warn_unknown_roles(settings: ApiSettings, roles: list[str]) -> None:
    """Warn (stderr) about roles this machine's policy does not define: such a token can do
    nothing against an API running that policy."""
    from policies import PolicyError, load_policy

    path = settings.resolved_policy_file
    try:
        defined = sorted(load_policy(path).roles)
    except (PolicyError, OSError) as err:
        warn(f"cannot read the policy {path} to check the roles ({err})")
        return
    for name in roles:
        if name in defined:
            continue
        close = difflib.get_close_matches(name, defined, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        warn(
            f"the policy {path} has no role {name!r} (its roles: {', '.join(defined)}){hint} "
            "Minting the token anyway, in case the API runs another policy."
        )


def dev_tokens(settings: ApiSettings) -> dict[str, str]:
    """One development token per role of the policy, for user `dev-<role>`."""
    from api.auth import issue_dev_token
    from policies import load_policy

    policy = load_policy(settings.resolved_policy_file)
    return {role: issue_dev_token(settings, f"dev-{role}", [role]) for role in sorted(policy.roles)}
