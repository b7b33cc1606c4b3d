"""OIDC identities: tokens from configured issuers, verified with the keys of their JWKS.

A loopback OIDC provider (`http.server`) serves, per issuer, `/.well-known/openid-configuration`
and a JWKS with RSA and EC P-256 keys, and counts what it serves. The end-to-end tests run a
Signoff stack (API and worker as processes) configured only through SIGNOFF_OIDC_ISSUERS and a
policy file with `identities:` rules; the issuer playing GitHub Actions is a loopback URL, so
nothing in Signoff may treat `token.actions.githubusercontent.com` specially. The verifier tests
further down drive one `TokenVerifier` against the same provider with a clock they control, for
what takes a minute or an hour of real time (refetch limits, cache expiry).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt
from pydantic import ValidationError

from api.auth import AuthenticationError, TokenVerifier, key_fits
from api.settings import ApiSettings
from policies import Policy, load_policy_text
from tests.support.http import TRANSITIONS, assert_error, assert_unauthenticated
from tests.support.mlflow import MlflowServer, SeededVersion, seed_version
from tests.support.stack import SignoffStack, launch_stack
from tests.support.temporal import TemporalServer
from tests.support.tokens import TEST_ISSUER, TEST_JWT_SECRET

IDP_AUDIENCE = "signoff-oidc"
CI_AUDIENCE = "signoff-ci"
PROTECTED = f"{TRANSITIONS}/list"

# ============================================================================================
# Keys and a loopback OIDC provider
# ============================================================================================


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64json(data: dict[str, Any]) -> str:
    return b64url(json.dumps(data, separators=(",", ":")).encode())


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_pem: str
    public_pem: str
    public_jwk: dict[str, Any]

    def sign(
        self, claims: dict[str, Any], *, alg: str | None = None, kid: str | None = "same"
    ) -> str:
        """A token signed with this key; `kid=None` leaves the header without one."""
        headers = {} if kid is None else {"kid": self.kid if kid == "same" else kid}
        return jwt.encode(claims, self.private_pem, algorithm=alg or self.alg, headers=headers)


def make_key(kid: str, kind: str, *, jwk_alg: bool = True) -> SigningKey:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "RSA":
        private, alg = rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
    else:
        private, alg = ec.generate_private_key(ec.SECP256R1()), "ES256"
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    public_jwk = jwk.construct(public_pem, alg).to_dict() | {"kid": kid, "use": "sig"}
    if not jwk_alg:
        public_jwk.pop("alg")  # many providers publish keys without `alg`
    return SigningKey(kid, alg, private_pem, public_pem, public_jwk)


class OidcProvider:
    """Issuers `{url}/{name}`, each with a discovery document and a JWKS; counts every GET."""

    def __init__(self) -> None:
        self.jwks: dict[str, list[dict[str, Any]]] = {}
        self.discovery_issuer: dict[str, str] = {}  # override the `issuer` a document names
        self.gets: Counter[str] = Counter()
        self.holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                provider.gets[self.path] += 1
                held = provider.holds.get(self.path)
                if held is not None:  # a stalling JWKS: answer only once released
                    arrived, release = held
                    arrived.set()
                    release.wait(120)
                status, body = provider.answer(self.path)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def issuer(self, name: str) -> str:
        return f"{self.url}/{name}"

    def publish(self, name: str, *keys: SigningKey) -> None:
        self.jwks[name] = [key.public_jwk for key in keys]

    def hold(self, name: str) -> tuple[threading.Event, threading.Event]:
        """Make the JWKS of `name` stall: (set when a fetch arrives, set it to answer)."""
        events = (threading.Event(), threading.Event())
        self.holds[f"/{name}/jwks"] = events
        return events

    def jwks_fetches(self, name: str) -> int:
        return self.gets[f"/{name}/jwks"]

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        name, _, rest = path.strip("/").partition("/")
        if name not in self.jwks:
            return 404, {"error": "no such issuer"}
        if rest == ".well-known/openid-configuration":
            return 200, {
                "issuer": self.discovery_issuer.get(name, self.issuer(name)),
                "jwks_uri": f"{self.issuer(name)}/jwks",
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
            }
        if rest == "jwks":
            return 200, {"keys": self.jwks[name]}
        return 404, {"error": "not found"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Keys:
    rsa: SigningKey = field(default_factory=lambda: make_key("rsa-1", "RSA"))
    ec: SigningKey = field(default_factory=lambda: make_key("ec-1", "EC", jwk_alg=False))
    github: SigningKey = field(default_factory=lambda: make_key("gh-1", "RSA"))
    fresh: SigningKey = field(default_factory=lambda: make_key("fresh-1", "RSA"))
    rogue: SigningKey = field(default_factory=lambda: make_key("rsa-1", "RSA"))
    """Not published anywhere, and claiming the kid of the published RSA key."""


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def provider(stack_ledger: str) -> Iterator[OidcProvider]:
    """One per ledger's stack (`stack_ledger`): what it records is that stack's alone."""
    server = OidcProvider()
    try:
        yield server
    finally:
        server.close()


# ============================================================================================
# The stack: a Keycloak-like issuer, a GitHub Actions stand-in, and one kept for kid counting
# ============================================================================================

GITHUB_SUB = "repo:acme/models:environment:production"


def policy_yaml(github_issuer: str) -> str:
    return f"""roles:
  data-scientist: {{"*": CAN_EDIT}}
  ml-lead: {{"*": CAN_MANAGE_PRODUCTION_VERSIONS}}
  platform-admin: {{"*": CAN_MANAGE}}
  ci-deployer: {{"*": CAN_READ}}
