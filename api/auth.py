"""The one place that turns a bearer token into a principal.

Two kinds of key source, each with its own pinned algorithms:

- the shared development secret: HS256 only;
- the OIDC issuers of `SIGNOFF_OIDC_ISSUERS` (Keycloak, Okta, Auth0, GitHub Actions, Jenkins'
  OIDC provider plugin, ...): only the asymmetric algorithms configured for that issuer
  (default RS256 and ES256), with the public key the token's `kid` names in the issuer's JWKS,
  and only when the key's type fits the algorithm (an RSA key for RS*, an EC key on the right
  curve for ES*). The JWKS is fetched with `httpx.AsyncClient` (never on a thread or blocking the
  event loop), cached, and refetched when a token names an unknown `kid` (or the cache is over
  an hour old), at most once a minute per issuer and by one fetch at a time: concurrent callers
  wait for the fetch in progress while tokens with a cached `kid` verify without waiting.

A token is routed by its *unverified* `iss`: one of the configured OIDC issuers selects that
issuer's keys, anything else the development secret. Lying about `iss` gains nothing: the token
must then verify with that issuer's keys, and `iss` is checked again on the verified claims.

python-jose is used defensively, for the signature, `aud` and `iss` only: `iss` and `aud` are
required for OIDC issuers and whenever they are configured for the development secret
(python-jose accepts a token without them unless told to require them). The time claims are
checked here, after the signature, because python-jose coerces them (`int("1700000000")` passes,
`null` crashes it): `exp` (always required), `nbf` and `iat` must be JSON numbers (not booleans,
strings, null, lists or objects, and finite), `exp` in the future, `nbf` not in the future, `iat`
not in the future (each within the clock leeway). A token is at most `MAX_TOKEN_CHARS`; `sub` is a
printable string of at most `MAX_SUBJECT` characters, no control characters.

Roles: the development secret's tokens and plain OIDC issuers' tokens carry them in a claim (a
dotted path such as `realm_access.roles` works): a JSON list of role names, or (deliberately
kept, for `scope`-like claims) a single string read as a space- or comma-separated list. Either
way each name is a printable string of at most `MAX_ROLE_NAME` characters, at most `MAX_ROLES` of
them; anything else (a number, an object, a list holding a non-string) is refused. An issuer
for which the policy has `identities:` rules (CI: GitHub Actions, Jenkins) gets roles only from
those rules, never from its tokens, so a pipeline cannot name its own roles. A verified OIDC
token carrying `repository_id` and `run_id` claims (GitHub Actions) also gives the principal
its run (`policies.GithubRun`), which a request it opens records. Tokens are never logged.

A verified bearer token's principal is remembered for up to a minute (never past its `exp`),
by the token's hash (`api.verified_tokens`): a client's next calls with the same token skip the
signature and claim checks; a refused token is checked in full every time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
from jose import JWTError, jwk, jwt
from jose.backends.base import Key

from api.settings import DEFAULT_OIDC_ALGORITHMS, ApiSettings, OidcIssuer, check_key_source_url
from api.verified_tokens import VerifiedTokens
from policies import GithubRun, Policy, Principal, load_policy, roles_for_claims
from workflows.tls import verifying_context

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
IAT_SKEW_S = 30
"""How far in the future `iat` may be (any issuer): a token issued later than that is refused."""
MAX_NUMERIC_DATE = 253_402_300_799
"""The last second of year 9999: a later (or negative) `exp`, `nbf` or `iat` is refused."""
MAX_TOKEN_CHARS = 8 * 1024
"""A bearer token longer than this is refused before anything decodes it."""
MAX_SUBJECT = 256
MAX_ROLES = 256
MAX_ROLE_NAME = 256

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
    """The role names of the claim at `roles_claim`: a list of strings, or one string read as a
    space/comma separated list (as OAuth's `scope`), by design; nothing else."""
    raw = _claim(claims, roles_claim)
    if raw is None:
        return []
    if isinstance(raw, str):
        names = [part for part in raw.replace(",", " ").split() if part]
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        names = list(raw)
    else:
        raise AuthenticationError(f"the {roles_claim!r} claim must be a list of role names")
    if len(names) > MAX_ROLES:
        raise AuthenticationError(f"the {roles_claim!r} claim names more than {MAX_ROLES} roles")
    if any(not name or len(name) > MAX_ROLE_NAME or not name.isprintable() for name in names):
        raise AuthenticationError(
            f"the {roles_claim!r} claim must hold role names: non-empty printable strings of at "
            f"most {MAX_ROLE_NAME} characters"
        )
    return names


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


async def _get_json(url: str, what: str) -> Any:
    """GET a JSON document of at most `JWKS_MAX_BYTES`, without following redirects."""
    try:
        async with (
            httpx.AsyncClient(
                timeout=JWKS_FETCH_TIMEOUT_S, follow_redirects=False, verify=verifying_context()
            ) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise KeySourceError(f"GET {url} ({what}) answered HTTP {response.status_code}")
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > JWKS_MAX_BYTES:
                    raise KeySourceError(
                        f"GET {url} ({what}) answered more than {JWKS_MAX_BYTES} bytes"
                    )
    except httpx.HTTPError as err:
        raise KeySourceError(f"GET {url} ({what}) failed: {err}") from err
    try:
        return json.loads(content)
    except ValueError as err:
        raise KeySourceError(f"GET {url} ({what}) did not answer JSON") from err


class IssuerKeys:
    """The signing keys of one OIDC issuer, by `kid`: fetched on first use, cached, and
    refetched on an unknown `kid` or when older than `JWKS_MAX_AGE_S`, but never more than once
    per `JWKS_REFETCH_INTERVAL_S`, so tokens with made-up `kid`s cannot make Signoff hammer the
    issuer. One event loop's: a cache hit never waits; a refresh is one task (bounded by
    `JWKS_FETCH_TIMEOUT_S` in all) that every caller needing it awaits, shielded, so a caller
    that goes away does not cancel the fetch the others wait for."""

    def __init__(self, issuer: OidcIssuer, *, clock: Callable[[], float]) -> None:
        self.issuer = issuer
        self._clock = clock
        self._keys: dict[str, list[dict[str, Any]]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._jwks_url = issuer.jwks_url
        self._refresh: asyncio.Future[None] | None = None

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < JWKS_MAX_AGE_S

    async def candidates(self, kid: str) -> list[dict[str, Any]]:
        """The JWKs with this `kid` (usually one); empty when the issuer has none."""
        now = self._clock()
        if kid in self._keys and self._fresh(now):
            return self._keys[kid]
        due = self._attempted_at is None or now - self._attempted_at >= JWKS_REFETCH_INTERVAL_S
        if self._refresh is None and due:
            self._attempted_at = now
            self._refresh = asyncio.ensure_future(self._refresh_keys())
        if self._refresh is not None:
            await asyncio.shield(self._refresh)
        if self._fetched_at is None:
            raise AuthenticationError(
                f"the signing keys of issuer {self.issuer.issuer} are unavailable right now; "
                "try again later"
            )
        return self._keys.get(kid, [])

    async def _refresh_keys(self) -> None:
        try:
            async with asyncio.timeout(JWKS_FETCH_TIMEOUT_S):
                keys = await self._fetch()
        except (KeySourceError, TimeoutError) as err:
            reason = err if isinstance(err, KeySourceError) else "timed out"
            log.warning("could not fetch the signing keys of %s: %s", self.issuer.issuer, reason)
        except Exception:  # never let one issuer's oddity fail every waiting request with a 500
            log.exception("fetching the signing keys of %s failed", self.issuer.issuer)
        else:
            self._keys = keys
            self._fetched_at = self._clock()
        finally:
            self._refresh = None

    async def _fetch(self) -> dict[str, list[dict[str, Any]]]:
        url = self._jwks_url or await self._discover()
        try:
            document = await _get_json(url, "JWKS")
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

    async def _discover(self) -> str:
        url = self.issuer.discovery_url
        document = await _get_json(url, "OpenID configuration")
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


_JOSE_OPTIONS = {
    # python-jose checks the signature, `aud` and `iss`; the time claims are ours (see
    # `check_registered_claims`): it coerces them with int() and crashes on null.
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "require_exp": False,
    "require_sub": True,
}


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
            token,
            key,
            algorithms=algorithms,
            audience=audience,
            issuer=issuer,
            options=_JOSE_OPTIONS | options,
        )
    except jwt.JWTClaimsError as err:
        raise AuthenticationError(f"the token's claims are not accepted: {err}") from err
    except JWTError as err:
        raise AuthenticationError(f"the token is not valid: {err}") from err


def _kind(value: Any) -> str:
    """What a claim's JSON value is, for an error message (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "not a finite number"


def _numeric_date(claims: dict[str, Any], name: str) -> int | float | None:
    """The claim as a JSON number (RFC 7519's NumericDate); None when absent."""
    if name not in claims:
        return None
    value = claims[name]
    finite = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if isinstance(value, bool) or not finite:
        raise AuthenticationError(
            f"the token's {name!r} claim must be a number (seconds since the epoch), "
            f"but it is {_kind(value)}"
        )
    if not 0 <= value <= MAX_NUMERIC_DATE:
        raise AuthenticationError(
            f"the token's {name!r} claim is out of range: seconds since the epoch, from 0 to "
            f"{MAX_NUMERIC_DATE} (the end of year 9999)"
        )
    return value


def check_registered_claims(
    claims: dict[str, Any], *, now: float, leeway: float, audience_required: bool
) -> None:
    """The registered claims python-jose is not trusted with: types and the time window. Run
    on verified claims only."""
    exp, nbf, iat = (_numeric_date(claims, name) for name in ("exp", "nbf", "iat"))
    for name in ("iss", "sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise AuthenticationError(
                f"the token's {name!r} claim must be a string, but it is {_kind(claims[name])}"
            )
    aud = claims.get("aud")
    if "aud" in claims and not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        raise AuthenticationError("the token's 'aud' claim must be a string or a list of strings")
    if audience_required and "aud" not in claims:
        raise AuthenticationError("the token has no audience ('aud' claim)")
    if exp is None:
        raise AuthenticationError("the token has no expiry ('exp' claim); tokens must expire")
    if exp <= now - leeway:
        raise AuthenticationError("the token has expired; get a new one")
    if nbf is not None and nbf > now + leeway:
        raise AuthenticationError("the token is not valid yet (its 'nbf' is in the future)")
    if iat is not None and iat > now + max(leeway, IAT_SKEW_S):
        raise AuthenticationError(
            "the token was issued in the future (its 'iat' is ahead of this server's clock)"
        )


def _unverified_issuer(token: str) -> Any:
    """The `iss` the token claims, before any verification; None if it cannot be read (the
    development secret's path then reports what is wrong with the token)."""
    try:
        return jwt.get_unverified_claims(token).get("iss")
    except (JWTError, AttributeError):
        return None


def _subject(claims: dict[str, Any]) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise AuthenticationError("the token has no subject ('sub' claim)")
    if len(subject) > MAX_SUBJECT:
        raise AuthenticationError(
            f"the token's subject ('sub' claim) is longer than {MAX_SUBJECT} characters"
        )
    if not subject.isprintable():
        raise AuthenticationError(
            "the token's subject ('sub' claim) holds control or other non-printable characters"
        )
    return subject


class TokenVerifier:
    """Verifies bearer tokens for the whole process: build one and share it. `verify` is a
    coroutine: a JWKS fetch it may need is asynchronous (bounded by `JWKS_FETCH_TIMEOUT_S`, at
    most once a minute per issuer), so it never blocks the event loop; one event loop's.

    `policy` supplies the `identities:` rules; without it the policy file of `settings` is
    loaded (only when OIDC issuers are configured).
    """

    def __init__(
        self,
        settings: ApiSettings,
        policy: Policy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._roles_claim = settings.roles_claim
        self._wall_clock = wall_clock
        self._oidc = {item.issuer: IssuerKeys(item, clock=clock) for item in settings.oidc_issuers}
        self._web = _web_issuer_keys(settings, clock=clock)
        self._verified = VerifiedTokens(clock=clock, wall_clock=wall_clock)
        if (self._oidc or self._web) and policy is None:
            policy = load_policy(settings.resolved_policy_file)
        self._policy = policy
        for rule in policy.identities if policy is not None else []:
            if rule.issuer not in self._oidc:
                log.warning(
                    "the policy has identity rules for %s, which is not in SIGNOFF_OIDC_ISSUERS; "
                    "its tokens are not accepted, so those rules never apply",
                    rule.issuer,
                )

    async def verify(self, token: str) -> Principal:
        """The token's principal. A token verified in the last minute and not expired since
        is answered from `api.verified_tokens` without checking it again."""
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError(
                f"the bearer token is longer than {MAX_TOKEN_CHARS} characters"
            )
        known = self._verified.get(token)
        if known is not None:
            return known
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as err:
            raise AuthenticationError("the bearer token is not a well-formed JWT") from err
        keys = self._oidc_issuer(token)
        if keys is not None:
            principal, valid_until = await self._verify_oidc(token, header, keys)
        else:
            principal, valid_until = self._verify_dev(token, header)
        self._verified.remember(token, principal, valid_until=valid_until)
        return principal

    def _oidc_issuer(self, token: str) -> IssuerKeys | None:
        if not self._oidc:
            return None
        issuer = _unverified_issuer(token)  # only picks the keys; checked again once verified
        return self._oidc.get(issuer) if isinstance(issuer, str) else None

    def _verify_dev(self, token: str, header: dict[str, Any]) -> tuple[Principal, float]:
        """The principal, and until when the token is accepted (its `exp`)."""
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
        check_registered_claims(
            claims,
            now=self._wall_clock(),
            leeway=0,
            audience_required=self._audience is not None,
        )
        principal = Principal(
            sub=_subject(claims), roles=roles_from_claims(claims, self._roles_claim)
        )
        return principal, float(claims["exp"])

    async def verify_id_token(self, token: str, *, nonce: str) -> Principal:
        """An ID token the web page's sign-in received from `SIGNOFF_WEB_OIDC_ISSUER`: verified
        exactly as a bearer token of an OIDC issuer (its pinned algorithms, the key its `kid`
        names in the issuer's JWKS, `iss`, the time claims), with the page's client id as the
        audience (and as `azp` when the token names several audiences), and the `nonce` the
        sign-in sent, so a token minted for another sign-in is refused. Roles as for API
        tokens: the policy's `identities:` rules for the issuer, else its roles claim."""
        if self._web is None:
            raise AuthenticationError("no identity provider is configured for the web page")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError(f"the ID token is longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as err:
            raise AuthenticationError("the ID token is not a well-formed JWT") from err
        claims = await self._verified_oidc_claims(token, header, self._web)
        audience = claims.get("aud")
        client_id = self._web.issuer.audience
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
            raise AuthenticationError(
                "the ID token names several audiences but was not issued to this client ('azp')"
            )
        presented = claims.get("nonce")
        if not isinstance(presented, str) or not hmac.compare_digest(
            presented.encode(), nonce.encode()
        ):
            raise AuthenticationError(
                "the ID token's nonce is not the one this sign-in sent; sign in again"
            )
        return Principal(sub=_subject(claims), roles=self._oidc_roles(self._web.issuer, claims))

    async def _verify_oidc(
        self, token: str, header: dict[str, Any], keys: IssuerKeys
    ) -> tuple[Principal, float]:
        """The principal, and until when the token is accepted (`exp` plus the leeway)."""
        claims = await self._verified_oidc_claims(token, header, keys)
        principal = Principal(
            sub=_subject(claims),
            roles=self._oidc_roles(keys.issuer, claims),
            github=GithubRun.from_claims(claims),  # a CI run's token: where a request came from
        )
        return principal, float(claims["exp"]) + OIDC_CLOCK_SKEW_S

    async def _verified_oidc_claims(
        self, token: str, header: dict[str, Any], keys: IssuerKeys
    ) -> dict[str, Any]:
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
        fitting = [item for item in await keys.candidates(kid) if key_fits(item, alg)]
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
            "require_aud": True,
            "verify_aud": True,
            "require_iss": True,
            "verify_iss": True,
            # `at_hash` ties an ID token to an access token we never see; not ours to check.
            "verify_at_hash": False,
        }
        claims = _decode(
            token,
            key,
            algorithms=[alg],
            audience=issuer.audience,
            issuer=issuer.issuer,
            options=options,
        )
        check_registered_claims(
            claims, now=self._wall_clock(), leeway=OIDC_CLOCK_SKEW_S, audience_required=True
        )
        return claims

    def _oidc_roles(self, issuer: OidcIssuer, claims: dict[str, Any]) -> list[str]:
        if self._policy is not None:
            granted = roles_for_claims(self._policy, issuer.issuer, claims)
            if granted is not None:
                return granted  # the issuer has identity rules: they alone grant roles
        if issuer.roles_claim is None:
            return []
        return roles_from_claims(claims, issuer.roles_claim)


def _web_issuer_keys(settings: ApiSettings, *, clock: Callable[[], float]) -> IssuerKeys | None:
    """The web page's identity provider as an OIDC issuer whose tokens are for its client id.
    Roles are read from `SIGNOFF_WEB_OIDC_ROLES_CLAIM`, else from the claim configured for the
    same issuer in `SIGNOFF_OIDC_ISSUERS`, else `SIGNOFF_ROLES_CLAIM`."""
    if not settings.web_oidc_issuer or not settings.web_oidc_client_id:
        return None
    listed = {item.issuer: item for item in settings.oidc_issuers}.get(settings.web_oidc_issuer)
    roles_claim = settings.web_oidc_roles_claim or (
        listed.roles_claim if listed is not None else settings.roles_claim
    )
    issuer = OidcIssuer(
        issuer=settings.web_oidc_issuer,
        audience=settings.web_oidc_client_id,
        algorithms=listed.algorithms if listed is not None else list(DEFAULT_OIDC_ALGORITHMS),
        roles_claim=roles_claim,
    )
    return IssuerKeys(issuer, clock=clock)


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
