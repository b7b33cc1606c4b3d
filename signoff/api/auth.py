"""The one place that turns a bearer token into a principal.

python-jose is used defensively: algorithms are pinned per key source (HS256 only, for the
shared development secret), `exp` is required, and `iss` / `aud` are required whenever they are
configured (python-jose accepts a token without them unless told to require them).
"""

from __future__ import annotations

import time
from typing import Any

from jose import JWTError, jwt

from signoff.policies import Principal
from signoff.settings import Settings

HS_ALGORITHMS = ["HS256"]
DEV_TOKEN_TTL_S = 12 * 3600


class AuthenticationError(Exception):
    """The token is missing, malformed, forged, expired or meant for someone else."""


def _claim(claims: dict[str, Any], path: str) -> Any:
    """Read a claim by dotted path, so `realm_access.roles` works for Keycloak."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def roles_from_claims(claims: dict[str, Any], roles_claim: str) -> list[str]:
    raw = _claim(claims, roles_claim)
    if raw is None:
        return []
    if isinstance(raw, str):
        return [part for part in raw.replace(",", " ").split() if part]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return list(raw)
    raise AuthenticationError(f"the {roles_claim!r} claim must be a list of role names")


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._roles_claim = settings.roles_claim

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as err:
            raise AuthenticationError("the bearer token is not a well-formed JWT") from err
        if header.get("alg") not in HS_ALGORITHMS:
            raise AuthenticationError(
                f"tokens signed with {header.get('alg')!r} are not accepted; expected HS256"
            )
        options = {
            "require_exp": True,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "require_sub": True,
            "verify_aud": self._audience is not None,
            "require_aud": self._audience is not None,
            "verify_iss": self._issuer is not None,
            "require_iss": self._issuer is not None,
        }
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=HS_ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                options=options,
            )
        except jwt.ExpiredSignatureError as err:
            raise AuthenticationError("the token has expired; get a new one") from err
        except jwt.JWTClaimsError as err:
            raise AuthenticationError(f"the token's claims are not accepted: {err}") from err
        except JWTError as err:
            raise AuthenticationError(f"the token is not valid: {err}") from err
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("the token has no subject ('sub' claim)")
        return Principal(sub=subject, roles=roles_from_claims(claims, self._roles_claim))


def issue_dev_token(
    settings: Settings, sub: str, roles: list[str], *, ttl_s: int = DEV_TOKEN_TTL_S
) -> str:
    """A token signed with the development secret, for `signoff dev` and `signoff token`."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        settings.roles_claim: roles,
        "iat": now,
        "exp": now + ttl_s,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if "." in settings.roles_claim:
        claims.pop(settings.roles_claim)
        head, *rest = settings.roles_claim.split(".")
        nested: dict[str, Any] = claims.setdefault(head, {})
        for part in rest[:-1]:
            nested = nested.setdefault(part, {})
        nested[rest[-1]] = roles
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