transitions:
  - to: Production
    approvals: {{quorum: 1, roles: [ml-lead]}}
  - to: Staging
    approvals: {{quorum: 1, roles: [ml-lead]}}
identities:
  - issuer: {github_issuer}
    claims:
      repository_id: "123456"
      environment: production
      ref: refs/heads/main
    roles: [ci-deployer]
"""


@pytest.fixture(scope="module")
def oidc_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    provider: OidcProvider,
    keys: Keys,
) -> Iterator[SignoffStack]:
    provider.publish("idp", keys.rsa, keys.ec)
    provider.publish("github", keys.github)
    provider.publish("fresh", keys.fresh)
    issuers = [
        # Keycloak-like: keys found by discovery, roles under a nested claim.
        {
            "issuer": provider.issuer("idp"),
            "audience": IDP_AUDIENCE,
            "roles_claim": "realm_access.roles",
        },
        # Stands in for https://token.actions.githubusercontent.com: JWKS URL given, RS256 only.
        {
            "issuer": provider.issuer("github"),
            "audience": CI_AUDIENCE,
            "jwks_url": f"{provider.issuer('github')}/jwks",
            "algorithms": ["RS256"],
        },
        {"issuer": provider.issuer("fresh"), "audience": IDP_AUDIENCE},
    ]
    root = tmp_path_factory.mktemp("signoff-oidc")
    policy_file = root / "policy.yaml"
    policy_file.write_text(policy_yaml(provider.issuer("github")), encoding="utf-8")
    stack = launch_stack(
        root,
        temporal_server.address,
        mlflow_server.url,
        SIGNOFF_OIDC_ISSUERS=json.dumps(issuers),
        SIGNOFF_POLICY_FILE=str(policy_file),
    )
    try:
        yield stack
    finally:
        stack.stop()
        log = (root / "api.log").read_text(errors="replace")
        assert "eyJ" not in log, "a token (or part of one) was logged"


@pytest.fixture(scope="module")
def model(oidc_stack: SignoffStack) -> dict[str, str]:
    with httpx.Client(base_url=oidc_stack.mlflow_url, timeout=30) as mlflow:
        seeded = seed_version(mlflow)
    return {"name": seeded.name, "version": seeded.version}


def idp_claims(provider: OidcProvider, **overrides: Any) -> dict[str, Any]:
    """Valid claims of the Keycloak-like issuer; an override of None removes the claim."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": provider.issuer("idp"),
        "aud": IDP_AUDIENCE,
        "sub": "kim",
        "realm_access": {"roles": ["data-scientist"]},
        "iat": now,
        "exp": now + 600,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def github_claims(provider: OidcProvider, **overrides: Any) -> dict[str, Any]:
    """A GitHub Actions token's claims, of the production deployment job on main. It also
    carries a `roles` claim naming platform-admin, which must never count."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": provider.issuer("github"),
        "aud": CI_AUDIENCE,
        "sub": GITHUB_SUB,
        "repository": "acme/models",
        "repository_id": "123456",
        "repository_owner": "acme",
        "repository_owner_id": "4242",
        "environment": "production",
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "job_workflow_ref": "acme/models/.github/workflows/deploy.yml@refs/heads/main",
        "workflow": "deploy",
        "event_name": "workflow_dispatch",
        "run_id": "987654321",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "roles": ["platform-admin"],
        "nbf": now - 5,
        "iat": now,
        "exp": now + 300,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def get(stack: SignoffStack, token: str, params: dict[str, str]) -> httpx.Response:
    return httpx.get(
        f"{stack.api_url}{PROTECTED}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64json(header)}.{b64json(claims)}."


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """Signed by hand: python-jose refuses a PEM as an HMAC secret, an attacker does not."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


