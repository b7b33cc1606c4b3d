"""Authentication: every way a bearer token can be wrong answers 401 UNAUTHENTICATED in
MLflow's error shape, before anything else is looked at, and never echoes the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from tests.support.http import SIGNOFF, TRANSITIONS, assert_unauthenticated
from tests.support.mlflow import seed_version
from tests.support.stack import SignoffStack
from tests.support.tokens import TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET

PROTECTED = f"{TRANSITIONS}/list"
"""A route every authenticated principal with a role may call (for a model that exists)."""

OTHER_SECRET = "not-the-signoff-secret-" + "y" * 32


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for the stack; an override of None removes the claim."""
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": "dana",
        "roles": ["data-scientist"],
        "iat": now,
        "exp": now + 600,
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), TEST_JWT_SECRET, algorithm="HS256")


def b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(alg: str = "none") -> str:
    """A token with `alg: none` and an empty signature, crafted by hand (jose refuses to)."""
    return f"{b64url({'alg': alg, 'typ': 'JWT'})}.{b64url(claims())}."


def rs256() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return jwt.encode(claims(), pem, algorithm="RS256")


def rs256_header_hmac_signed() -> str:
    """Algorithm confusion: the header says RS256 but the signature is an HMAC with the shared
    secret, which a verifier taking the algorithm from the token could accept."""
    signing_input = f"{b64url({'alg': 'RS256', 'typ': 'JWT'})}.{b64url(claims())}"
    mac = hmac.new(TEST_JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "not a JWT": lambda: "abc",
    "three empty parts": lambda: "..",
    "garbage segments": lambda: "eyJhbGciOi.eyJzdWIiOi.c2ln",
    "alg none": unsigned,
    "alg None": lambda: unsigned("None"),
    "signed with another secret": lambda: jwt.encode(claims(), OTHER_SECRET, algorithm="HS256"),
    "HS512 with the right secret": lambda: jwt.encode(claims(), TEST_JWT_SECRET, algorithm="HS512"),
    "RS256": rs256,
    "RS256 header, HMAC signature": rs256_header_hmac_signed,
    "expired": lambda: hs256(iat=int(time.time()) - 3600, exp=int(time.time()) - 60),
    "nbf in the future": lambda: hs256(nbf=int(time.time()) + 600),
    "no exp": lambda: hs256(exp=None),
    "exp not a number": lambda: hs256(exp="tomorrow"),
    "exp a numeric string": lambda: hs256(exp=str(int(time.time()) + 600)),
    "iat far in the future": lambda: hs256(iat=int(time.time()) + 3600),
    "sub with a control character": lambda: hs256(sub="dana\x00admin"),
    "sub too long": lambda: hs256(sub="d" * 257),
    "wrong audience": lambda: hs256(aud="someone-else"),
    "no audience": lambda: hs256(aud=None),
    "wrong issuer": lambda: hs256(iss="https://evil.example"),
    "no issuer": lambda: hs256(iss=None),
    "no sub": lambda: hs256(sub=None),
    "empty sub": lambda: hs256(sub=""),
    "sub not a string": lambda: hs256(sub=42),
    "roles an object": lambda: hs256(roles={"data-scientist": True}),
    "roles a number": lambda: hs256(roles=3),
    "roles with a non-string": lambda: hs256(roles=["data-scientist", 7]),
}


