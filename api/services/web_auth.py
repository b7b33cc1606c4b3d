"""Signing people in to the web page: OpenID Connect (authorization code flow with PKCE) against
the provider the operator configures, the development sign-in of `signoff dev`, and the
server-side sessions both end in.

- Sign-in: `begin_sign_in` records a sign-in under way in the ledger (state, nonce and PKCE
  code verifier, keyed by the hash of a random login id the browser keeps in a short-lived
  cookie) and returns the provider's authorization URL (Authlib builds it: `S256` code
  challenge, `state`, `nonce`). `finish_sign_in` takes that record (once: a replayed callback
  finds nothing), checks `state`, exchanges the code (Authlib; the code verifier proves the
  exchange comes from the browser that began), and has `TokenVerifier.verify_id_token` (the
  same code that verifies API tokens) check the ID token: signature by `kid` from the JWKS,
  issuer, audience = client id, expiry, nonce. Subject and roles come out as for API tokens.
- Sessions: an opaque random id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` outside
  `signoff dev`); the ledger stores its SHA-256 with the subject, roles and a CSRF token, with
  an idle and an absolute lifetime. Every state-changing call authenticated by the cookie must
  carry the CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:  # authlib is imported on the first sign-in: most APIs never offer one
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from api.auth import AuthenticationError, TokenVerifier
from api.services.web_logout import end_session_url, seal_id_token, unseal_id_token
from api.settings import ApiSettings, check_key_source_url
from policies import Principal
from workflows.ledger import Ledger, WebSession
from workflows.tls import verifying_context

log = logging.getLogger(__name__)

SESSION_COOKIE = "signoff_session"
LOGIN_COOKIE = "signoff_login"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_MAX_AGE_S = 600
"""A sign-in must come back from the provider within this long."""
DISCOVERY_MAX_AGE_S = 3600.0
PROVIDER_TIMEOUT_S = 10.0
DEV_ISSUER = "signoff-dev-login"
"""The `issuer` of sessions opened by the development sign-in."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInError(Exception):
    """The sign-in cannot complete; the message says why, for the person signing in."""


class SessionRefused(Exception):
    """A call authenticated by the session cookie is refused: `status` 401 (no live session) or
    403 (a state-changing call without the session's CSRF token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def now_ms() -> int:
    return int(time.time() * 1000)


RETURN_TO_PREFIXES = ("/ui/", "/mlflow/")
"""Where a sign-in may land: the web page, or MLflow's UI through the door."""


def safe_return_to(value: str | None) -> str:
    """Where to land after sign-in: a path of this page or of MLflow's UI under `/mlflow/`
    (never another origin)."""
    if not value or not value.startswith(RETURN_TO_PREFIXES) or "\\" in value:
        return "/ui/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/ui/"
    return value[:2000]


@dataclass(frozen=True)
class ProviderMetadata:
    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str | None


