"""What the web page's own routes (`/ui/api/*`, `/ui/auth/*`) read and answer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class WebSessionInfo(BaseModel):
    """Who is signed in to the page (if anyone), and which sign-ins it offers."""

    signed_in: bool
    subject: str | None = None
    roles: list[str] = Field(default_factory=list)
    csrf_token: str | None = Field(
        None, description="Send it in X-CSRF-Token with every state-changing call."
    )
    expires_timestamp: int | None = Field(None, description="The session's absolute end (ms).")
    oidc_sign_in: bool = Field(description="The operator's identity provider is configured.")
    dev_sign_in: bool = Field(description="The development sign-in is offered (signoff dev).")
    dev_roles: list[str] = Field(
        default_factory=list, description="The policy's roles, for the development sign-in."
    )


Subject = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]


class DevSignIn(BaseModel):
    """The development sign-in: any subject, roles from the policy."""

    model_config = ConfigDict(extra="forbid")

    subject: Subject
    roles: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=64
    )


class SignedOut(BaseModel):
    signed_out: bool = True
    end_session_url: str | None = Field(
        None,
        description="Where to send the browser to sign out at the identity provider too "
        "(RP-initiated logout); null when the session ended here only.",
    )


# -- the inbox ---------------------------------------------------------------------------------

InboxTab = Literal["waiting", "mine", "decided"]  # as `workflows.ledger.inbox.InboxTab`


class ChecksSummary(BaseModel):
    passed: int = 0
    running: int = 0
    failed: int = 0
    other: int = 0


class InboxRow(BaseModel):
    id: str
    name: str
    version: str
    from_stage: str | None
    to_stage: str
    user_id: str = Field(description="Who requested it.")
    state: str
    creation_timestamp: int
    last_updated_timestamp: int
    checks: ChecksSummary
    quorum: int
    approvals: int
    approvals_needed: int
    expires_timestamp: int | None = Field(description="When a PENDING request lapses (ms).")
    apply_at_timestamp: int | None = Field(
        None, description="While SCHEDULED: when its change window opens and it applies (ms)."
    )
    rollback: bool = Field(False, description="A governed rollback.")


class InboxCounts(BaseModel):
    """How many requests each tab holds, counted up to `cap`: a tab named in `capped` holds
    more than `cap` (shown as "1,000+"), so counting costs the same however large a tab grows."""

    waiting: int
    mine: int
    decided: int
    cap: int = Field(description="Counts stop here.")
    capped: list[InboxTab] = Field(
        default_factory=list, description="The tabs holding more than `cap` requests."
    )


class InboxPage(BaseModel):
    """One page of a tab of the inbox. *waiting*: open requests the viewer may approve now
    (oldest first); *mine*: the viewer's own requests (newest first); *decided*: closed
    requests (most recently decided first)."""

    tab: InboxTab
    rows: list[InboxRow]
    total: int = Field(
        description="Requests in the tab under these filters, at most `counts.cap` (the tab "
        "holds more when `total_capped`)."
    )
    total_capped: bool = Field(False, description="The tab holds more than `total`.")
    page_size: int
    next_page_token: str | None = Field(
        None, description="Pass as page_token for the next page; null on the last page."
    )
    counts: InboxCounts
    models: list[str] = Field(
        description="Models appearing in the tab, for the filter (of a capped tab: those of "
        "the requests counted)."
    )


# -- a request's page ------------------------------------------------------------------------


class Decision(BaseModel):
    kind: Literal["APPROVED", "REJECTED", "CANCELLED"]
    user_id: str
    creation_timestamp: int
    comment: str | None
    roles: list[str] = Field(
        default_factory=list, description="The roles in which the decision was made."
    )


class TargetHolder(BaseModel):
    """The version that holds the request's target now, and what the move does to it."""

    version: str | None
    effect: str


class RequestExtras(BaseModel):
    """What the request's page shows besides the request itself."""

    policy_words: str | None = Field(description="The rule in words; null: no rule covers it.")
    policy_parts: list[str]
    policy_hash: str
    policy_is_current: bool = Field(description="The request was opened under today's policy.")
    expires_timestamp: int | None
    approvals_needed: int
    refusals: dict[str, str | None] = Field(
        description="approve / reject / cancel: why the viewer may not (null: they may)."
    )
    confirmation: str | None = Field(
        description="For Production and alias moves: the sentence to confirm before approving."
    )
    holder: TargetHolder | None
    decisions: list[Decision]
    mlflow_version_url: str
    mlflow_run_url: str | None
    run_id: str | None
    viewer_roles: list[str]


# -- a model's page --------------------------------------------------------------------------


class ModelVersionRow(BaseModel):
    version: str
    stage: str
    aliases: list[str]
    run_id: str | None
    open_requests: list[str]


class ModelView(BaseModel):
    name: str
    versions: list[ModelVersionRow]
    open_requests: list[InboxRow]
    activities: list[dict[str, object]]
    targets: list[str] = Field(description="Stages and aliases the policy has rules for.")
    can_request: bool
    mlflow_model_url: str
