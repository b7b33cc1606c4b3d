"""The Prometheus series only the API counts: its calls, and the inbound webhooks it verifies.
The request lifecycle, check, webhook-delivery and ledger series are `workflows.metrics`'s (the
API counts those too, for the ledger writes it makes); `GET /metrics` serves both
(`api.routers.metrics`).

Labels are bounded: a route is the template FastAPI matched (`/api/2.0/signoff/requests/{id}`),
never the path asked for, and `unmatched` when none did; a source is one configured in
`SIGNOFF_HOOK_SECRETS` (or `mlflow`), and `unknown` for any other path.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

UNMATCHED_ROUTE = "unmatched"
UNKNOWN_SOURCE = "unknown"

API_REQUEST_SECONDS = Histogram(
    "signoff_api_request_duration_seconds",
    "Time to answer an API call, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
INBOUND_HOOKS = Counter(
    "signoff_inbound_hooks",
    "Inbound webhooks (chat and ticket decisions, MLflow's events), by source and verdict "
    "(accepted, refused, error, or what the handler recorded).",
    ["source", "verdict"],
)

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"
