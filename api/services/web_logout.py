"""Signing out at the identity provider too (OpenID Connect RP-Initiated Logout 1.0).

When the provider's discovery document names an `end_session_endpoint`, sign-out sends the
browser there with `id_token_hint` (the ID token of the sign-in), `post_logout_redirect_uri`
(`<SIGNOFF_PUBLIC_URL>/ui/signed-out`, to be registered at the provider) and `client_id`; the
provider ends its own session and sends the browser back.

The ID token is kept with the session only for that, and never in plain text: it is sealed
(Fernet) under a key derived (HKDF-SHA256) from the session id, which only the browser holds
in its cookie; the ledger stores the id's SHA-256 and the sealed token, so the table alone
yields neither a session nor a token.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SIGNED_OUT_PATH = "/ui/signed-out"
_KEY_INFO = b"signoff web session: sealed id token"


def _fernet(session_id: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(
        session_id.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal_id_token(session_id: str, id_token: str) -> str:
    """The ID token, encrypted under a key only the holder of `session_id` can derive."""
    return _fernet(session_id).encrypt(id_token.encode()).decode()


def unseal_id_token(session_id: str, sealed: str | None) -> str | None:
    """The ID token sealed with this session; None if there is none or it does not open."""
    if not sealed:
        return None
    try:
        return _fernet(session_id).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def end_session_url(
    endpoint: str, *, id_token: str | None, client_id: str | None, public_url: str
) -> str:
    """Where to send the browser to sign out at the provider: its `end_session_endpoint`, its
    own query kept, with the logout parameters added."""
    parts = urlsplit(endpoint)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in ("id_token_hint", "post_logout_redirect_uri", "client_id")
    ]
    if id_token:
        query.append(("id_token_hint", id_token))
    query.append(("post_logout_redirect_uri", f"{public_url.rstrip('/')}{SIGNED_OUT_PATH}"))
    if client_id:
        query.append(("client_id", client_id))
    return urlunsplit(parts._replace(query=urlencode(query)))
