"""The Prometheus series of the request lifecycle, checks, webhooks and the ledger, and how a
process exposes its series.

Where they are counted, so that nothing is counted twice:
- requests, decisions and checks from the ledger's writes (`request_recorded`): a request is
  opened when its row is inserted and ended when its row leaves the open states, and a check
  finished when the row first shows it finished. Whichever process wrote that change (the
  worker's outbox activity, the API's early write, the reconciler) counts it, once for the whole
  deployment: the database decides which write was first. Workflow code counts nothing, so a
  replay counts nothing either.
- webhook attempts in the delivery activity: each one is a real HTTP attempt;
- ledger write retries where they happen (`Database.run`, a retried outbox activity).

Every process counts in its own registry and serves it: the API on its `/metrics`, the worker
on `SIGNOFF_WORKER_METRICS_PORT`; Prometheus scrapes each process and the dashboards `sum()`
across them. With `PROMETHEUS_MULTIPROC_DIR` set (several processes of one host sharing a
directory, e.g. uvicorn or gunicorn workers), each process writes its series there and any one
endpoint serves the sum of all of them (`exposition_registry`).

Labels are bounded: states, check types and outcomes are fixed sets; a target is a stage or
`@alias` (an alias's name is chosen per request, so it is not a label); a receiver is a
webhook subscription's id (created by registry admins).
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from workflows.domain import CheckStatus, RequestSnapshot, RequestState
from workflows.settings import WorkerSettings

log = logging.getLogger(__name__)

ALIAS_TARGET = "@alias"

REQUESTS_OPENED = Counter("signoff_requests_opened", "Transition requests opened.", ["target"])
REQUESTS_ENDED = Counter(
    "signoff_requests_ended", "Transition requests ended, by end state.", ["state", "target"]
)
DECISION_SECONDS = Histogram(
    "signoff_request_decision_seconds",
    "From a request's creation to its decision (the last approval or check it waited for, or "
    "its rejection, cancellation, expiry or failure), by end state.",
    ["state", "target"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400),
)
APPROVAL_TO_APPLIED_SECONDS = Histogram(
    "signoff_request_approval_to_applied_seconds",
    "From the last approval of a request to its transition applied in MLflow.",
    ["target"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
CHECK_SECONDS = Histogram(
    "signoff_check_duration_seconds",
    "From a request's creation to the end of one of its validation checks, by check type and "
    "outcome (PASSED, FAILED, CANCELLED).",
    ["type", "outcome"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400),
)
WEBHOOK_ATTEMPTS = Counter(
    "signoff_webhook_delivery_attempts",
    "HTTP attempts to deliver a webhook event, by receiver (webhook id) and outcome "
    "(DELIVERED, RETRY, FAILED, GONE).",
    ["receiver", "outcome"],
)
WEBHOOK_FAILURES = Counter(
    "signoff_webhook_delivery_failures",
    "Webhook deliveries that ended without reaching the receiver (refused, gone, or retried "
    "until the delivery window closed), by receiver.",
    ["receiver"],
)
LEDGER_WRITE_RETRIES = Counter(
    "signoff_ledger_write_retries",
    "Ledger writes run again: `conflict` (a concurrent writer committed one of the keys first) "
    "or `activity` (Temporal retried a workflow's ledger write).",
    ["reason"],
)
for _reason in ("conflict", "activity"):
    LEDGER_WRITE_RETRIES.labels(_reason)  # shown at 0 before the first retry


def target_label(target: str) -> str:
    return ALIAS_TARGET if target.startswith("@") else target


def _decided_ms(after: RequestSnapshot) -> int:
    """When the request was decided: for an applied one, the last approval or check result it
    waited for (the apply itself comes after); otherwise when it ended."""
    if after.state is not RequestState.APPLIED:
        return after.updated_ms
    moments = [a.creation_timestamp for a in after.approvals]
    moments += [c.finished_ms for c in after.checks if c.finished_ms is not None]
    return max(moments, default=after.created_ms)


def request_recorded(
    before: RequestSnapshot | None, after: RequestSnapshot, *, ended: bool
) -> None:
    """The ledger stored `after` over `before` (None: a new row); `ended` when this write is
    the one that took the request out of the open states."""
    target = target_label(after.target)
    if before is None:
        REQUESTS_OPENED.labels(target).inc()
    previous = {c.check_id: c.status for c in before.checks} if before else {}
    for check in after.checks:
        if check.status is CheckStatus.RUNNING:
            continue
        if previous.get(check.check_id, CheckStatus.RUNNING) is not CheckStatus.RUNNING:
            continue
        finished_ms = check.finished_ms or after.updated_ms
        CHECK_SECONDS.labels(check.type, check.status.value).observe(
            max(0, finished_ms - after.created_ms) / 1000
        )
    if not ended:
        return
    state = after.state.value
    REQUESTS_ENDED.labels(state, target).inc()
    DECISION_SECONDS.labels(state, target).observe(
        max(0, _decided_ms(after) - after.created_ms) / 1000
    )
    if after.state is RequestState.APPLIED and after.approvals:
        last_approval = max(a.creation_timestamp for a in after.approvals)
        APPROVAL_TO_APPLIED_SECONDS.labels(target).observe(
            max(0, after.updated_ms - last_approval) / 1000
        )


# -- exposition ------------------------------------------------------------------------------


def exposition_registry(settings: WorkerSettings) -> CollectorRegistry:
    """What a `/metrics` endpoint serves: this process's series, or, in multiprocess mode, the
    sum over every process writing to `PROMETHEUS_MULTIPROC_DIR`."""
    if settings.prometheus_multiproc_dir is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(settings.prometheus_multiproc_dir))
    return registry


class MetricsServer:
    """The worker's metrics endpoint (`SIGNOFF_WORKER_METRICS_PORT`), in a thread of its own."""

    def __init__(self, settings: WorkerSettings, port: int) -> None:
        host = settings.worker_metrics_host
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(
            port, addr=host, registry=exposition_registry(settings)
        )
        log.info("worker metrics at http://%s:%d/metrics", host, port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
