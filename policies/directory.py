"""The directory: who a chat or ticketing tool's user is, and which roles they hold.

An inbound decision (`POST /api/2.0/signoff/hooks/decisions/{source}`) names its acting user as
the tool knows them (a Slack member id, a Jira account). The policy's top-level `directory:`
maps those users, per source, to a Signoff subject and roles:

    directory:
      slack:                                  # the {source} of the hook URL
        U024BE7LH: {user: carol, roles: [ml-lead]}
        dave: [ml-lead]                       # short form: the tool's name is the subject

The mapped principal then goes through exactly the rules an API caller does (quorum, no
self-approval, required level), so the subject must be the one the person's JWTs carry. A user
the directory does not list for the source holds no roles there, whatever the tool says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

if TYPE_CHECKING:
    from policies.schema import Policy, Principal

__all__ = ["DirectoryEntry", "directory_issues", "principal_for"]

_Loc = tuple[str | int, ...]
SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class DirectoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(
        None, min_length=1, description="The Signoff subject; the tool's user name when absent."
    )
    roles: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


def _entry(value: Any) -> Any:
    """The short form `name: [role, ...]` is an entry with roles only."""
    if isinstance(value, list):
        return {"roles": value}
    return value


Entry = Annotated[DirectoryEntry, BeforeValidator(_entry)]
SourceName = Annotated[str, Field(pattern=SOURCE_PATTERN)]
Directory = dict[SourceName, dict[Annotated[str, Field(min_length=1)], Entry]]


def principal_for(policy: Policy, source: str, user: str) -> Principal | None:
    """The principal a source's user acts as; None when the directory does not list them."""
    from policies.schema import Principal

    entry = policy.directory.get(source, {}).get(user)
    if entry is None:
        return None
    return Principal(sub=entry.user or user, roles=list(entry.roles))


def directory_issues(
    roles: Mapping[str, Any], directory: Mapping[str, Mapping[str, DirectoryEntry]]
) -> list[tuple[_Loc, str]]:
    """Roles named in the directory that are not defined under `roles:`."""
    issues: list[tuple[_Loc, str]] = []
    defined = ", ".join(roles) or "none"
    for source, users in directory.items():
        for user, entry in users.items():
            issues.extend(_undefined(roles, defined, ("directory", source, user), entry.roles))
    return issues


def _undefined(
    roles: Mapping[str, Any], defined: str, loc: _Loc, named: Iterable[str]
) -> list[tuple[_Loc, str]]:
    return [
        ((*loc, "roles", index), f"'{role}' is not a role defined under roles (defined: {defined})")
        for index, role in enumerate(named)
        if role not in roles
    ]
