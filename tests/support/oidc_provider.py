"""A loopback OpenID Connect provider speaking the real protocol, for the web page's sign-in.

Discovery (`/.well-known/openid-configuration`), an authorization endpoint with a sign-in form
(a person types their user name, as at a real provider; the directory gives their roles), a
token endpoint (authorization code grant: the code once only, bound to its client, redirect URI
and PKCE `S256` challenge) and a JWKS with one RS256 key. ID tokens carry `iss`, `sub`, `aud`,
`exp`, `iat`, `nonce` and a `roles` claim. `tamper_next(**claims)` overrides claims of the next
ID token only (a wrong nonce, another audience), to see Signoff refuse it."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt as jose_jwt

ID_TOKEN_TTL_S = 300


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

    def __post_init__(self) -> None:
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
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
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

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email"],
        }

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
            "sub": entry.subject,
            "aud": self.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_TTL_S,
            "auth_time": now,
            "name": entry.subject.title(),
            "email": f"{entry.subject}@example.test",
            "roles": self.users.get(entry.subject, []),
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
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_TTL_S,
            "id_token": id_token,
        }

    # -- HTTP ---------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    self._json(200, provider.discovery())
                elif parts.path == "/jwks":
                    self._json(200, provider.jwks())
                elif parts.path == "/authorize":
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
                        '<form method="post" action="/authorize">'
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
                if self.path == "/authorize":
                    error = provider._authorize_error(form)
                    user = form.get("username", "")
                    if error or user not in provider.users:
                        self._html(400, f"<p id='error'>{html.escape(error or 'no such user')}</p>")
                        return
                    code = provider.issue_code(form, user)
                    answer = urlencode({"code": code, "state": form["state"]})
                    target = f"{form['redirect_uri']}?{answer}"
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/token":
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
