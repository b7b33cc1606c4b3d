"""A generated matrix of bearer tokens against the real API over HTTP: every key source (the
development secret, an OIDC issuer's RSA key, its EC key) crossed with every claim or header
mutation an attacker might try. Each bad token is 401 UNAUTHENTICATED in MLflow's shape, never a
500 nor a success, and never echoed; the good ones succeed.

And a JWKS fetch that hangs (a loopback JWKS server that stalls) holds up only the request that
needs it, on the GitHub-OIDC-like CI callback path: `/healthz` and requests with a cached `kid`
complete meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from jose import jwt

from tests.api.test_auth import assert_unauthenticated
from tests.api.test_oidc import Keys, OidcProvider, SigningKey, b64json, b64url, make_key
from tests.security.conftest import IDP_AUDIENCE
from tests.support.http import TRANSITIONS
from tests.support.mlflow import SeededVersion
from tests.support.stack import SignoffStack
from tests.support.tokens import TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET

PROTECTED = f"{TRANSITIONS}/list"
CI_CALLBACK = "/api/2.0/signoff/ci/callback"
DROP = object()
"""A claim override that removes the claim."""


# ============================================================================================
# Key sources: who signs, with which pinned algorithm, for which issuer and audience
# ============================================================================================


@dataclass(frozen=True)
class Source:
    name: str
    iss: str
    aud: str
    alg: str
    sign_key: str
    """The HS256 secret, or the private key's PEM."""
    kid: str | None
    public_pem: str | None

    def token(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid} if self.kid else {}
        alg = header.pop("alg", self.alg)
        return jwt.encode(claims, self.sign_key, algorithm=alg, headers=headers | header)


SOURCES = ["dev-secret", "oidc-rsa", "oidc-ec"]


def source_for(name: str, provider: OidcProvider, keys: Keys) -> Source:
    if name == "dev-secret":
        return Source(name, TEST_ISSUER, TEST_AUDIENCE, "HS256", TEST_JWT_SECRET, None, None)
    key: SigningKey = keys.rsa if name == "oidc-rsa" else keys.ec
    return Source(
        name,
        provider.issuer("idp"),
        IDP_AUDIENCE,
        key.alg,
        key.private_pem,
        key.kid,
        key.public_pem,
    )


def claims_of(source: Source, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": source.iss,
        "aud": source.aud,
        "sub": "dana",
        "roles": ["data-scientist"],
        "iat": now,
        "exp": now + 600,
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not DROP}


# ============================================================================================
# Mutations: each makes a token from a source (None: does not apply to that source)
# ============================================================================================

Mutation = Callable[[Source], str | None]


