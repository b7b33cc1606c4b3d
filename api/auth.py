"""The one place that turns a bearer token into a principal.

Two kinds of key source, each with its own pinned algorithms:

- the shared development secret: HS256 only;
- the OIDC issuers of `SIGNOFF_OIDC_ISSUERS` (Keycloak, Okta, Auth0, GitHub Actions, Jenkins'
  OIDC provider plugin, ...): only the asymmetric algorithms configured for that issuer
  (default RS256 and ES256), with the public key the token's `kid` names in the issuer's JWKS,
  and only when the key's type fits the algorithm (an RSA key for RS*, an EC key on the right
  curve for ES*). The JWKS is fetched with httpx, cached, and refetched when a token names an
  unknown `kid` (or the cache is over an hour old), at most once a minute per issuer.

A token is routed by its *unverified* `iss`: one of the configured OIDC issuers selects that
issuer's keys, anything else the development secret. Lying about `iss` gains nothing: the token
must then verify with that issuer's keys, and `iss` is checked again on the verified claims.

python-jose is used defensively: `exp` is always required; `iss` and `aud` are required for
OIDC issuers and whenever they are configured for the development secret (python-jose accepts a
token without them unless told to require them).

Roles: the development secret's tokens and plain OIDC issuers' tokens carry them in a claim (a
dotted path such as `realm_access.roles` works). An issuer for which the policy has
`identities:` rules (CI: GitHub Actions, Jenkins) gets roles only from those rules, never from
its tokens, so a pipeline cannot name its own roles. Tokens are never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import httpx
from jose import JWTError, jwk, jwt
from jose.backends.base import Key

from api.settings import ApiSettings, OidcIssuer, check_key_source_url
from policies import Policy, Principal, load_policy, roles_for_claims

HS_ALGORITHMS = ["HS256"]
DEV_TOKEN_TTL_S = 12 * 3600

JWKS_REFETCH_INTERVAL_S = 60.0
"""At most one JWKS fetch per issuer in this long, however many unknown `kid`s arrive."""
JWKS_MAX_AGE_S = 3600.0
"""Cached keys older than this are refreshed on next use, so a key the issuer withdrew stops
verifying tokens within about an hour (kept if the refresh fails, so an outage of the issuer
does not lock everyone out)."""
JWKS_FETCH_TIMEOUT_S = 5.0
JWKS_MAX_BYTES = 1_000_000
OIDC_CLOCK_SKEW_S = 30
"""Leeway for `exp` and `nbf` of tokens minted by another machine's clock."""

_KEY_TYPE = {"RS": "RSA", "ES": "EC"}
_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

log = logging.getLogger(__name__)


class AuthenticationError(Exception):
    """The token is missing, malformed, forged, expired or meant for someone else."""


class KeySourceError(Exception):
    """An issuer's discovery document or JWKS could not be fetched or read."""


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


