"""What the web page shows beyond the plain API answers: the inbox, the extras of a request's
page (the policy in words, why a decision is not open to the viewer, the confirmation, the
version that holds the target now) and a model's page. Reads come from the ledger; only the
target's current holder and a model's versions are read from MLflow.

The inbox is one filtered ledger query per page (`workflows.ledger.inbox`), paged by keyset:
the page token names the last row of the page before."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from urllib.parse import quote

from api.deps import Services
from api.models.web import (
    ChecksSummary,
    Decision,
    InboxCounts,
    InboxPage,
    InboxRow,
    InboxTab,
    ModelVersionRow,
    ModelView,
    RequestExtras,
    TargetHolder,
)
from api.services.errors import Invalid
from api.services.permissions import require_permission
from api.services.requests import readable_request
from policies import (
    PermissionLevel,
    Principal,
    TransitionRule,
    approval_refusal,
    approvals_needed,
    approver_roles,
    cancel_refusal,
    is_alias,
    normalize_target,
    permission_for,
    rejection_refusal,
    request_rule,
    rule_for,
)
from policies.wording import describe_rule_parts
from workflows.domain import AuditType, CheckStatus, RequestSnapshot, RequestState
from workflows.ledger import InboxQuery
from workflows.ledger.inbox import COUNT_CAP
from workflows.mlflow_client import MlflowError, ModelVersion

log = logging.getLogger(__name__)

SCAN_LIMIT = 2000
"""The most requests of one model its page reads."""
MAX_PAGE_TOKEN = 400
MAX_MODEL_VERSIONS = 100
CONFIRM_STAGES = {"Production"}


# -- shared --------------------------------------------------------------------------------


def _expires(request: RequestSnapshot, rule: TransitionRule | None) -> int | None:
    """When a PENDING request lapses (`rule`: its rule, `request_rule`); one approved
    (SCHEDULED, APPLYING) or closed never does."""
    if request.state is not RequestState.PENDING:
        return None
    return (
        None
        if rule is None
        else request.created_ms + int(rule.expires_after.total_seconds() * 1000)
    )


def _needed(request: RequestSnapshot, rule: TransitionRule | None) -> int:
    approvers = [approval.user_id for approval in request.approvals]
    if rule is None:
        return max(0, request.quorum - len(set(approvers)))
    return approvals_needed(rule, approvers)


def _checks(request: RequestSnapshot) -> ChecksSummary:
    summary = ChecksSummary()
    for check in request.checks:
        if check.status is CheckStatus.PASSED:
            summary.passed += 1
        elif check.status is CheckStatus.RUNNING:
            summary.running += 1
        elif check.status is CheckStatus.FAILED:
            summary.failed += 1
        else:
            summary.other += 1
    return summary


def inbox_row(services: Services, request: RequestSnapshot) -> InboxRow:
    rule = request_rule(services.policy, request)  # once a row: a page shows up to 100
    return InboxRow(
        id=request.id,
        name=request.model,
        version=request.version,
        from_stage=request.from_stage,
        to_stage=request.target,
        user_id=request.requester,
        state=request.state.value,
        creation_timestamp=request.created_ms,
        last_updated_timestamp=request.updated_ms,
        checks=_checks(request),
        quorum=request.quorum,
        approvals=len({approval.user_id for approval in request.approvals}),
        approvals_needed=_needed(request, rule),
        expires_timestamp=_expires(request, rule),
        apply_at_timestamp=request.apply_at_ms if request.state is RequestState.SCHEDULED else None,
        rollback=request.rollback is not None,
    )


def _not_open(request: RequestSnapshot) -> str:
    if request.state is RequestState.SCHEDULED:
        return "the request is approved and waits for its change window; nothing is left to decide"
    return f"the request is {request.state.value.lower()}; nothing is left to decide"


def _approve_refusal(services: Services, request: RequestSnapshot, viewer: Principal) -> str | None:
    if request.state is not RequestState.PENDING:
        return _not_open(request)
    rule = request_rule(services.policy, request)
    if rule is None:
        return "no rule of today's policy covers this move"
    return approval_refusal(
        services.policy,
        rule,
        model=request.model,
        target=request.target,
        requester=request.requester,
        approvers=[approval.user_id for approval in request.approvals],
        principal=viewer,
    )


def _reject_refusal(services: Services, request: RequestSnapshot, viewer: Principal) -> str | None:
    if request.state is not RequestState.PENDING:
        return _not_open(request)
    rule = request_rule(services.policy, request)
    if rule is None:
        return "no rule of today's policy covers this move"
    return rejection_refusal(
        services.policy, rule, model=request.model, target=request.target, principal=viewer
    )


def _cancel_refusal(services: Services, request: RequestSnapshot, viewer: Principal) -> str | None:
    if request.state not in (RequestState.PENDING, RequestState.SCHEDULED):
        return f"the request is {request.state.value.lower()}; it cannot be cancelled"
    return cancel_refusal(
        services.policy, model=request.model, requester=request.requester, principal=viewer
    )


def mlflow_ui(services: Services) -> str:
    return services.settings.mlflow_tracking_uri.rstrip("/")


# -- the inbox -------------------------------------------------------------------------------


def _page_token(tab: InboxTab, after: tuple[int, str] | None) -> str | None:
    if after is None:
        return None
    raw = json.dumps({"t": tab, "k": after[0], "i": after[1]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(tab: InboxTab, token: str | None) -> tuple[int, str] | None:
    """The cursor a page token carries; Invalid unless it is one this tab handed out."""
    if not token:
        return None
    try:
        if len(token) > MAX_PAGE_TOKEN:
            raise ValueError("too long")
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        at, last_id = value["k"], value["i"]
        if value["t"] != tab or not isinstance(at, int) or not isinstance(last_id, str):
            raise ValueError("not this tab's")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as err:
        raise Invalid(f"page_token is not a page of the {tab!r} tab ({err})") from err
    return at, last_id[:64]


async def _index_unindexed(services: Services) -> None:
    """Requests opened before Signoff indexed their approver roles get them from today's
    policy (their own workflow writes the pinned policy's on its next change)."""
    for request in await services.ledger.inbox.unindexed_pending():
        rule = rule_for(services.policy, request.model, request.target)
        roles = (
            approver_roles(services.policy, rule, model=request.model, target=request.target)
            if rule is not None
            else []
        )
        await services.ledger.inbox.index_unindexed(
            request.id,
            approver_roles=roles,
            self_approval=bool(rule and rule.approvals.self_approval),
        )


def _reads_every_model(services: Services, principal: Principal) -> bool:
    """One of the viewer's roles binds "*": every model is readable (any level reads)."""
    return any("*" in services.policy.roles.get(role, {}) for role in principal.roles)


async def inbox(
    services: Services,
    principal: Principal,
    *,
    tab: InboxTab,
    model: str | None,
    target: str | None,
    state: str | None,
    page_token: str | None,
    page_size: int,
) -> InboxPage:
    """One keyset page of a tab, read by one filtered ledger query (`ledger.inbox`)."""
    if model is not None:
        require_permission(services, principal, model, PermissionLevel.CAN_READ)
    after = _after(tab, page_token)
    await _index_unindexed(services)
    readable = None
    if not _reads_every_model(services, principal):
        # The ledger's model names, narrowed by the policy's patterns (a query that grows with
        # the number of models; skipped for a viewer with a "*" binding, who reads them all).
        names = await services.ledger.inbox.model_names()
        readable = [n for n in names if permission_for(services.policy, principal.roles, n)]
        readable = None if len(readable) == len(names) else readable
    found = await services.ledger.inbox.page(
        InboxQuery(
            tab=tab,
            subject=principal.sub,
            roles=list(principal.roles),
            readable=readable,
            model=model,
            target=normalize_target(target) if target else None,
            state=state,
            after=after,
            limit=page_size,
        )
    )
    return InboxPage(
        tab=tab,
        rows=[inbox_row(services, request) for request in found.rows],
        total=found.counts[tab],
        total_capped=tab in found.capped,
        page_size=page_size,
        next_page_token=_page_token(tab, found.next_after),
        counts=InboxCounts(**found.counts, cap=COUNT_CAP, capped=found.capped),
        models=found.models,
    )


# -- a request's page ------------------------------------------------------------------------


async def _holder(
    services: Services, request: RequestSnapshot, archive: bool
) -> TargetHolder | None:
    """Who holds the target now, and what the move does to them (while it is still to come)."""
    target = request.target
    if not request.state.is_open:
        return TargetHolder(
            version=None, effect=f"The request is {request.state.value}; nothing more changes."
        )
    try:
        if is_alias(target):
            alias = target.removeprefix("@")
            try:
                current = await services.registry.get_model_version_by_alias(request.model, alias)
            except MlflowError:
                return TargetHolder(version=None, effect=f"no version is {target} yet")
            if current.version == request.version:
                return TargetHolder(version=current.version, effect=f"already {target}")
            return TargetHolder(
                version=current.version,
                effect=f"the alias {target} moves from version {current.version} to version "
                f"{request.version}",
            )
        if target not in ("Staging", "Production"):
            return None
        holders = [
            found
            for found in await services.registry.get_latest_versions(request.model, [target])
            if found.version != request.version
        ]
    except MlflowError as err:
        log.warning("could not read who holds %s of %s: %s", target, request.model, err)
        return TargetHolder(version=None, effect=f"MLflow could not say ({err.message})")
    if not holders:
        return TargetHolder(version=None, effect=f"no version is in {target} now")
    held = holders[0].version
    if archive:
        return TargetHolder(version=held, effect=f"version {held}, now in {target}, is archived")
    return TargetHolder(
        version=held, effect=f"version {held} stays in {target} alongside (the rule keeps it)"
    )


async def request_extras(
    services: Services, principal: Principal, request_id: str
) -> RequestExtras:
    request = await readable_request(services, request_id=request_id, principal=principal)
    rule = request_rule(services.policy, request)
    holder = await _holder(services, request, bool(rule and rule.archive_existing_versions))
    try:
        version: ModelVersion | None = await services.registry.get_model_version(
            request.model, request.version
        )
    except MlflowError:
        version = None
    trail = await services.ledger.requests.audit_trail(request.model, request.version)
    kinds = {
        AuditType.APPROVED_REQUEST: "APPROVED",
        AuditType.REJECTED_REQUEST: "REJECTED",
        AuditType.CANCELLED_REQUEST: "CANCELLED",
    }
    decisions = [
        Decision(
            kind=kinds[entry.activity_type],  # type: ignore[arg-type]
            user_id=entry.user_id,
            creation_timestamp=entry.creation_timestamp,
            comment=entry.comment,
            roles=entry.roles,
        )
        for entry in trail
        if entry.request_id == request.id and entry.activity_type in kinds
    ]
    confirmation = None
    if request.target in CONFIRM_STAGES or is_alias(request.target):
        effect = f"; {holder.effect}" if holder and holder.version else ""
        confirmation = (
            f"Approve moving {request.model} version {request.version} to {request.target}"
            f"{effect}? If yours is the last approval needed, the change is applied at once."
        )
    base = mlflow_ui(services)
    run_id = version.run_id if version else None
    return RequestExtras(
        policy_words="; ".join(describe_rule_parts(rule)) if rule else None,
        policy_parts=describe_rule_parts(rule) if rule else [],
        policy_hash=request.policy_hash,
        policy_is_current=request.policy_hash == services.policy_hash,
        expires_timestamp=_expires(request, rule),
        approvals_needed=_needed(request, rule),
        refusals={
            "approve": _approve_refusal(services, request, principal),
            "reject": _reject_refusal(services, request, principal),
            "cancel": _cancel_refusal(services, request, principal),
        },
        confirmation=confirmation,
        holder=holder,
        decisions=decisions,
        mlflow_version_url=f"{base}/#/models/{quote(request.model, safe='')}/versions/"
        f"{quote(request.version, safe='')}",
        mlflow_run_url=f"{base}/#/runs/{quote(run_id, safe='')}" if run_id else None,
        run_id=run_id,
        viewer_roles=list(principal.roles),
    )


# -- a model's page --------------------------------------------------------------------------


async def _model_versions(services: Services, name: str) -> list[ModelVersion]:
    """The model's newest versions from MLflow (a version search on its name), each with its
    aliases (from the registered model: the version search leaves them out)."""
    try:
        versions = await services.registry.search_model_versions(name, limit=MAX_MODEL_VERSIONS)
        model = await services.registry.get_registered_model(name)
    except MlflowError as err:
        log.warning("could not read the versions of %s from MLflow: %s", name, err)
        return []
    aliases: dict[str, list[str]] = {}
    for item in model.get("aliases") or []:
        aliases.setdefault(str(item.get("version")), []).append(str(item.get("alias")))
    return [
        replace(version, aliases=sorted(aliases.get(version.version, []))) for version in versions
    ]


async def model_view(services: Services, principal: Principal, name: str) -> ModelView:
    granted = require_permission(services, principal, name, PermissionLevel.CAN_READ)
    requests = await services.ledger.requests.search(model=name, limit=SCAN_LIMIT)
    found = await _model_versions(services, name)
    open_requests = [request for request in requests if request.state.is_open]
    by_version: dict[str, list[str]] = {}
    for request in open_requests:
        by_version.setdefault(request.version, []).append(request.id)
    entries = []
    for version in {request.version for request in requests}:
        entries.extend(await services.ledger.requests.audit_trail(name, version))
    entries.sort(key=lambda entry: entry.creation_timestamp, reverse=True)
    targets: list[str] = []
    for rule in services.policy.transitions:
        if "*" not in rule.to and rule_for(services.policy, name, rule.to) is rule:
            targets.append(rule.to)
    return ModelView(
        name=name,
        versions=[
            ModelVersionRow(
                version=version.version,
                stage=version.current_stage,
                aliases=sorted(version.aliases),
                run_id=version.run_id,
                open_requests=by_version.get(version.version, []),
            )
            for version in found
        ],
        open_requests=[inbox_row(services, request) for request in open_requests],
        activities=[entry.model_dump(mode="json") for entry in entries[:30]],
        targets=list(dict.fromkeys(targets)),
        can_request=granted.includes(PermissionLevel.CAN_EDIT),
        mlflow_model_url=f"{mlflow_ui(services)}/#/models/{quote(name, safe='')}",
    )
