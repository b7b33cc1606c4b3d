"""Ledger tables. The ledger is the queryable record; Temporal holds live state, MLflow the
registry. Only the ledger package touches these classes: its repositories hand out domain
models (`workflows.ledger.records`, `workflows.domain`). Schema changes go through an Alembic
migration in `migrations/versions/`; table and column names are the schema's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, text
from sqlmodel import Field, SQLModel


class TransitionRequestRow(SQLModel, table=True):
    """A projection of one TransitionWorkflow, overwritten only by a newer `revision`."""

    __tablename__ = "transition_requests"
    __table_args__ = (
        Index("ix_transition_requests_model_version", "model_name", "version"),
        Index("ix_transition_requests_state_created", "state", "created_ms", "id"),
        Index("ix_transition_requests_requester_created", "requester", "created_ms", "id"),
        Index("ix_transition_requests_updated", "updated_ms", "id"),
        Index("ix_transition_requests_github_run", "github_repository_id", "github_run_id"),
        Index("ix_transition_requests_created", "created_ms", "id"),
        Index(
            "ix_transition_requests_unindexed",
            "state",
            sqlite_where=text("approver_roles IS NULL"),
            postgresql_where=text("approver_roles IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=64)
    workflow_id: str = Field(index=True, max_length=600)
    run_id: str | None = Field(default=None, max_length=64)
    model_name: str = Field(max_length=256)
    version: str = Field(max_length=32)
    target: str = Field(max_length=300)
    from_stage: str | None = Field(default=None, max_length=32)
    requester: str = Field(max_length=256)
    comment: str | None = Field(default=None, sa_column=Column(Text))
    state: str = Field(index=True, max_length=32)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    policy_hash: str = Field(max_length=64)
    quorum: int = 0
    checks: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    approvals: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    revision: int = 0
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    approver_roles: list[str] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )
    """NULL: written before Signoff computed them (the inbox indexes such a row itself)."""
    self_approval: bool = False

    digest: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    tags: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))
    tier: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))
    apply_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    rollback: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))

    # Opened by a GitHub Actions run (its OIDC token's claims): the run's deployments wait on it.
    github_repository_id: str | None = Field(default=None, max_length=256)
    github_run_id: str | None = Field(default=None, max_length=256)
    github: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """`{"run": GithubRun, "gate": GithubGate | None}`."""


class RequestApproverRoleRow(SQLModel, table=True):
    """The inbox's index: one row per role in which someone may approve a request, kept while
    the request is PENDING (written when it opens, deleted when it leaves PENDING)."""

    __tablename__ = "request_approver_roles"
    __table_args__ = (Index("ix_request_approver_roles_role", "role", "request_id"),)

    request_id: str = Field(primary_key=True, max_length=64)
    role: str = Field(primary_key=True, max_length=256)


class AuditEntryRow(SQLModel, table=True):
    """Append-only audit log. `id` is the idempotency key chosen by the writer. Each entry has
    its place in the one audit chain (`chain_seq`, `recorded_ms`) and its hashes
    (`workflows.ledger.chain`), set by `workflows.ledger.audit.add_entries`."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_model_version", "model_name", "version"),
        Index("ix_activities_chain_seq", "chain_seq", unique=True),
        Index("ix_activities_recorded_ms", "recorded_ms"),
        Index("ix_activities_type_created", "activity_type", "created_ms"),
        Index("ix_activities_request_decisions", "request_id", "activity_type", "user_id"),
        Index("ix_activities_model_moves", "model_name", "activity_type", "to_stage", "created_ms"),
    )

    id: str = Field(primary_key=True, max_length=128)
    request_id: str | None = Field(default=None, index=True, max_length=64)
    seq: int = 0
    model_name: str = Field(max_length=256)
    version: str = Field(max_length=32)
    activity_type: str = Field(max_length=32)
    user_id: str = Field(max_length=256)
    from_stage: str | None = Field(default=None, max_length=300)
    to_stage: str | None = Field(default=None, max_length=300)
    comment: str | None = Field(default=None, sa_column=Column(Text))
    system_comment: str | None = Field(default=None, sa_column=Column(Text))
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    roles: list[str] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    """A decision's roles, as its maker held them (NULL before Signoff kept them)."""
    chain_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    recorded_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    prev_hash: str = Field(default="", max_length=64)
    entry_hash: str = Field(default="", max_length=64)


