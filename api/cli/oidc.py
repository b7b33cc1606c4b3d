"""The bearer token of CLI client commands: `SIGNOFF_TOKEN`, or a GitHub Actions job's OIDC
token, fetched again before it expires."""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    from api.settings import ApiSettings

_REFRESH_MARGIN_S = 60.0


class TokenError(RuntimeError):
    """No token can be had; the message says why and what to do."""


class _Retry(Exception):
    """A transient failure of one OIDC token request; the message says what happened."""


def jwt_expiry(token: str) -> float | None:
    """The `exp` of a JWT, read without verifying it (only to know when to fetch a new one)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
    except (IndexError, ValueError, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) else None


def _actions_endpoint(settings: ApiSettings) -> tuple[str, str]:
    """`ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`, or a TokenError saying what is missing."""
    url = settings.actions_id_token_request_url
    secret = settings.actions_id_token_request_token
    request_token = secret.get_secret_value() if secret else None
    if not url and not request_token:
        raise TokenError(
            "no token: export SIGNOFF_TOKEN (for development: "
            "`export SIGNOFF_TOKEN=$(signoff token --sub me --role data-scientist)`), or, in "
            "a GitHub Actions job, grant `permissions: id-token: write` so the job's OIDC "
            "token is used"
        )
    if not url or not request_token:
        missing = "ACTIONS_ID_TOKEN_REQUEST_URL" if not url else "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
        raise TokenError(
            f"no token: SIGNOFF_TOKEN is not set and {missing} is missing, so the GitHub "
            "Actions OIDC token cannot be requested; grant the job "
            "`permissions: id-token: write`, or export SIGNOFF_TOKEN"
        )
    return url, request_token


class TokenSource:
    """Where client commands get their bearer token: `SIGNOFF_TOKEN`, else, inside a GitHub
    Actions job with `permissions: id-token: write`, the job's OIDC token for the audience
    `SIGNOFF_OIDC_AUDIENCE` (default `signoff`). An OIDC token lives minutes, so it is fetched
    again when it is about to expire and when the API answers 401. Raises TokenError when no
    token can be had."""

    def __init__(self, settings: ApiSettings) -> None:
        self._static = settings.token.get_secret_value() if settings.token else None
        self._token: str | None = None
        self._oidc: tuple[str, str] | None = None
        self.audience = settings.oidc_audience
        if not self._static:
            self._oidc = _actions_endpoint(settings)

    @property
    def refreshable(self) -> bool:
        return self._static is None

    def current(self) -> str:
        if self._static is not None:
            return self._static
        if self._token is None or self._expiring(self._token):
            self._token = self._fetch()
        return self._token

    def refresh(self) -> str:
        self._token = None
        return self.current()

    @staticmethod
    def _expiring(token: str) -> bool:
        exp = jwt_expiry(token)
        return exp is not None and exp - time.time() < _REFRESH_MARGIN_S

    def _fetch(self) -> str:
        """`GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>` with the request token as bearer,
        as GitHub's own toolkit does; three tries when the endpoint fails transiently."""
        assert self._oidc is not None, "only an OIDC token source fetches"
        url, request_token = self._oidc
        separator = "&" if "?" in url else "?"
        full = f"{url}{separator}audience={quote(self.audience, safe='')}"
        problem = ""
        for attempt in range(3):
            if attempt:
                time.sleep(attempt)
            try:
                return self._ask(full, request_token)
            except _Retry as err:
                problem = str(err)
        raise TokenError(f"could not get {self._what}: {problem}")

    @property
    def _what(self) -> str:
        return f"the GitHub Actions OIDC token (audience {self.audience!r})"

    def _ask(self, url: str, request_token: str) -> str:
        """One request; the answer is `{"value": "<jwt>"}`."""
        try:
            response = httpx.get(
                url,
                headers={"Authorization": f"Bearer {request_token}", "Accept": "application/json"},
                timeout=10.0,
            )
        except httpx.HTTPError as err:
            raise _Retry(f"cannot reach ACTIONS_ID_TOKEN_REQUEST_URL ({err})") from None
        if response.status_code >= 500:
            raise _Retry(f"ACTIONS_ID_TOKEN_REQUEST_URL answered {response.status_code}")
        if response.status_code != 200:
            raise TokenError(
                f"could not get {self._what}: ACTIONS_ID_TOKEN_REQUEST_URL answered "
                f"{response.status_code} {response.text[:200]}"
            )
        try:
            value = response.json().get("value")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise TokenError(
                f'could not get {self._what}: the answer carries no token (no "value")'
            )
        return value