# ============================================================================================
# End to end: the API
# ============================================================================================


@pytest.mark.parametrize("kind", ["RS256 (RSA key)", "ES256 (EC P-256 key)"])
def test_valid_tokens_are_accepted(
    kind: str,
    oidc_stack: SignoffStack,
    provider: OidcProvider,
    keys: Keys,
    model: dict[str, str],
) -> None:
    key = keys.rsa if kind.startswith("RS") else keys.ec
    token = key.sign(idp_claims(provider))
    assert jwt.get_unverified_header(token)["alg"] == key.alg
    response = get(oidc_stack, token, model)
    assert response.status_code == 200, response.text
    assert response.json() == {"requests": []}


def test_roles_come_from_the_issuers_roles_claim(
    oidc_stack: SignoffStack, provider: OidcProvider, keys: Keys, model: dict[str, str]
) -> None:
    """realm_access.roles is configured for this issuer: a top-level `roles` does not count,
    and a valid token without roles is authenticated (403, not 401) but sees no model."""
    no_roles = keys.rsa.sign(idp_claims(provider, realm_access=None))
    assert_error(get(oidc_stack, no_roles, model), 403, "PERMISSION_DENIED")
    elsewhere = keys.rsa.sign(idp_claims(provider, realm_access=None, roles=["data-scientist"]))
    assert_error(get(oidc_stack, elsewhere, model), 403, "PERMISSION_DENIED")
    nested = keys.ec.sign(idp_claims(provider, realm_access={"roles": ["ml-lead"]}))
    assert get(oidc_stack, nested, model).status_code == 200


def _expired(p: OidcProvider, k: Keys) -> str:
    now = int(time.time())
    return k.rsa.sign(idp_claims(p, iat=now - 900, exp=now - 300))