class AuditChainRow(SQLModel, table=True):
    """The head of the audit chain: one row (`id` 1), locked by every append, so appends
    from any number of processes take their places one after another."""

    __tablename__ = "audit_chain"

    id: int = Field(primary_key=True)
    length: int = Field(sa_column=Column(BigInteger, nullable=False))
    head_hash: str = Field(max_length=64)
    recorded_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditAnchorRow(SQLModel, table=True):
    """The chain's head as it stood at one time (and was announced): `length` entries, the
    last hashed `head_hash`. A copy kept elsewhere pins the history up to there."""

    __tablename__ = "audit_anchors"

    length: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    head_hash: str = Field(max_length=64)
    anchored_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class CommentRow(SQLModel, table=True):
    """Discussion on a model version. Bodies live here, never in workflow history."""

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_model_version", "model_name", "version"),)

    id: str = Field(primary_key=True, max_length=64)
    model_name: str = Field(max_length=256)
    version: str = Field(max_length=32)
    user_id: str = Field(max_length=256)
    comment: str = Field(sa_column=Column(Text, nullable=False))
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class WebhookRow(SQLModel, table=True):
    """A registry webhook subscription. `secret_enc`/`authorization_enc` are Fernet tokens
    (SIGNOFF_ENCRYPTION_KEY); the plaintext is never stored or returned."""

    __tablename__ = "webhooks"

    id: str = Field(primary_key=True, max_length=64)
    model_name: str | None = Field(default=None, index=True, max_length=256)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    description: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(max_length=16)
    url: str = Field(sa_column=Column(Text, nullable=False))
    enable_ssl_verification: bool = True
    secret_enc: str | None = Field(default=None, sa_column=Column(Text))
    authorization_enc: str | None = Field(default=None, sa_column=Column(Text))
    created_by: str = Field(max_length=256)
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class WebhookDeliveryRow(SQLModel, table=True):
    """One event sent (or being sent) to one webhook; `attempts` lists every HTTP attempt,
    each `{attempt, time_ms, status_code, latency_ms, error}`, keyed by `attempt`."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_webhook", "webhook_id", "created_ms"),)

    id: str = Field(primary_key=True, max_length=64)
    webhook_id: str = Field(max_length=64)
    event: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    state: str = Field(max_length=16)
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class InboundHookRow(SQLModel, table=True):
    """One webhook Signoff received (an inbound decision, or one of MLflow's): accepted or
    refused, and why. `claim` ("<source>/<message id>") is set only once the signature is
    verified, so a forged message can never use up the id of a genuine one; its uniqueness is
    what makes a replay do nothing."""

    __tablename__ = "inbound_hooks"
    __table_args__ = (
        Index("ix_inbound_hooks_source", "source", "received_ms"),
        Index("ix_inbound_hooks_received", "received_ms"),
    )

    id: str = Field(primary_key=True, max_length=64)
    source: str = Field(max_length=64)
    message_id: str | None = Field(default=None, max_length=256)
    claim: str | None = Field(default=None, unique=True, max_length=330)
    outcome: str = Field(max_length=16)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    event: str | None = Field(default=None, max_length=64)
    user_id: str | None = Field(default=None, max_length=256)
    request_id: str | None = Field(default=None, max_length=64)
    received_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class SlackMessageRow(SQLModel, table=True):
    """The Slack message that follows one request (a rule with `notify.slack`): where it was
    posted (`channel_id`, `ts`, once it was), the latest revision of the request it shows, and
    every attempt to post or update it, each `{attempt, key, method, revision, time_ms,
    status_code, latency_ms, error}`."""

    __tablename__ = "slack_messages"

    request_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(max_length=256)
    channel_id: str | None = Field(default=None, max_length=64)
    ts: str | None = Field(default=None, max_length=64)
    state: str = Field(max_length=16)
    sent_revision: int | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class RegistryMarkRow(SQLModel, table=True):
    """What Signoff expects MLflow to show for one version: its stage and aliases, as last
    applied by Signoff or observed. Anything else MLflow shows is an out-of-band change.
    `pending_request` is set while a Signoff transition of the version is being applied, so
    an observation made meanwhile is not mistaken for a bypass."""

    __tablename__ = "registry_marks"

    model_name: str = Field(primary_key=True, max_length=256)
    version: str = Field(primary_key=True, max_length=32)
    stage: str = Field(default="None", max_length=32)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    pending_request: str | None = Field(default=None, max_length=64)
    pending_target: str | None = Field(default=None, max_length=300)
    pending_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    updated_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class ReconcilerRunRow(SQLModel, table=True):
    """One pass of the reconciler. The first pass ever takes the registry as it is."""

    __tablename__ = "reconciler_runs"
    __table_args__ = (Index("ix_reconciler_runs_started", "started_ms"),)

    id: str = Field(primary_key=True, max_length=64)
    started_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    finished_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    versions: int = 0
    changes: int = 0
    baseline: bool = False


class WebSessionRow(SQLModel, table=True):
    """A signed-in browser of the web page. Keyed by the SHA-256 of the opaque session id the
    browser holds in its cookie, so the table alone signs no one in."""

    __tablename__ = "web_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    subject: str = Field(max_length=256)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    issuer: str = Field(max_length=300)
    csrf_token: str = Field(max_length=128)
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_ms: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    id_token_enc: str | None = Field(default=None, sa_column=Column(Text))
    """The provider's ID token (for the `id_token_hint` of RP-initiated logout), Fernet-
    encrypted under a key derived from the session id, which only the browser holds."""


class WebLoginRow(SQLModel, table=True):
    """A sign-in under way: the browser went to the identity provider and has not come back.
    Keyed by the SHA-256 of the login id in the browser's login cookie; used once."""

    __tablename__ = "web_logins"

    id_hash: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=128)
    nonce: str = Field(max_length=128)
    code_verifier: str = Field(max_length=128)
    return_to: str = Field(max_length=2000)
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class DeploymentGateRow(SQLModel, table=True):
    """A GitHub deployment waiting on Signoff (a `deployment_protection_rule` event), keyed by
    the event's delivery id, and the answer Signoff gave it (`APPROVED`, `REJECTED`; `FAILED`
    when GitHub refused the answer). `WAITING` until then."""

    __tablename__ = "deployment_gates"
    __table_args__ = (Index("ix_deployment_gates_run", "repository_id", "run_id"),)

    id: str = Field(primary_key=True, max_length=64)
    gate_id: str = Field(max_length=600)
    repository: str = Field(max_length=256)
    repository_id: str = Field(max_length=256)
    run_id: str = Field(max_length=256)
    environment: str = Field(max_length=256)
    state: str = Field(max_length=16)
    comment: str | None = Field(default=None, sa_column=Column(Text))
    request_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    status_code: int | None = None
    attempts: int = 0
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class BreakGlassReviewRow(SQLModel, table=True):
    """The review of one break-glass move, a projection of its BreakGlassReviewWorkflow,
    overwritten only by a newer `revision`. `id` is the move's audit entry id."""

    __tablename__ = "break_glass_reviews"
    __table_args__ = (
        Index("ix_break_glass_reviews_state_deadline", "state", "deadline_ms"),
        Index("ix_break_glass_reviews_model_version", "model_name", "version"),
    )

    id: str = Field(primary_key=True, max_length=128)
    workflow_id: str = Field(max_length=300)
    model_name: str = Field(max_length=256)
    version: str = Field(max_length=32)
    from_stage: str = Field(max_length=32)
    to_stage: str = Field(max_length=32)
    mover: str = Field(max_length=256)
    comment: str | None = Field(default=None, sa_column=Column(Text))
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    quorum: int = 1
    state: str = Field(max_length=16)
    policy_hash: str = Field(max_length=64)
    opened_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    deadline_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    overdue_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    acknowledged_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    acknowledgements: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    revision: int = 0


class PinnedPolicyRow(SQLModel, table=True):
    """Every policy a request may have pinned, by its hash (`policies.policy_hash`), as the
    validated document it hashes: an evidence packet shows the policy text a request ran
    under long after Temporal forgot the workflow's input."""

    __tablename__ = "pinned_policies"

    hash: str = Field(primary_key=True, max_length=64)
    document: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    first_seen_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
