"""What can go wrong in a service, said in the domain's words. No HTTP here: `api.errors`
turns each kind into its status and MLflow's error code, in one place."""

from __future__ import annotations

from typing import Any, Literal


class ServiceError(Exception):
    """A refusal or failure a caller can act on. `details` are extra fields of the answer
    (JSON values), e.g. the open request a conflicting one collides with."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class Invalid(ServiceError):
    """The request is malformed, or the state of things does not allow it."""


class Refused(ServiceError):
    """The principal may not do this (permissions, the policy)."""


class NotFound(ServiceError):
    """What the request names does not exist (or the caller may not know that it does)."""


class Conflict(ServiceError):
    """It collides with something that exists or is happening now."""


Dependency = Literal["mlflow", "temporal", "worker", "configuration", "slack", "ledger"]


class Unavailable(ServiceError):
    """A service Signoff depends on cannot be reached just now; retrying can succeed."""

    def __init__(
        self, message: str, *, which: Dependency, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.which = which


class UpstreamFailed(ServiceError):
    """A service Signoff depends on answered with an error that is nobody's input mistake."""

    def __init__(self, message: str, *, which: Dependency) -> None:
        super().__init__(message)
        self.which = which
