"""The JWT settings of every test stack, and tokens minted for them."""

from __future__ import annotations

import time
from typing import Any

from jose import jwt as jose_jwt

TEST_JWT_SECRET = "signoff-test-secret-" + "x" * 32
TEST_AUDIENCE = "signoff-tests"
TEST_ISSUER = "https://signoff.test"


def mint_token(sub: str, *roles: str, ttl_s: int = 3600, **claims: Any) -> str:
    """A valid token for a test stack (HS256, its issuer and audience); `claims` override."""
    now = int(time.time())
    body = {
        "sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl_s,
        "iss": TEST_ISSUER, "aud": TEST_AUDIENCE,
    } | claims  # fmt: skip
    return jose_jwt.encode(body, TEST_JWT_SECRET, algorithm="HS256")