class WebSignIn:
    """The page's OpenID Connect client, one per process (built on first use)."""

    def __init__(self, settings: ApiSettings, verifier: TokenVerifier, ledger: Ledger) -> None:
        self.settings = settings
        self.verifier = verifier
        self.ledger = ledger
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0

    # -- the provider -------------------------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        issuer = self.settings.web_oidc_issuer
        if not self.settings.web_oidc_enabled or issuer is None:
            raise SignInError(
                "no identity provider is configured: set SIGNOFF_WEB_OIDC_ISSUER and "
                "SIGNOFF_WEB_OIDC_CLIENT_ID"
            )
        if (
            self._metadata is not None
            and time.monotonic() - self._metadata_at < DISCOVERY_MAX_AGE_S
        ):
            return self._metadata
        url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(
                timeout=PROVIDER_TIMEOUT_S, verify=verifying_context()
            ) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
            document = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as err:
            raise SignInError(
                f"the identity provider's discovery document ({url}) failed: {err}"
            ) from err
        if not isinstance(document, dict):
            raise SignInError(f"the identity provider's discovery document ({url}) is unreadable")
        if document.get("issuer") != issuer:
            raise SignInError(f"{url} names another issuer than {issuer!r}")
        try:
            metadata = ProviderMetadata(
                authorization_endpoint=_endpoint(document, "authorization_endpoint"),
                token_endpoint=_endpoint(document, "token_endpoint"),
                end_session_endpoint=(
                    _endpoint(document, "end_session_endpoint")
                    if document.get("end_session_endpoint")
                    else None
                ),
            )
        except ValueError as err:
            raise SignInError(str(err)) from err
        self._metadata, self._metadata_at = metadata, time.monotonic()
        return metadata

    def _client(self) -> AsyncOAuth2Client:
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        secret = self.settings.web_oidc_client_secret
        return AsyncOAuth2Client(
            client_id=self.settings.web_oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=self.settings.web_oidc_scopes,
            redirect_uri=self.settings.web_redirect_uri,
            code_challenge_method="S256",
            timeout=PROVIDER_TIMEOUT_S,
            follow_redirects=False,
        )

    # -- sign-in ------------------------------------------------------------------------------

    async def begin_sign_in(self, return_to: str | None) -> tuple[str, str]:
        """(the login id for the browser's login cookie, the provider's authorization URL)."""
        metadata = await self.metadata()
        login_id = secrets.token_urlsafe(32)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(48)
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                metadata.authorization_endpoint,
                state=state,
                nonce=nonce,
                code_verifier=code_verifier,
            )
        await self.ledger.web_sessions.begin_login(
            login_id,
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,
            return_to=safe_return_to(return_to),
            now_ms=now_ms(),
            max_age_ms=LOGIN_MAX_AGE_S * 1000,
        )
        return login_id, url

    async def finish_sign_in(
        self, login_id: str | None, *, state: str | None, code: str | None
    ) -> tuple[Principal, str, str | None]:
        """(who signed in, where to go next, the ID token when the provider offers
        RP-initiated logout); SignInError saying why not."""
        if not login_id:
            raise SignInError(
                "this browser has no sign-in under way (it may have taken longer than "
                f"{LOGIN_MAX_AGE_S // 60} minutes, or cookies are blocked)"
            )
        login = await self.ledger.web_sessions.take_login(
            login_id, now_ms=now_ms(), max_age_ms=LOGIN_MAX_AGE_S * 1000
        )
        if login is None:
            raise SignInError("this sign-in was already used or has expired")
        if not state or not hmac.compare_digest(state.encode(), login.state.encode()):
            raise SignInError("the answer of the identity provider is not for this sign-in (state)")
        if not code:
            raise SignInError("the identity provider sent no authorization code")
        metadata = await self.metadata()
        from authlib.integrations.base_client.errors import OAuthError
        from authlib.oauth2.rfc6749.errors import OAuth2Error

        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    metadata.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=login.code_verifier,
                )
        except (OAuthError, OAuth2Error) as err:
            raise SignInError(
                f"the identity provider refused the authorization code ({err.error})"
            ) from err
        except (httpx.HTTPError, ValueError) as err:
            raise SignInError(f"the identity provider's token endpoint failed: {err}") from err
        id_token = token.get("id_token") if isinstance(token, dict) else None
        if not isinstance(id_token, str):
            raise SignInError("the identity provider answered without an ID token")
        try:
            principal = await self.verifier.verify_id_token(id_token, nonce=login.nonce)
        except AuthenticationError as err:
            raise SignInError(f"the ID token was refused: {err}") from err
        return principal, login.return_to, id_token if metadata.end_session_endpoint else None

    async def abandon_sign_in(self, login_id: str | None) -> None:
        """The provider answered with an error: the sign-in under way is spent."""
        if login_id:
            await self.ledger.web_sessions.take_login(
                login_id, now_ms=now_ms(), max_age_ms=LOGIN_MAX_AGE_S * 1000
            )

    # -- sessions -----------------------------------------------------------------------------

    async def open_session(
        self, principal: Principal, issuer: str, id_token: str | None = None
    ) -> tuple[str, WebSession]:
        session_id = secrets.token_urlsafe(32)
        session = await self.ledger.web_sessions.create(
            session_id,
            subject=principal.sub,
            roles=principal.roles,
            issuer=issuer,
            csrf_token=secrets.token_urlsafe(32),
            now_ms=now_ms(),
            lifetime_ms=self.settings.web_session_max_s * 1000,
            id_token_enc=seal_id_token(session_id, id_token) if id_token else None,
        )
        log.info("web sign-in of %s (%s)", principal.sub, issuer)
        return session_id, session

    async def session(self, session_id: str | None) -> WebSession | None:
        if not session_id or len(session_id) > 256:
            return None
        return await self.ledger.web_sessions.get(
            session_id, now_ms=now_ms(), idle_ms=self.settings.web_session_idle_s * 1000
        )

    async def end_session(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 256:
            await self.ledger.web_sessions.end(session_id)

    async def provider_sign_out_url(self, session_id: str, session: WebSession) -> str | None:
        """Where the browser signs out at the provider too (RP-initiated logout), for a session
        opened by the provider's sign-in whose discovery document has an
        `end_session_endpoint`; None otherwise (the session ends here only)."""
        issuer = self.settings.web_oidc_issuer
        if not self.settings.web_oidc_enabled or session.issuer != issuer:
            return None
        try:
            metadata = await self.metadata()
        except SignInError as err:
            log.warning("sign-out at the identity provider skipped: %s", err)
            return None
        if metadata.end_session_endpoint is None:
            return None
        return end_session_url(
            metadata.end_session_endpoint,
            id_token=unseal_id_token(session_id, session.id_token_enc),
            client_id=self.settings.web_oidc_client_id,
            public_url=self.settings.callback_base_url,
        )

    def set_session_cookie(self, response: Any, session_id: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=self.settings.web_session_max_s,
            path="/",
            secure=self.settings.web_cookie_is_secure,
            httponly=True,
            samesite="lax",
        )

    def set_login_cookie(self, response: Any, login_id: str) -> None:
        response.set_cookie(
            LOGIN_COOKIE,
            login_id,
            max_age=LOGIN_MAX_AGE_S,
            path="/ui/auth/",
            secure=self.settings.web_cookie_is_secure,
            httponly=True,
            samesite="lax",  # sent on the provider's top-level redirect back
        )

    def clear_cookie(self, response: Any, name: str) -> None:
        path = "/ui/auth/" if name == LOGIN_COOKIE else "/"
        response.delete_cookie(
            name,
            path=path,
            secure=self.settings.web_cookie_is_secure,
            httponly=True,
            samesite="lax",
        )


def _endpoint(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise ValueError(f"the identity provider's discovery document has no {name}")
    return check_key_source_url(value, f"the provider's {name}")


def web_sign_in(app_state: Any) -> WebSignIn:
    """The process's `WebSignIn` (kept on the app's state), built on first use from its
    services."""
    found: WebSignIn | None = getattr(app_state, "web_sign_in", None)
    if found is None:
        services = app_state.services
        found = WebSignIn(services.settings, services.verifier, services.ledger)
        app_state.web_sign_in = found
    return found


async def session_principal(
    sign_in: WebSignIn, *, method: str, session_id: str | None, csrf_token: str | None
) -> Principal | None:
    """The principal of the session cookie, for API routes called by the page. None when the
    request carries no session cookie (the caller then asks for a bearer token);
    SessionRefused when the session is gone, or when a state-changing call lacks the
    session's CSRF token."""
    if session_id is None:
        return None
    session = await sign_in.session(session_id)
    if session is None:
        raise SessionRefused(
            401, "your web session has ended (signed out or expired); sign in again"
        )
    if method not in SAFE_METHODS and not session.csrf_matches(csrf_token):
        raise SessionRefused(
            403,
            "a state-changing call made with the session cookie must carry the session's CSRF "
            f"token in the {CSRF_HEADER} header",
        )
    return Principal(sub=session.subject, roles=session.roles)