BAD_TOKENS: dict[str, Callable[[OidcProvider, Keys], str]] = {
    "wrong issuer": lambda p, k: k.rsa.sign(idp_claims(p, iss="https://evil.example")),
    "issuer not configured, same provider": lambda p, k: k.rsa.sign(
        idp_claims(p, iss=p.issuer("idp2"))
    ),
    "issuer with a trailing slash": lambda p, k: k.rsa.sign(idp_claims(p, iss=p.issuer("idp/"))),
    "no issuer": lambda p, k: k.rsa.sign(idp_claims(p, iss=None)),
    "wrong audience": lambda p, k: k.rsa.sign(idp_claims(p, aud="someone-else")),
    "another issuer's audience": lambda p, k: k.rsa.sign(idp_claims(p, aud=CI_AUDIENCE)),
    "missing audience": lambda p, k: k.rsa.sign(idp_claims(p, aud=None)),
    "expired": _expired,
    "no exp": lambda p, k: k.rsa.sign(idp_claims(p, exp=None)),
    "not valid yet": lambda p, k: k.rsa.sign(idp_claims(p, nbf=int(time.time()) + 600)),
    "no sub": lambda p, k: k.ec.sign(idp_claims(p, sub=None)),
    "alg none": lambda p, k: unsigned({"alg": "none", "kid": "rsa-1"}, idp_claims(p)),
    "alg None, no kid": lambda p, k: unsigned({"alg": "None"}, idp_claims(p)),
    "HS256 signed with the RSA public key PEM": lambda p, k: hmac_signed(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, idp_claims(p), k.rsa.public_pem.encode()
    ),
    "HS256 signed with the EC public key PEM": lambda p, k: hmac_signed(
        {"alg": "HS256", "kid": "ec-1"}, idp_claims(p), k.ec.public_pem.encode()
    ),
    "HS256 with the development secret": lambda p, k: jwt.encode(
        idp_claims(p), TEST_JWT_SECRET, algorithm="HS256"
    ),
    "RS256 with a key not in the JWKS (published kid)": lambda p, k: k.rogue.sign(idp_claims(p)),
    "RS256 with a key not in the JWKS (its own kid)": lambda p, k: k.rogue.sign(
        idp_claims(p), kid="rogue-1"
    ),
    "RS256 with no kid": lambda p, k: k.rsa.sign(idp_claims(p), kid=None),
    "ES256 naming the RSA key's kid": lambda p, k: k.ec.sign(idp_claims(p), kid="rsa-1"),
    "RS256 naming the EC key's kid": lambda p, k: k.rsa.sign(idp_claims(p), kid="ec-1"),
    "RS384, not allowed for the issuer": lambda p, k: k.rsa.sign(idp_claims(p), alg="RS384"),
    "the idp's key claiming to be GitHub": lambda p, k: k.rsa.sign(github_claims(p)),
    "GitHub's key on an ES256 header": lambda p, k: k.ec.sign(github_claims(p), kid="gh-1"),
    "RS256 with the dev issuer": lambda p, k: k.rsa.sign(idp_claims(p, iss=TEST_ISSUER)),
    "payload swapped under a valid signature": lambda p, k: ".".join(
        [
            k.rsa.sign(idp_claims(p)).split(".")[0],
            b64json(idp_claims(p, realm_access={"roles": ["platform-admin"]})),
            k.rsa.sign(idp_claims(p)).split(".")[2],
        ]
    ),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_oidc_token_is_401(
    case: str,
    oidc_stack: SignoffStack,
    provider: OidcProvider,
    keys: Keys,
    model: dict[str, str],
) -> None:
    token = BAD_TOKENS[case](provider, keys)
    assert_unauthenticated(get(oidc_stack, token, model), token)


def test_the_failure_says_what_is_wrong(
    oidc_stack: SignoffStack, provider: OidcProvider, keys: Keys, model: dict[str, str]
) -> None:
    def message(case: str) -> str:
        token = BAD_TOKENS[case](provider, keys)
        return assert_unauthenticated(get(oidc_stack, token, model), token)

    assert "expired" in message("expired")
    assert "aud" in message("missing audience").lower()
    assert "RS256 or ES256" in message("HS256 signed with the RSA public key PEM")
    assert "'none'" in message("alg none")
    assert "kid 'rogue-1'" in message("RS256 with a key not in the JWKS (its own kid)")
    assert "not one of them" in message("wrong issuer")
    assert "'kid'" in message("RS256 with no kid")
    assert "signature" in message("RS256 with a key not in the JWKS (published kid)").lower()


def test_an_unknown_kid_is_401_and_refetches_the_jwks_at_most_once_a_minute(
    oidc_stack: SignoffStack, provider: OidcProvider, keys: Keys, model: dict[str, str]
) -> None:
    fresh = {"iss": provider.issuer("fresh"), "aud": IDP_AUDIENCE, "roles": ["data-scientist"]}
    assert provider.jwks_fetches("fresh") == 0  # nothing is fetched before a token needs it
    for kid in ("unknown-1", "unknown-2", "unknown-1", "unknown-3"):
        token = keys.fresh.sign(idp_claims(provider, **fresh), kid=kid)
        message = assert_unauthenticated(get(oidc_stack, token, model), token)
        assert f"kid '{kid}'" in message
        assert provider.jwks_fetches("fresh") == 1, kid  # one fetch, however many unknown kids
    assert provider.gets["/fresh/.well-known/openid-configuration"] == 1

    # The known key is served from the cache.
    assert get(oidc_stack, keys.fresh.sign(idp_claims(provider, **fresh)), model).status_code == 200
    # A key added to the JWKS within the minute is not fetched yet: still one fetch.
    rotated = make_key("fresh-2", "RSA")
    provider.publish("fresh", keys.fresh, rotated)
    token = rotated.sign(idp_claims(provider, **fresh))
    assert_unauthenticated(get(oidc_stack, token, model), token)
    assert provider.jwks_fetches("fresh") == 1


def test_a_github_token_matching_a_rule_gets_exactly_the_configured_role(
    oidc_stack: SignoffStack,
    provider: OidcProvider,
    keys: Keys,
    make_version: Callable[..., SeededVersion],
) -> None:
    """The rule grants ci-deployer (CAN_READ): the pipeline may request a transition but not
    approve it, even though its token carries `roles: [platform-admin]`."""
    seeded = make_version()
    target = {"name": seeded.name, "version": seeded.version, "stage": "Staging"}
    token = keys.github.sign(github_claims(provider))
    with httpx.Client(
        base_url=oidc_stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as ci:
        created = ci.post(f"{TRANSITIONS}/create", json=target)
        assert created.status_code == 200, created.text
        request = created.json()["request"]
        assert request["user_id"] == GITHUB_SUB
        assert request["to_stage"] == "Staging"

        listed = ci.get(PROTECTED, params={"name": seeded.name, "version": seeded.version})
        assert listed.status_code == 200, listed.text
        assert [item["user_id"] for item in listed.json()["requests"]] == [GITHUB_SUB]

        refused = assert_error(
            ci.post(f"{TRANSITIONS}/approve", json=target), 403, "PERMISSION_DENIED"
        )
        assert f"{GITHUB_SUB} has CAN_READ" in refused
        assert "CAN_MANAGE_STAGING_VERSIONS is needed" in refused

        # The requester may always cancel their own request.
        cancelled = ci.delete(f"{TRANSITIONS}/delete", params=target | {"creator": GITHUB_SUB})
        assert cancelled.status_code == 200, cancelled.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"environment": "staging"},
        {"repository_id": "654321", "repository": "acme/models"},
        {"repository_id": 123456},
        {"ref": "refs/heads/feature-x"},
        {"environment": None, "sub": "repo:acme/models:ref:refs/heads/main"},
    ],
    ids=["other environment", "other repository_id", "numeric repository_id", "other ref",
         "no environment"],
)  # fmt: skip
def test_a_github_token_matching_no_rule_has_no_role(
    overrides: dict[str, Any],
    oidc_stack: SignoffStack,
    provider: OidcProvider,
    keys: Keys,
    model: dict[str, str],
) -> None:
    """Authenticated (so 403, not 401), but no rule matches, and its `roles` claim is ignored
    because the issuer has identity rules."""
    token = keys.github.sign(github_claims(provider, **overrides))
    message = assert_error(get(oidc_stack, token, model), 403, "PERMISSION_DENIED")
    assert "has no permission" in message


