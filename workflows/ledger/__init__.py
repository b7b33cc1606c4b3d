"""The ledger: Signoff's durable, queryable record (requests and their audit entries,
comments, webhooks and deliveries, inbound webhooks, registry marks, reconciler runs, web
sessions, Slack messages, the audit chain and its anchors, GitHub deployments waiting on
Signoff, break-glass reviews, pinned policies).

`Ledger(url)` gives one repository per aggregate (`ledger.requests`, `ledger.comments`, ...),
each `async`, each returning domain models; table classes stay inside this package."""

from workflows.ledger.comments import comment_entry_id
from workflows.ledger.engine import LedgerUnavailable
from workflows.ledger.inbound import STALE_CLAIM_MS
from workflows.ledger.inbox import InboxQuery, InboxSlice
from workflows.ledger.marks import PENDING_GRACE_MS
from workflows.ledger.records import (
    AuditAnchor,
    ChainedEntry,
    Comment,
    DeliveryAttempt,
    DeploymentGate,
    InboundHook,
    ReconcilerRun,
    RegistryMark,
    SlackAttempt,
    SlackMessage,
    Webhook,
    WebhookDelivery,
)
from workflows.ledger.store import Ledger
from workflows.ledger.web_sessions import WebLogin, WebSession

__all__ = [
    "PENDING_GRACE_MS",
    "STALE_CLAIM_MS",
    "AuditAnchor",
    "ChainedEntry",
    "Comment",
    "DeliveryAttempt",
    "DeploymentGate",
    "InboundHook",
    "InboxQuery",
    "InboxSlice",
    "Ledger",
    "LedgerUnavailable",
    "ReconcilerRun",
    "RegistryMark",
    "SlackAttempt",
    "SlackMessage",
    "Webhook",
    "WebLogin",
    "WebSession",
    "WebhookDelivery",
    "comment_entry_id",
]
