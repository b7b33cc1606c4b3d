"""The audit chain from the outside: `GET /api/2.0/signoff/audit/export` streams the audit
entries with their hashes (JSON Lines or CSV, read from the ledger a page at a time), and
`/audit/anchors/{create,list}` record and list anchors of the chain's head.

Who may export: CAN_MANAGE on every model named in `models`; without `models` (every model,
including models deleted since and created later), a registry admin (CAN_MANAGE on "*").
Entries of other models in the exported run of the chain appear as links: place and hashes,
no content, so the slice still verifies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.audit import (
    MAX_EXPORT_MODELS,
    Anchor,
    AnchorList,
    AnchorResponse,
    ExportFormat,
    ExportRecord,
)
from api.models.common import ModelName
from api.services.errors import Invalid
from api.services.permissions import require_permission, require_registry_admin
from policies import PermissionLevel
from workflows.domain import now_ms
from workflows.ledger.export_format import CSV, MEDIA_TYPES, csv_header, encode
from workflows.webhooks.events import anchor_event

MAX_MS = 2**63 - 1

router = APIRouter(
    prefix="/api/2.0/signoff/audit",
    tags=["audit"],
    responses=error_responses(400, 401, 403),
)


EpochMs = Annotated[int | None, Query(ge=0, le=MAX_MS, description="Epoch milliseconds.")]


@router.get(
    "/export",
    response_model=None,
    responses={
        200: {
            "model": ExportRecord,
            "description": "The export as JSON Lines (`application/x-ndjson`, one record per "
            "line), or CSV with `format=csv`: a header record, the entries in chain order, an "
            "end record.",
            "content": {
                MEDIA_TYPES["jsonl"]: {"schema": {"$ref": "#/components/schemas/ExportRecord"}},
                MEDIA_TYPES[CSV]: {"schema": {"type": "string"}},
            },
        }
    },
)
async def export_audit(
    principal: PrincipalDep,
    services: ServicesDep,
    since: EpochMs = None,
    until: EpochMs = None,
    models: Annotated[list[ModelName] | None, Query(max_length=MAX_EXPORT_MODELS)] = None,
    format: Annotated[ExportFormat, Query()] = "jsonl",  # noqa: A002 (the query's name)
) -> StreamingResponse:
    """The audit entries recorded at or after `since` and before `until` (the time the ledger
    appended them), of the `models` named (repeat the parameter) or of every model."""
    if since is not None and until is not None and since >= until:
        raise Invalid(f"since ({since}) must be before until ({until})")
    wanted = sorted(set(models)) if models else None
    if wanted:
        for model in wanted:
            require_permission(services, principal, model, PermissionLevel.CAN_MANAGE)
    else:
        require_registry_admin(services, principal, "export the audit trail of every model")
    records = services.ledger.audit.export(since_ms=since, until_ms=until, models=wanted)
    header = await anext(records)  # the range is read now: a failure is an error answer
    name = f"signoff-audit-{header['exported_ms']}.{format}"
    return StreamingResponse(
        _encoded(header, records, format),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _encoded(
    header: dict[str, Any], records: AsyncIterator[dict[str, Any]], fmt: str
) -> AsyncIterator[str]:
    try:
        yield (csv_header() if fmt == CSV else "") + encode(header, fmt)
        async for record in records:
            yield encode(record, fmt)
    finally:
        await records.aclose()  # type: ignore[attr-defined]


@router.post("/anchors/create")
async def create_anchor(principal: PrincipalDep, services: ServicesDep) -> AnchorResponse:
    """Record the chain's head as an anchor now, and announce it (`AUDIT_ANCHOR`)."""
    require_registry_admin(services, principal, "anchor the audit chain")
    anchor = await services.ledger.audit.anchor(now_ms())
    if anchor is None:
        return AnchorResponse(anchor=None)
    await services.announce([anchor_event(anchor)])
    return AnchorResponse(anchor=Anchor.of(anchor))


@router.get("/anchors/list")
async def list_anchors(
    _principal: PrincipalDep,
    services: ServicesDep,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> AnchorList:
    """The latest anchors, newest first. Any principal: an anchor is a length and a hash,
    nothing of what the entries say."""
    anchors = await services.ledger.audit.anchors(max_results)
    return AnchorList(anchors=[Anchor.of(anchor) for anchor in anchors])