def test_the_development_secret_still_works_beside_oidc(
    oidc_stack: SignoffStack, model: dict[str, str]
) -> None:
    token = oidc_stack.token("dana", "data-scientist")
    assert get(oidc_stack, token, model).status_code == 200


# ============================================================================================
# The verifier on its own, over real HTTP, with a clock the test controls
# ============================================================================================


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier_for(
    provider: OidcProvider,
    name: str,
    clock: Clock,
    *,
    policy: Policy | None = None,
    **issuer: Any,
) -> TokenVerifier:
    settings = ApiSettings(
        _env_file=None,  # type: ignore[call-arg]
        jwt_secret=TEST_JWT_SECRET,
        oidc_issuers=[{"issuer": provider.issuer(name), "audience": IDP_AUDIENCE, **issuer}],
    )
    return TokenVerifier(settings, policy or Policy(roles={}, transitions=[]), clock=clock)


def claims_for(provider: OidcProvider, name: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": provider.issuer(name),
        "aud": IDP_AUDIENCE,
        "sub": f"{name}-user",
        "roles": ["data-scientist"],
        "iat": now,
        "exp": now + 600,
    } | extra


async def test_an_unknown_kid_refetches_once_the_minute_is_over(provider: OidcProvider) -> None:
    first, second = make_key("k1", "RSA"), make_key("k2", "EC")
    provider.publish("rotating", first)
    clock = Clock()
    verifier = verifier_for(provider, "rotating", clock)

    principal = await verifier.verify(first.sign(claims_for(provider, "rotating")))
    assert (principal.sub, principal.roles) == ("rotating-user", ["data-scientist"])
    assert provider.jwks_fetches("rotating") == 1

    provider.publish("rotating", first, second)  # the issuer rotates in a new key
    clock.now += 30
    with pytest.raises(AuthenticationError, match="no ES256 signing key with kid 'k2'"):
        await verifier.verify(second.sign(claims_for(provider, "rotating")))
    assert provider.jwks_fetches("rotating") == 1

    clock.now += 31  # a minute after the last fetch: the unknown kid refetches
    assert (
        await verifier.verify(second.sign(claims_for(provider, "rotating")))
    ).sub == "rotating-user"
    assert provider.jwks_fetches("rotating") == 2

    clock.now += 1
    with pytest.raises(AuthenticationError, match="kid 'k3'"):
        await verifier.verify(second.sign(claims_for(provider, "rotating"), kid="k3"))
    assert (
        await verifier.verify(first.sign(claims_for(provider, "rotating")))
    ).sub == "rotating-user"
    assert provider.jwks_fetches("rotating") == 2