def signed_by_hand(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """HMAC-signed without python-jose, which refuses a PEM as a secret; an attacker does not."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _claims(**overrides: Any) -> Mutation:
    return lambda source: source.token(claims_of(source, **overrides))


def _alg_none(alg: str) -> Mutation:
    def make(source: Source) -> str:
        header = {"alg": alg, "typ": "JWT"} | ({"kid": source.kid} if source.kid else {})
        return f"{b64json(header)}.{b64json(claims_of(source))}."

    return make


def _hs256_with_public_key(source: Source) -> str | None:
    if source.public_pem is None:
        return None
    header = {"alg": "HS256", "typ": "JWT", "kid": source.kid}
    return signed_by_hand(header, claims_of(source), source.public_pem.encode())


def _asymmetric_header_hmac_with_dev_secret(source: Source) -> str:
    header = {"alg": "RS256", "typ": "JWT"} | ({"kid": source.kid} if source.kid else {})
    return signed_by_hand(header, claims_of(source), TEST_JWT_SECRET.encode())


_ROGUE = {"RS256": make_key("rsa-1", "RSA"), "ES256": make_key("ec-1", "EC")}


def _wrong_key(source: Source) -> str:
    """Same algorithm and kid, a key nobody published (another secret for the dev source)."""
    if source.alg == "HS256":
        return jwt.encode(claims_of(source), "not-the-secret-" + "z" * 32, algorithm="HS256")
    return jwt.encode(
        claims_of(source),
        _ROGUE[source.alg].private_pem,
        algorithm=source.alg,
        headers={"kid": source.kid},
    )


def _other_alg(source: Source) -> str | None:
    """A stronger algorithm of the same family that is not pinned: HS512, RS384 / ES384."""
    if source.alg == "HS256":
        return source.token(claims_of(source), alg="HS512")
    if source.alg == "RS256":
        return source.token(claims_of(source), alg="RS384")
    return None  # ES384 needs a P-384 key: the curve check is in test_oidc


def _unknown_kid(source: Source) -> str | None:
    return None if source.kid is None else source.token(claims_of(source), kid="no-such-kid")


def _no_kid(source: Source) -> str | None:
    if source.kid is None:
        return None
    return jwt.encode(claims_of(source), source.sign_key, algorithm=source.alg)


def _dev_secret_claiming_the_issuer(source: Source) -> str | None:
    """The development secret signing a token that names the OIDC issuer."""
    if source.kid is None:
        return None
    return jwt.encode(claims_of(source), TEST_JWT_SECRET, algorithm="HS256")


def _oversized(source: Source) -> str:
    return source.token(claims_of(source, pad="p" * 9000))


def _now() -> int:
    return int(time.time())


BAD_TIME_VALUES: dict[str, Any] = {
    "a numeric string": "NOW+600",
    "null": None,
    "a list": ["NOW+600"],
    "an object": {"at": "NOW+600"},
    "true": True,
    "NaN": math.nan,
    "Infinity": math.inf,
    "negative": -1,
    "past year 9999": 10**20,
}


def _time_claim(name: str, value: Any) -> Mutation:
    def make(source: Source) -> str:
        def fill(item: Any) -> Any:
            if item == "NOW+600":
                return str(_now() + 600)
            if isinstance(item, list):
                return [fill(part) for part in item]
            if isinstance(item, dict):
                return {key: fill(part) for key, part in item.items()}
            return item

        return source.token(claims_of(source, **{name: fill(value)}))

    return make


BAD: dict[str, Mutation] = {
    "alg none": _alg_none("none"),
    "alg None": _alg_none("None"),
    "alg empty": _alg_none(""),
    "HS256 signed with the public key": _hs256_with_public_key,
    "RS256 header, HMAC with the dev secret": _asymmetric_header_hmac_with_dev_secret,
    "wrong key": _wrong_key,
    "an algorithm that is not pinned": _other_alg,
    "unknown kid": _unknown_kid,
    "no kid": _no_kid,
    "dev secret naming the OIDC issuer": _dev_secret_claiming_the_issuer,
    "expired": lambda s: s.token(claims_of(s, iat=_now() - 7200, exp=_now() - 3600)),
    "nbf in the future": lambda s: s.token(claims_of(s, nbf=_now() + 3600)),
    "iat far in the future": lambda s: s.token(claims_of(s, iat=_now() + 3600)),
    "no exp": _claims(exp=DROP),
    "no aud": _claims(aud=DROP),
    "no iss": _claims(iss=DROP),
    "wrong iss": _claims(iss="https://evil.example"),
    "wrong aud": _claims(aud="someone-else"),
    "aud an object": _claims(aud={"aud": "x"}),
    "aud a list with a number": lambda s: s.token(claims_of(s, aud=[s.aud, 7])),
    "iss a list": lambda s: s.token(claims_of(s, iss=[s.iss])),
    "jti a number": _claims(jti=7),
    **{
        f"{name} {kind}": _time_claim(name, value)
        for name in ("exp", "nbf", "iat")
        for kind, value in BAD_TIME_VALUES.items()
    },
    "oversized (9 KB)": _oversized,
    "no sub": _claims(sub=DROP),
    "sub empty": _claims(sub=""),
    "sub blank": _claims(sub="   "),
    "sub a number": _claims(sub=42),
    "sub a list": _claims(sub=["dana"]),
    "sub with NUL": _claims(sub="dana\x00admin"),
    "sub with an escape": _claims(sub="dana\x1b[2J"),
    "sub with a newline": _claims(sub="dana\nadmin"),
    "sub 257 characters": _claims(sub="d" * 257),
    "roles an object": _claims(roles={"data-scientist": True}),
    "roles a number": _claims(roles=3),
    "roles true": _claims(roles=True),
    "roles with a number": _claims(roles=["data-scientist", 7]),
    "roles with null": _claims(roles=["data-scientist", None]),
    "roles with an empty name": _claims(roles=["data-scientist", ""]),
    "roles with a control character": _claims(roles=["data-scientist\x00"]),
    "roles with a 257-character name": _claims(roles=["r" * 257]),
    "roles 257 names": _claims(roles=[f"r{i}" for i in range(257)]),
}

GOOD: dict[str, Mutation] = {
    "valid": _claims(),
    "roles a space-separated string": _claims(roles="viewer data-scientist"),
    "exp a float": lambda s: s.token(claims_of(s, exp=_now() + 600.5)),
    "nbf in the past": lambda s: s.token(claims_of(s, nbf=_now() - 60)),
    "no iat": _claims(iat=DROP),
    "aud a list holding ours": lambda s: s.token(claims_of(s, aud=["other", s.aud])),
    "sub 256 printable characters": _claims(sub="é" * 256),
    "token just under 8 KB": lambda s: s.token(claims_of(s, pad="p" * 5000)),
}

OIDC_ONLY = {
    "HS256 signed with the public key",
    "unknown kid",
    "no kid",
    "dev secret naming the OIDC issuer",
}
"""Mutations of what only OIDC tokens have (a public key, a `kid`, an issuer to impersonate)."""
NOT_FOR = {("oidc-ec", "an algorithm that is not pinned")}  # ES384 needs a P-384 key
BAD_CASES = [
    (source, case)
    for source in SOURCES
    for case in BAD
    if not (source == "dev-secret" and case in OIDC_ONLY) and (source, case) not in NOT_FOR
]
GOOD_CASES = [(source, case) for source in SOURCES for case in GOOD]


def call(stack: SignoffStack, seeded: SeededVersion, token: str) -> httpx.Response:
    return httpx.get(
        f"{stack.api_url}{PROTECTED}",
        params={"name": seeded.name, "version": seeded.version},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


@pytest.mark.parametrize(("source_name", "case"), BAD_CASES, ids=[f"{s}:{c}" for s, c in BAD_CASES])
def test_a_bad_token_is_401(
    security_stack: SignoffStack,
    seeded: SeededVersion,
    provider: OidcProvider,
    keys: Keys,
    source_name: str,
    case: str,
) -> None:
    token = BAD[case](source_for(source_name, provider, keys))
    assert token is not None, f"{case!r} does not apply to {source_name}"
    message = assert_unauthenticated(call(security_stack, seeded, token), token)
    assert "internal error" not in message


@pytest.mark.parametrize(
    ("source_name", "case"), GOOD_CASES, ids=[f"{s}:{c}" for s, c in GOOD_CASES]
)
def test_a_good_token_is_accepted(
    security_stack: SignoffStack,
    seeded: SeededVersion,
    provider: OidcProvider,
    keys: Keys,
    source_name: str,
    case: str,
) -> None:
    token = GOOD[case](source_for(source_name, provider, keys))
    assert token is not None
    response = call(security_stack, seeded, token)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("claim", "value", "says"),
    [
        ("exp", "NOW+600", "'exp' claim must be a number"),
        ("exp", None, "'exp' claim must be a number"),
        ("nbf", ["x"], "'nbf' claim must be a number"),
        ("iat", {"a": 1}, "'iat' claim must be a number"),
        ("exp", True, "but it is a boolean"),
    ],
)
def test_a_badly_typed_time_claim_says_what_is_wrong(
    security_stack: SignoffStack,
    seeded: SeededVersion,
    provider: OidcProvider,
    keys: Keys,
    claim: str,
    value: Any,
    says: str,
) -> None:
    token = _time_claim(claim, value)(source_for("oidc-rsa", provider, keys))
    assert token is not None
    assert says in assert_unauthenticated(call(security_stack, seeded, token), token)


def test_the_matrix_is_as_large_as_reported() -> None:
    """The figures of the report: keep them honest when cases are added."""
    assert (len(SOURCES), len(BAD), len(GOOD)) == (3, 68, 8)
    assert (len(BAD_CASES), len(GOOD_CASES)) == (199, 24)


# ============================================================================================
# A stalled JWKS fetch blocks nobody else
# ============================================================================================


def test_a_stalled_jwks_fetch_holds_up_only_the_request_that_needs_it(
    security_stack: SignoffStack,
    seeded: SeededVersion,
    provider: OidcProvider,
    keys: Keys,
) -> None:
    """The CI callback (where a GitHub Actions token with a new kid arrives) waits for the
    issuer's JWKS, which stalls; meanwhile `/healthz`, a cached-kid OIDC token and a dev token
    all complete. Asserted on order of completion: the stalled call is still running when the
    others are done, and ends only after."""
    idp = source_for("oidc-rsa", provider, keys)
    cached = idp.token(claims_of(idp))
    assert call(security_stack, seeded, cached).status_code == 200  # the idp's keys are cached
    stall_claims = claims_of(idp, iss=provider.issuer("stall"))
    stalled_token = jwt.encode(
        stall_claims, keys.fresh.private_pem, algorithm="RS256", headers={"kid": keys.fresh.kid}
    )
    arrived, release = provider.holds["/stall/jwks"]
    finished: list[str] = []
    outcome: dict[str, httpx.Response] = {}

    def stalled_callback() -> None:
        outcome["ci"] = httpx.post(
            f"{security_stack.api_url}{CI_CALLBACK}",
            json={"request_id": "ab" * 16, "check": "github_actions:o/r/f", "passed": True},
            headers={"Authorization": f"Bearer {stalled_token}"},
            timeout=120,
        )
        finished.append("ci callback")

    thread = threading.Thread(target=stalled_callback, daemon=True)
    thread.start()
    try:
        assert arrived.wait(60), "the API never fetched the stalling issuer's JWKS"
        health = httpx.get(f"{security_stack.api_url}/healthz", timeout=60)
        finished.append("healthz")
        known = call(security_stack, seeded, cached)
        finished.append("cached kid")
        dev = security_stack.client("dana", "data-scientist")
        with dev:
            listed = dev.get(PROTECTED, params={"name": seeded.name, "version": seeded.version})
        finished.append("dev token")
        assert (health.status_code, known.status_code, listed.status_code) == (200, 200, 200)
        assert finished == ["healthz", "cached kid", "dev token"], finished
    finally:
        release.set()
        thread.join(120)
    assert finished[-1] == "ci callback"
    # Released within the API's fetch timeout, the keys arrive and the token verifies (then
    # the request id is unknown: 404); released later, the keys are unavailable (401).
    ci = outcome["ci"]
    if ci.status_code == 401:
        assert "unavailable" in assert_unauthenticated(ci, stalled_token)
    else:
        assert ci.status_code == 404, ci.text
