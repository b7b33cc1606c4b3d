"""The evidence packet of a request or a break-glass move:
`GET /api/2.0/signoff/transition-requests/evidence?id=&format=json|pdf`.

`id` is a request's id or a break-glass move's (`breakglass-…`, its audit entry's id). Needs
CAN_READ on the model (404 as for a missing one without a binding). The JSON follows
`docs/schemas/evidence.schema.json`; the PDF says the same for people.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.evidence import EvidencePacket
from api.services.evidence import evidence_for

router = APIRouter(
    prefix="/api/2.0/signoff/transition-requests",
    tags=["transition requests"],
    responses=error_responses(400, 401, 403, 404),
)

SubjectId = Annotated[
    str, Query(min_length=1, max_length=128, pattern=r"^(breakglass-)?[0-9a-f]+$")
]


def _pdf(packet: EvidencePacket) -> bytes:
    """The packet as a PDF; the PDF library is imported on the first one (in the thread)."""
    from api.services.evidence_pdf import render_pdf

    return render_pdf(packet)


@router.get(
    "/evidence",
    response_model=EvidencePacket,
    response_model_by_alias=True,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def evidence(
    id: SubjectId,
    principal: PrincipalDep,
    services: ServicesDep,
    format: Annotated[Literal["json", "pdf"], Query()] = "json",
) -> Response | EvidencePacket:
    """One document with everything on the record about a promotion: the version, the rule
    in words and the pinned policy with its hash, every check with its evidence, every
    decision with the person's roles, comments, the full trail, a break-glass move's review."""
    packet = await evidence_for(services, subject_id=id, principal=principal)
    if format == "pdf":
        content = await asyncio.to_thread(_pdf, packet)
        return Response(
            content=content,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="evidence-{id}.pdf"'},
        )
    return packet