async def test_keys_are_refreshed_after_an_hour_so_a_withdrawn_key_stops_working(
    provider: OidcProvider,
) -> None:
    old, new = make_key("old", "RSA"), make_key("new", "RSA")
    provider.publish("withdrawing", old)
    clock = Clock()
    verifier = verifier_for(provider, "withdrawing", clock)
    assert (
        await verifier.verify(old.sign(claims_for(provider, "withdrawing")))
    ).sub == "withdrawing-user"
    provider.publish("withdrawing", new)

    clock.now += 3000  # within the hour: the cached key still verifies, nothing fetched
    assert (
        await verifier.verify(old.sign(claims_for(provider, "withdrawing")))
    ).sub == "withdrawing-user"
    assert provider.jwks_fetches("withdrawing") == 1

    clock.now += 601  # over an hour: refreshed on use, and the old key is gone
    with pytest.raises(AuthenticationError, match="kid 'old'"):
        await verifier.verify(old.sign(claims_for(provider, "withdrawing")))
    assert provider.jwks_fetches("withdrawing") == 2
    assert (
        await verifier.verify(new.sign(claims_for(provider, "withdrawing")))
    ).sub == "withdrawing-user"


async def test_an_issuer_that_cannot_be_reached_is_401_and_not_hammered(
    provider: OidcProvider,
) -> None:
    key = make_key("k1", "RSA")
    clock = Clock()
    verifier = verifier_for(provider, "late", clock)  # not published yet: discovery answers 404
    token = key.sign(claims_for(provider, "late"))
    for _ in range(3):
        with pytest.raises(AuthenticationError) as caught:
            await verifier.verify(token)
        assert str(caught.value) == (
            f"the signing keys of issuer {provider.issuer('late')} are unavailable right now; "
            "try again later"
        )
    assert provider.gets["/late/.well-known/openid-configuration"] == 1

    provider.publish("late", key)
    clock.now += 61
    assert (await verifier.verify(token)).sub == "late-user"


