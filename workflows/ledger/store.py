"""`Ledger`: one database, one repository per aggregate."""

from __future__ import annotations

from sqlalchemy import Engine

from workflows.ledger.audit import AuditRepository
from workflows.ledger.comments import CommentRepository
from workflows.ledger.deployment_gates import DeploymentGateRepository
from workflows.ledger.engine import Database
from workflows.ledger.inbound import InboundHookRepository
from workflows.ledger.inbox import InboxRepository
from workflows.ledger.marks import RegistryMarkRepository
from workflows.ledger.requests import RequestRepository
from workflows.ledger.reviews import PinnedPolicyRepository, ReviewRepository
from workflows.ledger.runs import ReconcilerRunRepository
from workflows.ledger.slack_messages import SlackMessageRepository
from workflows.ledger.web_sessions import WebSessionRepository
from workflows.ledger.webhooks import WebhookRepository


class Ledger:
    """Signoff's durable, queryable record. `Ledger(url)` opens no connection yet; `await
    ledger.migrate()` brings the schema up to date. Every repository method is `async` and
    returns domain models (`workflows.domain`, `workflows.ledger.records`)."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.requests = RequestRepository(self.database)
        self.comments = CommentRepository(self.database)
        self.webhooks = WebhookRepository(self.database)
        self.inbound = InboundHookRepository(self.database)
        self.marks = RegistryMarkRepository(self.database)
        self.runs = ReconcilerRunRepository(self.database)
        self.web_sessions = WebSessionRepository(self.database)
        self.audit = AuditRepository(self.database)
        self.inbox = InboxRepository(self.database)
        self.slack_messages = SlackMessageRepository(self.database)
        self.deployment_gates = DeploymentGateRepository(self.database)
        self.reviews = ReviewRepository(self.database)
        self.policies = PinnedPolicyRepository(self.database)

    @property
    def url(self) -> str:
        return self.database.url

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and tools that inspect the database)."""
        return self.database.engine

    async def migrate(self, revision: str = "head") -> None:
        """Bring the schema to the newest migration (or `revision`); safe from several
        processes at once."""
        await self.database.migrate(revision)

    async def schema_revision(self) -> str | None:
        """The migration the database is at; None for an empty one."""
        return await self.database.schema_revision()

    async def ping(self) -> None:
        await self.database.ping()

    def dispose(self) -> None:
        self.database.dispose()