@pytest.fixture(scope="module")
def existing_model(signoff_stack: SignoffStack) -> dict[str, str]:
    """A registered version, so a 401 can never be mistaken for a 404 of a missing model."""
    with httpx.Client(base_url=signoff_stack.mlflow_url, timeout=30) as mlflow:
        seeded = seed_version(mlflow)
    return {"name": seeded.name, "version": seeded.version}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_token_is_401(
    case: str, signoff_stack: SignoffStack, existing_model: dict[str, str]
) -> None:
    token = BAD_TOKENS[case]()
    response = httpx.get(
        f"{signoff_stack.api_url}{PROTECTED}",
        params=existing_model,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert_unauthenticated(response, token)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic ZGFuYTpzZWNyZXQ=", "Token abc", "dana"],
)
def test_no_bearer_token_is_401(
    authorization: str | None, signoff_stack: SignoffStack, existing_model: dict[str, str]
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(
        f"{signoff_stack.api_url}{PROTECTED}", params=existing_model, headers=headers, timeout=30
    )
    message = assert_unauthenticated(response)
    assert "Bearer" in message


ROUTES = [
    ("POST", f"{TRANSITIONS}/create", {"json": {"name": "m", "version": "1", "stage": "Staging"}}),
    (
        "POST",
        f"{TRANSITIONS}/approve",
        {"json": {"name": "m", "version": "1", "stage": "Staging"}},
    ),
    ("POST", f"{TRANSITIONS}/reject", {"json": {"name": "m", "version": "1", "stage": "Staging"}}),
    (
        "DELETE",
        f"{TRANSITIONS}/delete",
        {"params": {"name": "m", "version": "1", "stage": "Staging", "creator": "x"}},
    ),
    ("GET", f"{TRANSITIONS}/list", {"params": {"name": "m", "version": "1"}}),
    ("GET", f"{SIGNOFF}/activities/list", {"params": {"name": "m", "version": "1"}}),
    ("GET", f"{SIGNOFF}/transition-requests/get", {"params": {"id": "abc"}}),
    ("GET", f"{SIGNOFF}/transition-requests/wait", {"params": {"id": "abc", "timeout_s": 1}}),
    ("GET", f"{SIGNOFF}/transition-requests/search", {"params": {}}),
    # Invalid input must not be reported before the caller is known.
    ("POST", f"{TRANSITIONS}/create", {"json": {"stage": "Prod"}}),
    ("GET", f"{TRANSITIONS}/list", {"params": {}}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ROUTES)
def test_every_protected_route_needs_a_token(
    method: str, path: str, kwargs: dict[str, Any], signoff_stack: SignoffStack
) -> None:
    response = httpx.request(method, f"{signoff_stack.api_url}{path}", timeout=30, **kwargs)
    assert_unauthenticated(response)
    expired = hs256(iat=int(time.time()) - 3600, exp=int(time.time()) - 60)
    response = httpx.request(
        method,
        f"{signoff_stack.api_url}{path}",
        headers={"Authorization": f"Bearer {expired}"},
        timeout=30,
        **kwargs,
    )
    assert_unauthenticated(response, expired)


def test_the_failure_says_what_is_wrong(
    signoff_stack: SignoffStack, existing_model: dict[str, str]
) -> None:
    def message(token: str) -> str:
        response = httpx.get(
            f"{signoff_stack.api_url}{PROTECTED}",
            params=existing_model,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return assert_unauthenticated(response, token)

    assert "expired" in message(BAD_TOKENS["expired"]())
    assert "HS512" in message(BAD_TOKENS["HS512 with the right secret"]())
    assert "none" in message(unsigned())
    assert "aud" in message(hs256(aud=None))
    assert "roles" in message(hs256(roles=3))


def test_a_valid_token_works(signoff_stack: SignoffStack, existing_model: dict[str, str]) -> None:
    token = hs256()
    response = httpx.get(
        f"{signoff_stack.api_url}{PROTECTED}",
        params=existing_model,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"requests": []}
    assert token not in response.text


def test_the_stack_token_helper_and_a_lowercase_scheme_work(
    signoff_stack: SignoffStack, existing_model: dict[str, str]
) -> None:
    token = signoff_stack.token("dana", "data-scientist")
    response = httpx.get(
        f"{signoff_stack.api_url}{PROTECTED}",
        params=existing_model,
        headers={"Authorization": f"bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_roles_may_be_a_space_separated_string(
    signoff_stack: SignoffStack, existing_model: dict[str, str]
) -> None:
    """A string is read as a space/comma separated list (as OAuth `scope` is), by design: kept
    for `scope`-like roles claims (see `api.auth.roles_from_claims` and README)."""
    token = hs256(roles="data-scientist")
    response = httpx.get(
        f"{signoff_stack.api_url}{PROTECTED}",
        params=existing_model,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