async def test_a_discovery_document_naming_another_issuer_is_refused(
    provider: OidcProvider,
) -> None:
    key = make_key("k1", "RSA")
    provider.publish("impostor", key)
    provider.discovery_issuer["impostor"] = "https://someone-else.example"
    verifier = verifier_for(provider, "impostor", Clock())
    with pytest.raises(AuthenticationError, match="unavailable"):
        await verifier.verify(key.sign(claims_for(provider, "impostor")))
    assert provider.jwks_fetches("impostor") == 0


async def test_identity_rules_replace_the_roles_claim_and_null_disables_it(
    provider: OidcProvider,
) -> None:
    key = make_key("k1", "RSA")
    provider.publish("ci", key)
    issuer = provider.issuer("ci")
    with_rules = load_policy_text(
        f"""roles:
  ci-deployer: {{"*": CAN_READ}}
  platform-admin: {{"*": CAN_MANAGE}}
transitions: []
identities:
  - issuer: {issuer}
    claims: {{environment: production}}
    roles: [ci-deployer]
"""
    )
    claims = claims_for(provider, "ci", environment="production", roles=["platform-admin"])
    token = key.sign(claims)

    plain = verifier_for(provider, "ci", Clock())
    assert (await plain.verify(token)).roles == ["platform-admin"]  # no rules: the roles claim
    ruled = verifier_for(provider, "ci", Clock(), policy=with_rules)
    assert (await ruled.verify(token)).roles == ["ci-deployer"]  # rules only
    other = key.sign(claims | {"environment": "staging"})
    assert (await ruled.verify(other)).roles == []
    no_claim = verifier_for(provider, "ci", Clock(), roles_claim=None)
    assert (await no_claim.verify(token)).roles == []  # "roles_claim": null: never from the token


def test_a_key_verifies_only_the_algorithms_its_type_is_for(keys: Keys) -> None:
    """The second guard behind each issuer's algorithm list: the key picked by `kid` must be
    of the type (and curve) the token's algorithm is defined for."""
    rsa_jwk, ec_jwk = keys.rsa.public_jwk, keys.ec.public_jwk
    assert key_fits(rsa_jwk, "RS256") and key_fits(ec_jwk, "ES256")
    assert not key_fits(rsa_jwk, "HS256")  # the public key as an HMAC secret
    assert not key_fits(ec_jwk, "HS256")
    assert not key_fits(rsa_jwk, "none")
    assert not key_fits(rsa_jwk, "ES256") and not key_fits(ec_jwk, "RS256")
    assert not key_fits(ec_jwk, "ES384")  # P-256 key, P-384 algorithm
    assert not key_fits(rsa_jwk, "RS384")  # the JWK pins alg RS256
    assert not key_fits(rsa_jwk | {"use": "enc"}, "RS256")
    assert not key_fits(ec_jwk | {"key_ops": ["encrypt"]}, "ES256")
    assert not key_fits({"kty": "oct", "k": "c2VjcmV0", "kid": "x"}, "HS256")


