"""Every `ApplicationError` type Signoff raises or matches, in one place.

The values are in workflow histories (an activity's failure, a refused update) and in the
retry policies that name the non-retryable ones, so a value here never changes; a new kind
of error gets a new constant.
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

# -- decisions and callbacks the workflow refuses (the API maps them to HTTP statuses) ------

REFUSED = "Refused"
"""A decision the policy does not allow, or a CI callback without a valid token or role
(the API answers 403)."""
NOT_OPEN = "NotOpen"
"""A decision on a request that is no longer open, or a CI callback for a check that is not
waiting for one (the API answers 400)."""
INVALID_CALLBACK = "InvalidCallback"
"""A CI callback naming no CI check of the request (the API answers 400)."""

# -- applying the transition in MLflow --------------------------------------------------------

STALE_REQUEST = "StaleRequest"
"""An apply that must not be retried: the version is gone or was moved meanwhile."""
MLFLOW_REFUSED = "MlflowRefused"
"""MLflow refused the transition itself (an invalid request): not retried."""
ARTIFACTS_CHANGED = "ArtifactsChanged"
"""The version's artifacts are not the ones pinned when the request opened: not applied."""

# -- validation checks ----------------------------------------------------------------------

HTTP_CHECK_UNAVAILABLE = "HttpCheckUnavailable"
"""An http check whose URL could not give an answer yet (down, 5xx, 408, 429): retried with
backoff until the check's timeout."""

# -- CI checks ------------------------------------------------------------------------------

CI_REFUSED = "CiRefused"
"""A CI system's refusal that retrying cannot fix (credentials, no such job): not retried."""
CI_UNAVAILABLE = "CiUnavailable"
"""A CI failure worth retrying: unreachable, 5xx, rate limited."""
CI_NO_CLIENT = "CiNoClient"
"""This worker has no client for the check's CI system (not retried)."""
CI_NO_CALLBACK_KEY = "CiNoCallbackKey"
"""No `SIGNOFF_CALLBACK_KEY`: a CI job cannot be given a callback token (not retried)."""

# -- GitHub environments (the App answering deployment protection rules) --------------------

GITHUB_REFUSED = "GithubRefused"
"""GitHub refused the App's call in a way retrying cannot fix (no App configured, a key GitHub
does not accept, the installation gone, no deployment waiting): not retried."""
GITHUB_UNAVAILABLE = "GithubUnavailable"
"""GitHub could not take the App's call just now (unreachable, 5xx, rate limited, an expired
installation token): retried with backoff."""

# -- webhooks -------------------------------------------------------------------------------

UNKNOWN_EVENT = "UNKNOWN_EVENT"
"""A webhook event name Signoff does not announce."""


def refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=REFUSED)


def not_open(message: str) -> ApplicationError:
    return ApplicationError(message, type=NOT_OPEN)


def invalid_callback(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_CALLBACK)


def ci_refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=CI_REFUSED, non_retryable=True)


def ci_unavailable(message: str, *details: object) -> ApplicationError:
    return ApplicationError(message, *details, type=CI_UNAVAILABLE, non_retryable=False)


def cause_message(err: ActivityError) -> str:
    """What went wrong in a failed activity, as its innermost application error says it."""
    cause = err.cause
    while cause is not None and cause.cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return getattr(cause, "message", None) or str(cause or err)
