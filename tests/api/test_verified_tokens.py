"""A verified token is remembered, but never past its `exp` nor longer than a minute, and a
refused one is never remembered: the verifier answers a repeat call as a full check would."""

from __future__ import annotations

import time

import pytest
from jose import jwt

from api.auth import AuthenticationError, TokenVerifier, issue_dev_token
from api.settings import ApiSettings
from api.verified_tokens import TTL_S, VerifiedTokens
from policies import Policy, Principal
from tests.api.test_oidc import Clock

SECRET = "s" * 32


def verifier(wall: Clock, monotonic: Clock) -> TokenVerifier:
    settings = ApiSettings(jwt_secret=SECRET)
    return TokenVerifier(
        settings, Policy(roles={}, transitions=[]), clock=monotonic, wall_clock=wall
    )


async def test_a_remembered_token_still_expires_at_its_exp() -> None:
    wall, monotonic = Clock(), Clock()
    wall.now = time.time()
    check = verifier(wall, monotonic)
    token = issue_dev_token(ApiSettings(jwt_secret=SECRET), "lee", ["ml-lead"], ttl_s=10)
    assert await check.verify(token) == Principal(sub="lee", roles=["ml-lead"])
    wall.now += 5
    assert (await check.verify(token)).sub == "lee"  # remembered
    wall.now += 6  # past its exp, well within the minute
    with pytest.raises(AuthenticationError, match="expired"):
        await check.verify(token)


async def test_a_refused_token_is_refused_every_time() -> None:
    wall, monotonic = Clock(), Clock()
    wall.now = time.time()
    check = verifier(wall, monotonic)
    forged = jwt.encode(
        {"sub": "lee", "roles": ["platform-admin"], "exp": wall.now + 600}, "x" * 32, "HS256"
    )
    for _ in range(2):
        with pytest.raises(AuthenticationError, match="not valid"):
            await check.verify(forged)


def test_entries_last_a_minute_at_most_and_the_oldest_go_first() -> None:
    wall, monotonic = Clock(), Clock()
    remembered = VerifiedTokens(clock=monotonic, wall_clock=wall, max_entries=2)
    lee, mia = Principal(sub="lee"), Principal(sub="mia")
    remembered.remember("t1", lee, valid_until=wall.now + 3600)
    remembered.remember("t2", mia, valid_until=wall.now + 3600)
    assert remembered.get("t1") == lee  # now the most recently used
    remembered.remember("t3", mia, valid_until=wall.now + 3600)
    assert (remembered.get("t1"), remembered.get("t2")) == (lee, None)
    monotonic.now += TTL_S
    assert remembered.get("t1") is None
    assert "lee" not in repr(remembered)
