"""The web page's sessions and sign-ins under way, in a real SQLite ledger: only hashes of the
ids are stored, sessions end when idle or at their absolute expiry or at sign-out, and a
sign-in under way is taken once, however many callbacks race for it."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from workflows.ledger import Ledger
from workflows.ledger.web_sessions import TOUCH_EVERY_MS

MINUTE = 60_000


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    made = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    await made.migrate()
    yield made
    made.dispose()


async def _open(ledger: Ledger, session_id: str, now_ms: int, lifetime_ms: int = 60 * MINUTE):
    return await ledger.web_sessions.create(
        session_id,
        subject="lee",
        roles=["ml-lead"],
        issuer="https://idp.example",
        csrf_token="a-csrf-token",
        now_ms=now_ms,
        lifetime_ms=lifetime_ms,
    )


async def test_only_the_hash_of_the_session_id_is_stored(ledger: Ledger, tmp_path: Path) -> None:
    await _open(ledger, "the-secret-session-id", now_ms=1_000)
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        rows = db.execute("SELECT * FROM web_sessions").fetchall()
    assert len(rows) == 1
    assert rows[0][0] == hashlib.sha256(b"the-secret-session-id").hexdigest()
    assert "the-secret-session-id" not in repr(rows)
    found = await ledger.web_sessions.get("the-secret-session-id", now_ms=2_000, idle_ms=MINUTE)
    assert found is not None and found.subject == "lee" and found.roles == ["ml-lead"]
    assert await ledger.web_sessions.get("another-id", now_ms=2_000, idle_ms=MINUTE) is None


async def test_a_session_in_use_lives_until_its_absolute_expiry(ledger: Ledger) -> None:
    await _open(ledger, "busy", now_ms=0, lifetime_ms=10 * MINUTE)
    for minute in range(1, 10):  # used every minute: the idle clock keeps restarting
        found = await ledger.web_sessions.get("busy", now_ms=minute * MINUTE, idle_ms=2 * MINUTE)
        assert found is not None, minute
    assert await ledger.web_sessions.get("busy", now_ms=10 * MINUTE, idle_ms=2 * MINUTE) is None
    # Gone for good, even if asked with a clock from before.
    assert await ledger.web_sessions.get("busy", now_ms=MINUTE, idle_ms=2 * MINUTE) is None


async def test_an_idle_session_ends(ledger: Ledger) -> None:
    await _open(ledger, "idle", now_ms=0)
    assert await ledger.web_sessions.get("idle", now_ms=MINUTE, idle_ms=2 * MINUTE) is not None
    # Idle for two minutes since it was last seen (to within TOUCH_EVERY_MS).
    later = MINUTE + 2 * MINUTE + TOUCH_EVERY_MS
    assert await ledger.web_sessions.get("idle", now_ms=later, idle_ms=2 * MINUTE) is None


async def test_sign_out_ends_the_session(ledger: Ledger) -> None:
    await _open(ledger, "out", now_ms=0)
    assert await ledger.web_sessions.end("out") is True
    assert await ledger.web_sessions.get("out", now_ms=1, idle_ms=MINUTE) is None
    assert await ledger.web_sessions.end("out") is False


async def test_a_sign_in_under_way_is_taken_once(ledger: Ledger) -> None:
    await ledger.web_sessions.begin_login(
        "login-1",
        state="s",
        nonce="n",
        code_verifier="v",
        return_to="/ui/",
        now_ms=0,
        max_age_ms=10 * MINUTE,
    )
    taken = await asyncio.gather(
        *(
            ledger.web_sessions.take_login("login-1", now_ms=1, max_age_ms=10 * MINUTE)
            for _ in range(5)
        )
    )
    assert [login.state for login in taken if login is not None] == ["s"]


async def test_a_sign_in_that_took_too_long_is_refused(ledger: Ledger) -> None:
    await ledger.web_sessions.begin_login(
        "slow",
        state="s",
        nonce="n",
        code_verifier="v",
        return_to="/ui/",
        now_ms=0,
        max_age_ms=MINUTE,
    )
    assert await ledger.web_sessions.take_login("slow", now_ms=MINUTE, max_age_ms=MINUTE) is None
