"""Web page sessions and sign-ins under way, in the ledger so any API replica serves them.

The browser holds an opaque random id (a session id, or a login id while it is away at the
identity provider); the ledger keeps only its SHA-256, so reading the table signs no one in.
A session ends when unused for its idle lifetime, at its absolute expiry, or at sign-out. A
sign-in under way is taken (and deleted) exactly once, by one conditional DELETE, so a replayed
callback finds nothing.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlmodel import Session, col

from workflows.ledger.engine import Database
from workflows.ledger.tables import WebLoginRow, WebSessionRow

TOUCH_EVERY_MS = 30_000
"""`last_seen_ms` is written at most this often per session, so a polling page does not write
on every call; the idle lifetime is therefore exact to within this."""


def id_hash(secret_id: str) -> str:
    """What the ledger stores for an id the browser holds."""
    return hashlib.sha256(secret_id.encode()).hexdigest()


class WebSession(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    roles: list[str]
    issuer: str
    csrf_token: str
    created_ms: int
    last_seen_ms: int
    expires_ms: int
    id_token_enc: str | None = Field(default=None, repr=False)
    """The provider's ID token, sealed under a key derived from the session id (see
    `api.services.web_logout`); None for a development sign-in or a provider without
    RP-initiated logout."""

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode(), self.csrf_token.encode()
        )


class WebLogin(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: str
    nonce: str
    code_verifier: str
    return_to: str
    created_ms: int


class WebSessionRepository:
    """`ledger.web_sessions`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- sessions -------------------------------------------------------------------------

    async def create(
        self,
        session_id: str,
        *,
        subject: str,
        roles: list[str],
        issuer: str,
        csrf_token: str,
        now_ms: int,
        lifetime_ms: int,
        id_token_enc: str | None = None,
    ) -> WebSession:
        row = WebSessionRow(
            id_hash=id_hash(session_id),
            subject=subject,
            roles=list(roles),
            issuer=issuer,
            csrf_token=csrf_token,
            created_ms=now_ms,
            last_seen_ms=now_ms,
            expires_ms=now_ms + lifetime_ms,
            id_token_enc=id_token_enc,
        )

        def work(session: Session) -> WebSession:
            # Ended sessions are swept as new ones begin: the table stays small.
            session.exec(sql_delete(WebSessionRow).where(col(WebSessionRow.expires_ms) <= now_ms))
            session.add(row)
            return _session(row)

        return await self._db.run(work)

    async def get(self, session_id: str, *, now_ms: int, idle_ms: int) -> WebSession | None:
        """The live session with this id, its idle clock restarted; None when there is none
        (never was, signed out, idle too long, or past its absolute expiry)."""
        key = id_hash(session_id)

        def work(session: Session) -> WebSession | None:
            row = session.get(WebSessionRow, key)
            if row is None:
                return None
            if row.expires_ms <= now_ms or row.last_seen_ms + idle_ms <= now_ms:
                session.delete(row)
                return None
            if now_ms - row.last_seen_ms >= TOUCH_EVERY_MS:
                session.exec(
                    sql_update(WebSessionRow)
                    .where(col(WebSessionRow.id_hash) == key)
                    .values(last_seen_ms=now_ms)
                )
                row.last_seen_ms = now_ms
            return _session(row)

        return await self._db.run(work)

    async def end(self, session_id: str) -> bool:
        """Sign-out: the session is gone for every replica. False if there was none."""
        key = id_hash(session_id)

        def work(session: Session) -> bool:
            result = session.exec(
                sql_delete(WebSessionRow).where(col(WebSessionRow.id_hash) == key)
            )
            return bool(result.rowcount)

        return await self._db.run(work)

    # -- sign-ins under way ---------------------------------------------------------------

    async def begin_login(
        self,
        login_id: str,
        *,
        state: str,
        nonce: str,
        code_verifier: str,
        return_to: str,
        now_ms: int,
        max_age_ms: int,
    ) -> None:
        row = WebLoginRow(
            id_hash=id_hash(login_id),
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,
            return_to=return_to,
            created_ms=now_ms,
        )

        def work(session: Session) -> None:
            session.exec(
                sql_delete(WebLoginRow).where(col(WebLoginRow.created_ms) <= now_ms - max_age_ms)
            )
            session.add(row)

        await self._db.run(work)

    async def take_login(self, login_id: str, *, now_ms: int, max_age_ms: int) -> WebLogin | None:
        """The sign-in under way with this id, removed so it is taken once; None if there is
        none (or it is older than `max_age_ms`). Of two concurrent callers one gets it."""
        key = id_hash(login_id)

        def work(session: Session) -> WebLogin | None:
            row = session.get(WebLoginRow, key)
            if row is None:
                return None
            login = WebLogin.model_validate(row, from_attributes=True)
            result = session.exec(sql_delete(WebLoginRow).where(col(WebLoginRow.id_hash) == key))
            if not result.rowcount or login.created_ms <= now_ms - max_age_ms:
                return None
            return login

        return await self._db.run(work)


def _session(row: WebSessionRow) -> WebSession:
    return WebSession.model_validate(
        {
            "subject": row.subject,
            "roles": list(row.roles or []),
            "issuer": row.issuer,
            "csrf_token": row.csrf_token,
            "created_ms": row.created_ms,
            "last_seen_ms": row.last_seen_ms,
            "expires_ms": row.expires_ms,
            "id_token_enc": row.id_token_enc,
        }
    )
