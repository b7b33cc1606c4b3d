"""Identity rules: roles for CI pipelines, from the claims of their OIDC tokens.

A GitHub Actions job (issuer `https://token.actions.githubusercontent.com`) or a Jenkins build
(the OIDC provider plugin) proves *where* it runs, not *who* it is: its token carries claims
such as `repository_id`, `environment`, `ref` or `job_workflow_ref`, and no roles. The policy's
top-level `identities:` list turns those claims into roles:

    identities:
      - issuer: https://token.actions.githubusercontent.com
        claims:
          repository_id: "123456789"     # ids, not names: a renamed or re-created repository
          environment: production        # with the same name must not inherit the role
          ref: refs/heads/main
        roles: [ci-deployer]

A rule matches a token from its `issuer` when every listed claim matches exactly: the token's
claim is a string equal to the value (or to one of the values, when a list is given). Claims are
compared as text, never coerced, so YAML values must be strings: `"123456789"` in quotes.
A token gets the roles of every rule it matches, and none when it matches none.

For an issuer with at least one rule, these rules are the *only* source of roles: whatever
roles claim its tokens carry is ignored (a CI job must not be able to name its own roles).
Issuers without rules keep their roles claim (see `roles_for_claims`).

Imports the standard library and pydantic only, like the rest of the policy schema, so the
models can travel inside Temporal workflow inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from policies.schema import Policy

__all__ = ["IdentityRule", "identity_issues", "roles_for_claims"]

_Loc = tuple[str | int, ...]


def _claim_values(value: Any) -> list[str]:
    """One text value or a list of them, always stored as a list."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("list at least one value the claim may have")
    for item in items:
        if isinstance(item, bool):
            raise ValueError(
                f"YAML reads this value as {str(item).lower()}, not text; claims are compared "
                "as text, so write the value in quotes"
            )
        if isinstance(item, int | float):
            raise ValueError(
                f"{item!r} is a number, not text; claims are compared as text, so write the "
                f'value in quotes, e.g. "{item}"'
            )
        if not isinstance(item, str):
            raise ValueError("must be a text value or a list of text values")
        if not item:
            raise ValueError("must not be empty; an empty claim identifies nothing")
    return list(items)


ClaimValues = Annotated[list[str], BeforeValidator(_claim_values)]
"""The values a claim may have; written in YAML as one string or a list of strings."""


class IdentityRule(BaseModel):
    """`issuer` + every claim in `claims` matching => the token holds `roles`."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(description="Exactly the `iss` of the tokens this rule applies to.")
    claims: dict[Annotated[str, Field(min_length=1)], ClaimValues]
    roles: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not an issuer URL; write the tokens' iss exactly, e.g. "
                "https://token.actions.githubusercontent.com"
            )
        return value

    @field_validator("claims")
    @classmethod
    def _some_claims(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError(
                "list at least one claim to match; a rule without claims would grant its roles "
                "to every token of the issuer (for GitHub: every repository on GitHub)"
            )
        return value

    def matches(self, issuer: str, claims: Mapping[str, Any]) -> bool:
        if issuer != self.issuer:
            return False
        for name, allowed in self.claims.items():
            actual = claims.get(name)
            if not isinstance(actual, str) or actual not in allowed:
                return False
        return True


def roles_for_claims(policy: Policy, issuer: str, claims: Mapping[str, Any]) -> list[str] | None:
    """The roles the policy's identity rules grant a verified token from `issuer`.

    None when the policy has no rule for the issuer at all (the caller then falls back to the
    issuer's roles claim); otherwise the roles of every matching rule, in rule order, without
    repeats, and an empty list when no rule matches.
    """
    rules = [rule for rule in policy.identities if rule.issuer == issuer]
    if not rules:
        return None
    roles: list[str] = []
    for rule in rules:
        if rule.matches(issuer, claims):
            roles.extend(role for role in rule.roles if role not in roles)
    return roles


def identity_issues(
    roles: Mapping[str, Any], rules: Iterable[tuple[int, IdentityRule]]
) -> list[tuple[_Loc, str]]:
    """Roles named by identity rules that are not defined under `roles:`, each located at the
    offending list item (the loader turns the location into a line)."""
    issues: list[tuple[_Loc, str]] = []
    defined = ", ".join(roles) or "none"
    for rule_index, rule in rules:
        for role_index, role in enumerate(rule.roles):
            if role not in roles:
                issues.append(
                    (
                        ("identities", rule_index, "roles", role_index),
                        f"'{role}' is not a role defined under roles (defined: {defined})",
                    )
                )
    return issues