async def test_a_stalled_jwks_fetch_holds_up_only_the_tokens_that_need_it(
    provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the issuer's JWKS hangs, a token with a cached kid verifies at once; two tokens
    with a new kid share the one fetch (a caller going away does not cancel it for the other),
    and both verify with the keys it brings."""
    monkeypatch.setattr("api.auth.JWKS_FETCH_TIMEOUT_S", 120.0)  # the stall ends when we say
    known, rotated = make_key("k1", "RSA"), make_key("k2", "EC")
    provider.publish("stalling", known)
    clock = Clock()
    verifier = verifier_for(provider, "stalling", clock)
    await verifier.verify(known.sign(claims_for(provider, "stalling")))
    arrived, release = provider.hold("stalling")
    clock.now += 61
    try:
        waiting = [
            asyncio.create_task(verifier.verify(rotated.sign(claims_for(provider, "stalling"))))
            for _ in range(2)
        ]
        assert await asyncio.to_thread(arrived.wait, 60), "the refetch never reached the issuer"
        principal = await verifier.verify(known.sign(claims_for(provider, "stalling")))
        assert principal.sub == "stalling-user"
        assert not any(task.done() for task in waiting)  # still waiting for the keys
        waiting[0].cancel()
        provider.publish("stalling", known, rotated)
    finally:
        release.set()
    assert (await waiting[1]).sub == "stalling-user"
    assert waiting[0].cancelled()
    assert provider.jwks_fetches("stalling") == 2


# ============================================================================================
# SIGNOFF_OIDC_ISSUERS
# ============================================================================================


def test_the_setting_is_read_from_the_environment_with_its_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIGNOFF_ROLES_CLAIM", "groups")
    monkeypatch.setenv(
        "SIGNOFF_OIDC_ISSUERS",
        json.dumps(
            [
                {"issuer": "https://keycloak.example/realms/ml", "audience": "signoff"},
                {
                    "issuer": "https://token.actions.githubusercontent.com",
                    "audience": "signoff-ci",
                    "jwks_url": "https://token.actions.githubusercontent.com/.well-known/jwks",
                    "algorithms": ["RS256"],
                    "roles_claim": None,
                },
            ]
        ),
    )
    keycloak, github = ApiSettings(_env_file=None).oidc_issuers  # type: ignore[call-arg]
    assert keycloak.algorithms == ["RS256", "ES256"]
    assert keycloak.roles_claim == "groups"  # SIGNOFF_ROLES_CLAIM unless given
    assert keycloak.jwks_url is None
    assert keycloak.discovery_url == (
        "https://keycloak.example/realms/ml/.well-known/openid-configuration"
    )
    assert github.roles_claim is None
    assert github.algorithms == ["RS256"]
    monkeypatch.setenv("SIGNOFF_OIDC_ISSUERS", "")
    assert ApiSettings(_env_file=None).oidc_issuers == []  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[{", "SIGNOFF_OIDC_ISSUERS is not valid JSON"),
        ('{"issuer": "https://a.example"}', "must be a JSON list of issuers"),
        ('[{"issuer": "https://a.example"}]', "audience"),
        ('[{"issuer": "https://a.example", "audience": "x", "jwks": "y"}]', "jwks"),
        ('[{"issuer": "https://a.example", "audience": "x", "algorithms": ["HS256"]}]',
         "'HS256' is never accepted from an OIDC issuer"),
        ('[{"issuer": "https://a.example", "audience": "x", "algorithms": ["none"]}]',
         "'none' is never accepted"),
        ('[{"issuer": "https://a.example", "audience": "x", "algorithms": ["PS256"]}]',
         "not supported by python-jose"),
        ('[{"issuer": "https://a.example", "audience": "x", "algorithms": []}]',
         "at least one algorithm"),
        ('[{"issuer": "http://idp.example", "audience": "x"}]', "must use https"),
        ('[{"issuer": "https://a.example", "audience": "x", "jwks_url": "http://a.example/k"}]',
         "must use https"),
        ('[{"issuer": "https://a.example", "audience": "x"}, '
         '{"issuer": "https://a.example", "audience": "y"}]', "twice"),
        (f'[{{"issuer": "{TEST_ISSUER}", "audience": "x"}}]', "also SIGNOFF_JWT_ISSUER"),
    ],
)  # fmt: skip
def test_an_invalid_setting_is_refused_with_a_clear_error(
    value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_OIDC_ISSUERS", value)
    monkeypatch.setenv("SIGNOFF_JWT_ISSUER", TEST_ISSUER)
    with pytest.raises(ValidationError, match="oidc_issuers") as caught:
        ApiSettings(_env_file=None)  # type: ignore[call-arg]
    assert expected in str(caught.value)


def test_the_api_refuses_to_start_with_an_invalid_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")} | {
        "SIGNOFF_JWT_SECRET": TEST_JWT_SECRET,
        "SIGNOFF_DATA_DIR": str(tmp_path),
        "SIGNOFF_OIDC_ISSUERS": '[{"issuer": "https://idp.example", "audience": "signoff",',
    }
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "api", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "SIGNOFF_OIDC_ISSUERS is not valid JSON" in done.stderr
