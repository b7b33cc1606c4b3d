"""A loopback OpenID Connect provider speaking the real protocol, for the web page's sign-in.

Discovery (`<issuer>/.well-known/openid-configuration`), an authorization endpoint with a
sign-in form (a person types their user name, as at a real provider; the directory gives their
roles or groups), a token endpoint (authorization code grant: the code once only, bound to its
client, redirect URI and PKCE `S256` challenge), a JWKS with one RS256 key, and an
`end_session_endpoint` (RP-Initiated Logout 1.0: `id_token_hint` verified, the
`post_logout_redirect_uri` registered) unless `end_session=False`.

`flavor` shapes the issuer, the endpoint paths and the ID token's claims like a real provider's
(each from its documentation):
- `generic`: `roles`; the subject is the user name.
- `keycloak`: issuer `<base>/realms/<realm>`, endpoints under `protocol/openid-connect/`; `sub`
  a UUID, `preferred_username`, realm roles in `realm_access.roles`, `azp`, `typ: ID`.
- `okta`: a custom authorization server, issuer `<base>/oauth2/default`, endpoints under `v1/`;
  `sub` a `00u…` id, `preferred_username` an e-mail address, `groups`, `ver: 1`, `idp`, `amr`.
- `entra`: issuer `<base>/<tenant id>/v2.0`, endpoints under `<tenant id>/oauth2/v2.0/`, keys
  at `<tenant id>/discovery/v2.0/keys`; `sub` pairwise, `oid`, `tid`, app `roles`,
  `preferred_username`, `ver: "2.0"`.
`subject_of(user)` and `claims_of(user)` say what a user's token carries.
`tamper_next(**claims)` overrides claims of the next ID token only (a wrong nonce, another
audience), to see Signoff refuse it."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import JWTError
from jose import jwt as jose_jwt

ID_TOKEN_TTL_S = 300
ENTRA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
FLAVORS = ("generic", "keycloak", "okta", "entra")


def _paths(flavor: str) -> tuple[str, dict[str, str]]:
    """(the issuer's path, each endpoint's path) of a flavor."""
    if flavor == "keycloak":
        base = "/realms/acme"
        endpoints = {
            name: f"{base}/protocol/openid-connect/{leaf}"
            for name, leaf in (
                ("authorize", "auth"),
                ("token", "token"),
                ("jwks", "certs"),
                ("logout", "logout"),
            )
        }
        return base, endpoints
    if flavor == "okta":
        base = "/oauth2/default"
        return base, {
            name: f"{base}/v1/{leaf}"
            for name, leaf in (
                ("authorize", "authorize"),
                ("token", "token"),
                ("jwks", "keys"),
                ("logout", "logout"),
            )
        }
    if flavor == "entra":
        tenant = f"/{ENTRA_TENANT}"
        return f"{tenant}/v2.0", {
            "authorize": f"{tenant}/oauth2/v2.0/authorize",
            "token": f"{tenant}/oauth2/v2.0/token",
            "jwks": f"{tenant}/discovery/v2.0/keys",
            "logout": f"{tenant}/oauth2/v2.0/logout",
        }
    return "", {name: f"/{name}" for name in ("authorize", "token", "jwks", "logout")}


def _stable_id(flavor: str, user: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"loopback-oidc:{flavor}:{user}")


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    subject: str
    used: bool = False


@dataclass
class LoopbackOidcProvider:
    """Start with `start()`, stop with `close()`. `users` is the directory: subject → roles."""

    client_id: str
    redirect_uris: set[str] = field(default_factory=set)
    users: dict[str, list[str]] = field(default_factory=dict)
    client_secret: str | None = None
    flavor: str = "generic"
    end_session: bool = True
    post_logout_redirect_uris: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor is one of {FLAVORS}")
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.kid = secrets.token_hex(8)
        self._codes: dict[str, _Code] = {}
        self._tamper: dict[str, Any] = {}
        self._forge_next = False
        self._lock = threading.Lock()
        self.token_requests: list[dict[str, str]] = []
        self.issued_codes: list[str] = []
        self.id_tokens: list[str] = []
        self.logouts: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        issuer_path, self.paths = _paths(self.flavor)
        self.issuer = f"{self.base_url}{issuer_path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LoopbackOidcProvider:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def mint(self, claims: dict[str, Any]) -> str:
        """A token of this issuer with exactly these claims (plus `iss`), signed with its key:
        what a CI system's token endpoint (GitHub Actions' OIDC) hands a job."""
        return jose_jwt.encode(
            {"iss": self.issuer, **claims}, self._pem, algorithm="RS256", headers={"kid": self.kid}
        )

    def tamper_next(self, **claims: Any) -> None:
        """The next ID token gets these claims instead of the right ones."""
        with self._lock:
            self._tamper = dict(claims)

    def forge_next_signature(self) -> None:
        """The next ID token is signed by a key that is not in the JWKS (with the right kid)."""
        with self._lock:
            self._forge_next = True

    # -- the protocol -------------------------------------------------------------------------

    def subject_of(self, user: str) -> str:
        """The `sub` of `user`'s ID tokens."""
        if self.flavor == "keycloak":
            return str(_stable_id("keycloak", user))
        if self.flavor == "okta":
            return "00u" + hashlib.sha256(user.encode()).hexdigest()[:17]
        if self.flavor == "entra":  # pairwise: per application, base64url of 32 bytes
            raw = hashlib.sha256(f"{self.client_id}:{user}".encode()).digest()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()[:43]
        return user

    def claims_of(self, user: str) -> dict[str, Any]:
        """What `user`'s ID tokens say of them, as this flavor of provider says it."""
        roles = list(self.users.get(user, []))
        email = f"{user}@example.test"
        if self.flavor == "keycloak":
            return {
                "typ": "ID",
                "azp": self.client_id,
                "sid": str(uuid.uuid4()),
                "email_verified": True,
                "preferred_username": user,
                "given_name": user.title(),
                "email": email,
                "realm_access": {"roles": [*roles, "default-roles-acme", "offline_access"]},
            }
        if self.flavor == "okta":
            return {
                "ver": 1,
                "jti": f"ID.{secrets.token_urlsafe(16)}",
                "amr": ["pwd"],
                "idp": "00o1n8sbwArJ7OQRw4x7",
                "preferred_username": email,
                "name": user.title(),
                "groups": roles,
            }
        if self.flavor == "entra":
            return {
                "ver": "2.0",
                "tid": ENTRA_TENANT,
                "oid": str(_stable_id("entra", user)),
                "preferred_username": email,
                "name": user.title(),
                "rh": "0.AAAA" + secrets.token_urlsafe(8),
                "uti": secrets.token_urlsafe(16),
                "roles": roles,
            }
        return {"name": user.title(), "email": email, "roles": roles}

    def discovery(self) -> dict[str, Any]:
        paths = self.paths
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.base_url}{paths['authorize']}",
            "token_endpoint": f"{self.base_url}{paths['token']}",
            "jwks_uri": f"{self.base_url}{paths['jwks']}",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email"],
        }
        if self.end_session:
            document["end_session_endpoint"] = f"{self.base_url}{paths['logout']}"
        return document

    def jwks(self) -> dict[str, Any]:
        public = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "n": _b64(public.n),
                    "e": _b64(public.e),
                }
            ]
        }

    def _authorize_error(self, query: dict[str, str]) -> str | None:
        if query.get("client_id") != self.client_id:
            return "unknown client_id"
        if query.get("redirect_uri") not in self.redirect_uris:
            return f"redirect_uri {query.get('redirect_uri')!r} is not registered"
        if query.get("response_type") != "code":
            return "response_type must be code"
        if "openid" not in query.get("scope", "").split():
            return "the scope must include openid"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE with S256 is required"
        if not query.get("state"):
            return "state is required"
        return None

    def issue_code(self, query: dict[str, str], subject: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                client_id=query["client_id"],
                redirect_uri=query["redirect_uri"],
                challenge=query["code_challenge"],
                nonce=query.get("nonce"),
                subject=subject,
            )
            self.issued_codes.append(code)
        return code

    def exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        client_id = basic[0] if basic else form.get("client_id")
        if client_id != self.client_id:
            return 401, {"error": "invalid_client"}
        if self.client_secret is not None and (basic is None or basic[1] != self.client_secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            entry = self._codes.get(form.get("code", ""))
            if entry is None or entry.used:
                return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
            entry.used = True  # once only, even if what follows fails
            tamper, self._tamper = self._tamper, {}
            forge, self._forge_next = self._forge_next, False
        if entry.client_id != client_id or entry.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant", "error_description": "code not for this"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if digest.rstrip(b"=").decode() != entry.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject_of(entry.subject),
            "aud": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + ID_TOKEN_TTL_S,
            "auth_time": now,
            **self.claims_of(entry.subject),
        }
        if entry.nonce is not None:
            claims["nonce"] = entry.nonce
        claims |= tamper
        pem = self._pem
        if forge:
            pem = (
                rsa.generate_private_key(public_exponent=65537, key_size=2048)
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                .decode()
            )
        id_token = jose_jwt.encode(claims, pem, algorithm="RS256", headers={"kid": self.kid})
        self.id_tokens.append(id_token)
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_TTL_S,
            "id_token": id_token,
        }

    def logout(self, query: dict[str, str]) -> tuple[int, str]:
        """RP-initiated logout: (302, where to) or (400, why not). An `id_token_hint` must be
        one of ours for this client (expired is fine, as at real providers); the
        `post_logout_redirect_uri` must be registered."""
        hint = query.get("id_token_hint")
        subject = None
        if hint is not None:
            try:
                claims = jose_jwt.decode(
                    hint,
                    self.jwks(),
                    algorithms=["RS256"],
                    audience=self.client_id,
                    issuer=self.issuer,
                    options={"verify_exp": False, "verify_at_hash": False},
                )
            except JWTError as err:
                return 400, f"id_token_hint refused: {err}"
            subject = claims.get("sub")
        client_id = query.get("client_id")
        if client_id is not None and client_id != self.client_id:
            return 400, "unknown client_id"
        back = query.get("post_logout_redirect_uri")
        if back is not None and back not in self.post_logout_redirect_uris:
            return 400, f"post_logout_redirect_uri {back!r} is not registered"
        with self._lock:
            self.logouts.append(
                {"sub": subject, "post_logout_redirect_uri": back, "client_id": client_id}
            )
        if back is None:
            return 200, "You are signed out."
        state = query.get("state")
        return 302, f"{back}?{urlencode({'state': state})}" if state else back

    # -- HTTP ---------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                paths = provider.paths
                issuer_path = urlsplit(provider.issuer).path
                if parts.path == f"{issuer_path}/.well-known/openid-configuration":
                    self._json(200, provider.discovery())
                elif parts.path == paths["jwks"]:
                    self._json(200, provider.jwks())
                elif parts.path == paths["logout"] and provider.end_session:
                    status, where = provider.logout(query)
                    if status == 302:
                        self._redirect(where)
                    else:
                        self._html(status, f"<p id='error'>{html.escape(where)}</p>")
                elif parts.path == paths["authorize"]:
                    error = provider._authorize_error(query)
                    if error:
                        self._html(400, f"<p id='error'>{html.escape(error)}</p>")
                        return
                    hidden = "".join(
                        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                        for k, v in query.items()
                    )
                    self._html(
                        200,
                        "<h1>Example identity provider</h1>"
                        f'<form method="post" action="{paths["authorize"]}">'
                        f"{hidden}"
                        '<label for="username">User name</label>'
                        '<input id="username" name="username" autocomplete="off">'
                        '<button id="provider-sign-in" type="submit">Sign in</button>'
                        "</form>",
                    )
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path == provider.paths["authorize"]:
                    error = provider._authorize_error(form)
                    user = form.get("username", "")
                    if error or user not in provider.users:
                        self._html(400, f"<p id='error'>{html.escape(error or 'no such user')}</p>")
                        return
                    code = provider.issue_code(form, user)
                    answer = urlencode({"code": code, "state": form["state"]})
                    self._redirect(f"{form['redirect_uri']}?{answer}")
                elif self.path == provider.paths["token"]:
                    basic = None
                    header = self.headers.get("Authorization", "")
                    if header.startswith("Basic "):
                        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                        basic = (user, password)
                    provider.token_requests.append(form)
                    status, body = provider.exchange(form, basic)
                    self._json(status, body)
                else:
                    self._json(404, {"error": "not_found"})

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _html(self, status: int, body: str) -> None:
                data = f"<!doctype html><html><body>{body}</body></html>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
