"""Authenticating as the GitHub App: its JWT, exchanged for installation tokens, cached.

GitHub's rules (REST API 2022-11-28, "Authenticating as a GitHub App"):

- the App JWT is RS256-signed with the App's private key, `iss` the App id, `iat` 60 s in the
  past (against clock drift), `exp` at most 10 minutes after it is made; Signoff's expire in
  9 minutes;
- `POST /app/installations/{installation_id}/access_tokens` with `Authorization: Bearer <JWT>`
  answers `201 {"token", "expires_at", ...}`: a token of that installation, valid for an hour.

Tokens are cached per installation until `REFRESH_BEFORE_S` before their expiry, so a worker
answering many deployments asks GitHub for one token an hour per installation. Neither the key
nor a token is ever logged, and neither appears in a `repr`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jose import jwt
from temporalio.exceptions import ApplicationError

from workflows.ci.github import API_VERSION
from workflows.ci.github import _message as github_message
from workflows.errors import GITHUB_REFUSED, GITHUB_UNAVAILABLE
from workflows.tls import verifying_context

if TYPE_CHECKING:
    from workflows.settings import WorkerSettings

JWT_BACKDATE_S = 60
JWT_TTL_S = 9 * 60
"""`exp - now`: under GitHub's 10-minute limit, with a minute to spare for the clocks."""
REFRESH_BEFORE_S = 5 * 60
"""A cached installation token is replaced this long before it expires."""
TIMEOUT_S = 30.0


def read_private_key(text: str) -> str:
    """The App's private key as PEM text (PKCS#1, as GitHub generates it, or PKCS#8), with
    literal `\\n` escapes read as newlines (environment files often hold it on one line).
    ValueError, never showing the key, when it is not an RSA private key."""
    pem = text.strip()
    if "\n" not in pem and "\\n" in pem:
        pem = pem.replace("\\n", "\n")
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(
            "SIGNOFF_GITHUB_APP_PRIVATE_KEY is not a PEM private key; set it to the content of "
            "the .pem file GitHub generated for the App"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SIGNOFF_GITHUB_APP_PRIVATE_KEY must be the App's RSA private key")
    return pem + "\n"


@dataclass
class _Token:
    value: str = field(repr=False)
    expires_at: float


class GithubAppAuth:
    """The App's credentials and its installation tokens. One per worker process; every call
    opens its own connection, so it serves activities on any event loop."""

    def __init__(
        self,
        api_url: str,
        app_id: str,
        private_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.app_id = app_id
        self._key = read_private_key(private_key)
        self._transport = transport
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> GithubAppAuth | None:
        """None when the App is not configured (no id or no key)."""
        key = settings.github_app_private_key
        if not settings.github_app_id or key is None:
            return None
        return cls(settings.github_api_url, settings.github_app_id, key.get_secret_value())

    def __repr__(self) -> str:  # never the key or a token
        return f"GithubAppAuth({self.api_url!r}, app_id={self.app_id!r})"

    def app_jwt(self) -> str:
        now = int(self._clock())
        claims = {"iat": now - JWT_BACKDATE_S, "exp": now + JWT_TTL_S, "iss": self.app_id}
        return jwt.encode(claims, self._key, algorithm="RS256")

    def forget(self, installation_id: str) -> None:
        """Drop the cached token (GitHub said it is no longer valid)."""
        self._tokens.pop(installation_id, None)

    async def installation_token(self, installation_id: str) -> str:
        """A token of the installation: the cached one while it has more than
        `REFRESH_BEFORE_S` to live, else a new one (one exchange at a time per installation)."""
        cached = self._fresh(installation_id)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._fresh(installation_id)
            if cached is not None:
                return cached
            token = await self._exchange(installation_id)
            self._tokens[installation_id] = token
            return token.value

    def _fresh(self, installation_id: str) -> str | None:
        token = self._tokens.get(installation_id)
        if token is None or token.expires_at - self._clock() <= REFRESH_BEFORE_S:
            return None
        return token.value

    async def _exchange(self, installation_id: str) -> _Token:
        path = f"/app/installations/{quote(installation_id, safe='')}/access_tokens"
        response = await self.send("POST", path, token=self.app_jwt())
        status = response.status_code
        if status == 201 or status == 200:
            return self._token_of(response)
        message = github_message(response)
        if status >= 500 or status == 429:
            raise ApplicationError(
                f"GitHub could not issue an installation token (HTTP {status}): {message}; "
                "retrying",
                type=GITHUB_UNAVAILABLE,
            )
        hint = {
            401: "check SIGNOFF_GITHUB_APP_ID and SIGNOFF_GITHUB_APP_PRIVATE_KEY",
            404: f"the App is not installed as installation {installation_id} (any more)",
        }.get(status, "")
        raise ApplicationError(
            f"GitHub refused the App an installation token (HTTP {status}): {message}"
            + (f"; {hint}" if hint else ""),
            type=GITHUB_REFUSED,
            non_retryable=True,
        )

    @staticmethod
    def _token_of(response: httpx.Response) -> _Token:
        try:
            body: Any = response.json()
            value, expires = body["token"], body["expires_at"]
            expires_at = datetime.fromisoformat(str(expires).replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError):
            raise ApplicationError(
                "GitHub's installation token answer has no token and expires_at; retrying",
                type=GITHUB_UNAVAILABLE,
            ) from None
        if not isinstance(value, str) or not value:
            raise ApplicationError("GitHub answered an empty token", type=GITHUB_UNAVAILABLE)
        return _Token(value=value, expires_at=expires_at)

    async def send(self, method: str, path: str, *, token: str, json: Any = None) -> httpx.Response:
        """One call to GitHub's API as the App (`token`: its JWT or an installation token);
        never follows a redirect. Unreachable: a retryable error naming the setting."""
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "signoff",
            "Authorization": f"Bearer {token}",
        }
        try:
            async with httpx.AsyncClient(
                base_url=self.api_url,
                headers=headers,
                timeout=TIMEOUT_S,
                transport=self._transport,
                follow_redirects=False,
                verify=verifying_context(),
            ) as client:
                return await client.request(method, path, json=json)
        except httpx.TransportError as err:
            raise ApplicationError(
                f"GitHub at {self.api_url} is not reachable ({type(err).__name__}); check "
                "SIGNOFF_GITHUB_API_URL and the network",
                type=GITHUB_UNAVAILABLE,
            ) from None
