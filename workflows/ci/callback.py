"""The callback token a CI job is given to report its check's outcome.

The token is derived, never stored: an HMAC-SHA256, under the server's callback key
(`SIGNOFF_CALLBACK_KEY`), of the request id and the check id. The dispatch activity computes
it to hand to the job; the API's callback route computes it again and compares. Neither
workflow history, nor Temporal's view of a running activity, nor the ledger holds it (the
workflow keeps its SHA-256 to accept it once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from pydantic import SecretStr

CALLBACK_PATH = "/api/2.0/signoff/ci/callback"
"""Where CI jobs report, under `WorkerSettings.callback_base_url`."""

NO_CALLBACK_KEY = (
    "SIGNOFF_CALLBACK_KEY is not set: CI checks need it on the worker and the API (the same "
    "value, at least 32 characters, e.g. from `python -c 'import secrets; "
    "print(secrets.token_urlsafe(32))'`) to give each CI job a callback token"
)

_CONTEXT = b"signoff-ci-callback-token"


def callback_token(key: SecretStr, *, request_id: str, check_id: str) -> str:
    """The token of one check of one request (URL-safe base64 without padding)."""
    message = b"\x00".join((_CONTEXT, request_id.encode(), check_id.encode()))
    mac = hmac.new(key.get_secret_value().encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def token_matches(key: SecretStr, token: str, *, request_id: str, check_id: str) -> bool:
    """Whether `token` is the one issued for that check of that request (constant time)."""
    expected = callback_token(key, request_id=request_id, check_id=check_id)
    return hmac.compare_digest(token.encode(), expected.encode())
