"""`GET /metrics`: this process's Prometheus series (API and ledger), or, with
`PROMETHEUS_MULTIPROC_DIR`, those of every process of the host; the worker serves its own on
`SIGNOFF_WORKER_METRICS_PORT` (`workflows.metrics`). Unauthenticated, as scrapers expect: it
holds counts and timings, never a name, a token or a body; keep it off a public ingress."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from workflows.metrics import exposition_registry

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, include_in_schema=False)  # not JSON: no API
async def metrics(services: ServicesDep) -> Response:
    body = generate_latest(exposition_registry(services.settings))
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