def _shown(value: Any, limit: int = 120) -> str:
    """A caller-supplied value for an error message: quoted and bounded."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...'"


def key_fits(jwk_dict: dict[str, Any], alg: str) -> bool:
    """Whether a JWK may verify a signature made with `alg`: the key type the algorithm is
    defined for (and the curve, for ES*), no other `alg` pinned on the key, and a signing key."""
    if jwk_dict.get("kty") != _KEY_TYPE.get(alg[:2]):
        return False
    if alg in _CURVE and jwk_dict.get("crv") != _CURVE[alg]:
        return False
    if "alg" in jwk_dict and jwk_dict["alg"] != alg:
        return False
    if jwk_dict.get("use", "sig") != "sig":
        return False
    ops = jwk_dict.get("key_ops")
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def _get_json(url: str, what: str) -> Any:
    try:
        with httpx.Client(timeout=JWKS_FETCH_TIMEOUT_S, follow_redirects=False) as client:
            response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as err:
        raise KeySourceError(f"GET {url} ({what}) failed: {err}") from err
    if response.status_code != 200:
        raise KeySourceError(f"GET {url} ({what}) answered HTTP {response.status_code}")
    if len(response.content) > JWKS_MAX_BYTES:
        raise KeySourceError(f"GET {url} ({what}) answered more than {JWKS_MAX_BYTES} bytes")
    try:
        return response.json()
    except ValueError as err:
        raise KeySourceError(f"GET {url} ({what}) did not answer JSON") from err


class IssuerKeys:
    """The signing keys of one OIDC issuer, by `kid`: fetched on first use, cached, and
    refetched on an unknown `kid` or when older than `JWKS_MAX_AGE_S`, but never more than once
    per `JWKS_REFETCH_INTERVAL_S`, so tokens with made-up `kid`s cannot make Signoff hammer the
    issuer. Thread-safe: a cache hit takes no lock; one thread fetches while others wait."""

    def __init__(self, issuer: OidcIssuer, *, clock: Callable[[], float]) -> None:
        self.issuer = issuer
        self._clock = clock
        self._keys: dict[str, list[dict[str, Any]]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._jwks_url = issuer.jwks_url
        self._lock = threading.Lock()

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < JWKS_MAX_AGE_S

    def candidates(self, kid: str) -> list[dict[str, Any]]:
        """The JWKs with this `kid` (usually one); empty when the issuer has none."""
        keys = self._keys
        if kid in keys and self._fresh(self._clock()):
            return keys[kid]
        with self._lock:
            now = self._clock()
            if kid in self._keys and self._fresh(now):
                return self._keys[kid]  # another thread fetched them meanwhile
            due = self._attempted_at is None or now - self._attempted_at >= JWKS_REFETCH_INTERVAL_S
            if due:
                self._attempted_at = now
                try:
                    self._keys = self._fetch()
                    self._fetched_at = self._clock()
                except KeySourceError as err:
                    log.warning(
                        "could not fetch the signing keys of %s: %s", self.issuer.issuer, err
                    )
            if self._fetched_at is None:
                raise AuthenticationError(
                    f"the signing keys of issuer {self.issuer.issuer} are unavailable right now; "
                    "try again later"
                )
            return self._keys.get(kid, [])

    def _fetch(self) -> dict[str, list[dict[str, Any]]]:
        url = self._jwks_url or self._discover()
        try:
            document = _get_json(url, "JWKS")
        except KeySourceError:
            if self.issuer.jwks_url is None:
                self._jwks_url = None  # discover again next time: the issuer may have moved it
            raise
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise KeySourceError(f"{url} is not a JWKS: it has no 'keys' list")
        by_kid: dict[str, list[dict[str, Any]]] = {}
        for item in keys:
            if isinstance(item, dict) and isinstance(item.get("kid"), str) and item["kid"]:
                by_kid.setdefault(item["kid"], []).append(item)
        self._jwks_url = url
        log.info(
            "fetched %d signing keys of %s from %s (kids: %s)",
            sum(len(found) for found in by_kid.values()),
            self.issuer.issuer,
            url,
            ", ".join(by_kid) or "none",
        )
        return by_kid

    def _discover(self) -> str:
        url = self.issuer.discovery_url
        document = _get_json(url, "OpenID configuration")
        if not isinstance(document, dict):
            raise KeySourceError(f"{url} is not an OpenID configuration document")
        if document.get("issuer") != self.issuer.issuer:
            raise KeySourceError(
                f"{url} names the issuer {_shown(document.get('issuer'))}, not "
                f"{self.issuer.issuer!r}"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise KeySourceError(f"{url} has no jwks_uri")
        try:
            return check_key_source_url(jwks_uri, "the discovered jwks_uri")
        except ValueError as err:
            raise KeySourceError(str(err)) from err


def _decode(
    token: str,
    key: str | Key,
    *,
    algorithms: list[str],
    audience: str | None,
    issuer: str | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    try:
        return jwt.decode(
            token, key, algorithms=algorithms, audience=audience, issuer=issuer, options=options
        )
    except jwt.ExpiredSignatureError as err:
        raise AuthenticationError("the token has expired; get a new one") from err
    except jwt.JWTClaimsError as err:
        raise AuthenticationError(f"the token's claims are not accepted: {err}") from err
    except JWTError as err:
        raise AuthenticationError(f"the token is not valid: {err}") from err


def _unverified_issuer(token: str) -> Any:
    """The `iss` the token claims, before any verification; None if it cannot be read (the
    development secret's path then reports what is wrong with the token)."""
    try:
        return jwt.get_unverified_claims(token).get("iss")
    except (JWTError, AttributeError):
        return None


def _subject(claims: dict[str, Any]) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationError("the token has no subject ('sub' claim)")
    return subject


class TokenVerifier:
    """Verifies bearer tokens for the whole process: build one and share it (thread-safe).

    `verify` may block on a JWKS fetch (bounded by `JWKS_FETCH_TIMEOUT_S`, at most once a
    minute per issuer), so call it from sync code, which FastAPI runs in its thread pool, or
    await `verify_async` from async code.

    `policy` supplies the `identities:` rules; without it the policy file of `settings` is
    loaded (only when OIDC issuers are configured).
    """

    def __init__(
        self,
        settings: ApiSettings,
        policy: Policy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._roles_claim = settings.roles_claim
        self._oidc = {item.issuer: IssuerKeys(item, clock=clock) for item in settings.oidc_issuers}
        if self._oidc and policy is None:
            policy = load_policy(settings.resolved_policy_file)
        self._policy = policy
        for rule in policy.identities if policy is not None else []:
            if rule.issuer not in self._oidc:
                log.warning(
                    "the policy has identity rules for %s, which is not in SIGNOFF_OIDC_ISSUERS; "
                    "its tokens are not accepted, so those rules never apply",
                    rule.issuer,
                )

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as err:
            raise AuthenticationError("the bearer token is not a well-formed JWT") from err
        keys = self._oidc_issuer(token)
        if keys is not None:
            return self._verify_oidc(token, header, keys)
        return self._verify_dev(token, header)

    async def verify_async(self, token: str) -> Principal:
        """`verify` in a worker thread, so a JWKS fetch never blocks the event loop."""
        return await anyio.to_thread.run_sync(self.verify, token)

    def _oidc_issuer(self, token: str) -> IssuerKeys | None:
        if not self._oidc:
            return None
        issuer = _unverified_issuer(token)  # only picks the keys; checked again once verified
        return self._oidc.get(issuer) if isinstance(issuer, str) else None

    def _verify_dev(self, token: str, header: dict[str, Any]) -> Principal:
        alg = header.get("alg")
        if alg not in HS_ALGORITHMS:
            if self._oidc and isinstance(alg, str) and alg[:2] in _KEY_TYPE:
                raise AuthenticationError(
                    f"tokens signed with {alg!r} are accepted only from the configured OIDC "
                    f"issuers, and this token's issuer ({_shown(_unverified_issuer(token))}) is "
                    "not one of them"
                )
            raise AuthenticationError(
                f"tokens signed with {_shown(alg)} are not accepted; expected HS256"
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
        claims = _decode(
            token,
            self._secret,
            algorithms=HS_ALGORITHMS,
            audience=self._audience,
            issuer=self._issuer,
            options=options,
        )
        return Principal(sub=_subject(claims), roles=roles_from_claims(claims, self._roles_claim))

    def _verify_oidc(self, token: str, header: dict[str, Any], keys: IssuerKeys) -> Principal:
        issuer = keys.issuer
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in issuer.algorithms:
            raise AuthenticationError(
                f"tokens from {issuer.issuer} must be signed with "
                f"{' or '.join(issuer.algorithms)}; this one says {_shown(alg)}"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError(
                "the token names no signing key ('kid' header), which tokens from an OIDC "
                "issuer must"
            )
        fitting = [item for item in keys.candidates(kid) if key_fits(item, alg)]
        if not fitting:
            raise AuthenticationError(
                f"issuer {issuer.issuer} has no {alg} signing key with kid {_shown(kid)}"
            )
        try:
            key = jwk.construct(fitting[0], alg)
        except Exception as err:  # python-jose raises several types for a malformed JWK
            log.warning("key %r of %s is not usable: %s", kid, issuer.issuer, err)
            raise AuthenticationError(
                f"the signing key {_shown(kid)} of issuer {issuer.issuer} is not usable"
            ) from err
        options = {
            "require_exp": True,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "require_sub": True,
            "require_aud": True,
            "verify_aud": True,
            "require_iss": True,
            "verify_iss": True,
            # `at_hash` ties an ID token to an access token we never see; not ours to check.
            "verify_at_hash": False,
            "leeway": OIDC_CLOCK_SKEW_S,
        }
        claims = _decode(
            token,
            key,
            algorithms=[alg],
            audience=issuer.audience,
            issuer=issuer.issuer,
            options=options,
        )
        return Principal(sub=_subject(claims), roles=self._oidc_roles(issuer, claims))

    def _oidc_roles(self, issuer: OidcIssuer, claims: dict[str, Any]) -> list[str]:
        if self._policy is not None:
            granted = roles_for_claims(self._policy, issuer.issuer, claims)
            if granted is not None:
                return granted  # the issuer has identity rules: they alone grant roles
        if issuer.roles_claim is None:
            return []
        return roles_from_claims(claims, issuer.roles_claim)


def issue_dev_token(
    settings: ApiSettings, sub: str, roles: list[str], *, ttl_s: int = DEV_TOKEN_TTL_S
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
