"""What the web page's own routes (`/ui/api/*`, `/ui/auth/*`) read and answer."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class WebSessionInfo(BaseModel):
    """Who is signed in to the page (if anyone), and which sign-ins it offers."""

    signed_in: bool
    subject: str | None = None
    roles: list[str] = Field(default_factory=list)
    csrf_token: str | None = Field(
        None, description="Send it in X-CSRF-Token with every state-changing call."
    )
    expires_timestamp: int | None = Field(None, description="The session's absolute end (ms).")
    oidc_sign_in: bool = Field(description="The operator's identity provider is configured.")
    dev_sign_in: bool = Field(description="The development sign-in is offered (signoff dev).")
    dev_roles: list[str] = Field(
        default_factory=list, description="The policy's roles, for the development sign-in."
    )


Subject = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]


class DevSignIn(BaseModel):
    """The development sign-in: any subject, roles from the policy."""

    model_config = ConfigDict(extra="forbid")

    subject: Subject
    roles: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=64
    )


class SignedOut(BaseModel):
    signed_out: bool = True
