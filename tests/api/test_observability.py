"""Observability of a real stack (Temporal dev server, `mlflow server`, worker and API
processes exporting traces to a loopback OTLP/HTTP receiver): the Prometheus series move as a
request is opened, approved and applied, as a webhook is delivered or refused and as an inbound
hook is refused; the JSON logs name the request and the workflow and never hold a token, a
secret or a webhook body; and one trace runs from the HTTP call through the workflow to the
MLflow call.

One stack for the module; the tests run in order (the log and trace checks read what the flow
before them left)."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from api.app import create_app
from tests.support.http import SIGNOFF, TRANSITIONS, create, target, wait
from tests.support.metrics import Scrape, scrape
from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.otlp import OtlpReceiver
from tests.support.polling import wait_until
from tests.support.processes import free_port
from tests.support.receiver import Receiver, running_receiver
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import HOOKS, webhook_env

POLICY = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - to: Production
    checks:
      - {type: tag, key: validated, value: "yes"}
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Staging
    approvals: {quorum: 0}
directory:
  slack:
    U_LEE: {user: lee, roles: [ml-lead]}
"""
DANA = ("dana", "data-scientist")
LEE = ("lee", "ml-lead")
ADA = ("ada", "platform-admin")

SLACK_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
WEBHOOK_SECRET = f"receiver-secret-{secrets.token_hex(8)}"
WEBHOOK_AUTHORIZATION = f"Bearer receiver-token-{secrets.token_hex(8)}"
BODY_MARKER = f"comment-only-in-bodies-{secrets.token_hex(6)}"
"""A request comment: it travels in webhook bodies, and must never be logged."""


@dataclass
class Observed:
    stack: SignoffStack
    otlp: OtlpReceiver
    worker_metrics: str

    def scrape(self) -> Scrape:
        return scrape(f"{self.stack.api_url}/metrics", self.worker_metrics)


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[Observed]:
    port = free_port()
    with (
        OtlpReceiver() as otlp,
        running_stack(
            tmp_path_factory,
            "observability",
            temporal_server.address,
            mlflow_server.url,
            policy=POLICY,
            SIGNOFF_WORKER_METRICS_PORT=str(port),
            SIGNOFF_HOOK_SECRETS=json.dumps({"slack": SLACK_SECRET}),
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            **webhook_env(),
        ) as stack,
    ):
        yield Observed(stack, otlp, f"http://127.0.0.1:{port}/metrics")


@pytest.fixture(scope="module")
def stack(observed: Observed) -> SignoffStack:
    return observed.stack


def subscribe(admin: httpx.Client, url: str, model: str) -> str:
    """A webhook with a secret and an Authorization header of its own (never to be logged)."""
    response = admin.post(
        f"{HOOKS}/create",
        json={
            "model_name": model,
            "events": ["TRANSITION_REQUEST_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE"],
            "status": "ACTIVE",
            "http_url_spec": {
                "url": url,
                "secret": WEBHOOK_SECRET,
                "authorization": WEBHOOK_AUTHORIZATION,
            },
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["webhook"]["id"]


def forged_decision(stack: SignoffStack, source: str) -> httpx.Response:
    """An approval from `source` signed with a key that is not its secret."""
    raw = json.dumps({"decision": "approve", "user": "U_LEE", "request_id": "x"}).encode()
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(other).sign(msg_id, now, raw.decode()),
        "content-type": "application/json",
    }
    url = f"{stack.api_url}{SIGNOFF}/hooks/decisions/{source}"
    return httpx.post(url, content=raw, headers=headers, timeout=60)


PRODUCTION = {"target": "Production"}
APPLIED = {"state": "APPLIED", "target": "Production"}
ONCE = (
    ("signoff_requests_opened_total", PRODUCTION),
    ("signoff_requests_ended_total", APPLIED),
    ("signoff_request_decision_seconds_count", APPLIED),
    ("signoff_request_approval_to_applied_seconds_count", PRODUCTION),
    ("signoff_check_duration_seconds_count", {"type": "tag", "outcome": "PASSED"}),
    ("signoff_inbound_hooks_total", {"source": "slack", "verdict": "refused"}),
    ("signoff_inbound_hooks_total", {"source": "unknown", "verdict": "refused"}),
    (
        "signoff_api_request_duration_seconds_count",
        {"method": "POST", "route": f"{TRANSITIONS}/create", "status": "200"},
    ),
)
"""Series this flow moves by exactly one (the request is counted once across the API and the
worker, though both write it)."""


def moves(before: Scrape, after: Scrape, wanted: Any) -> list[float]:
    return [after.value(name, **labels) - before.value(name, **labels) for name, labels in wanted]


def test_the_series_move_as_a_request_flows(
    observed: Observed,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    stack = observed.stack
    state: dict[str, Any] = {}  # what the flow leaves for the log checks after it
    before = observed.scrape()
    for family in (
        "signoff_requests_opened",
        "signoff_requests_ended",
        "signoff_request_decision_seconds",
        "signoff_request_approval_to_applied_seconds",
        "signoff_check_duration_seconds",
        "signoff_webhook_delivery_attempts",
        "signoff_webhook_delivery_failures",
        "signoff_inbound_hooks",
        "signoff_api_request_duration_seconds",
        "signoff_ledger_write_retries",
    ):
        assert family in before.families, f"{family} is not exposed"
    assert before.value("signoff_ledger_write_retries_total", reason="conflict") >= 0

    seeded = make_version(tags={"validated": "yes"})
    with (
        running_receiver(Receiver(secret=WEBHOOK_SECRET)) as good,
        running_receiver(Receiver(secret=WEBHOOK_SECRET, script=[400] * 10)) as bad,
    ):
        admin = user(*ADA)
        good_id = subscribe(admin, good.url, seeded.name)
        bad_id = subscribe(admin, bad.url, seeded.name)
        dana, lee = user(*DANA), user(*LEE)
        created = dana.post(
            f"{TRANSITIONS}/create", json=target(seeded, "Production") | {"comment": BODY_MARKER}
        )
        assert created.status_code == 200, created.text
        request = created.json()["request"]
        state.update(
            create_request_id=created.headers["x-request-id"],
            workflow_id=f"transition/{seeded.name}/{seeded.version}/Production",
            tokens=[c.headers["authorization"].removeprefix("Bearer ") for c in (admin, dana, lee)],
        )
        approved = lee.post(f"{TRANSITIONS}/approve", json=target(seeded, "Production"))
        assert approved.status_code == 200, approved.text
        assert wait(dana, request["id"])["state"] == "APPLIED"
        refused = forged_decision(stack, "slack")
        assert refused.status_code == 401, refused.text
        assert forged_decision(stack, "no-such-source").status_code == 404
        state["signature"] = refused.request.headers["webhook-signature"]

        webhooks = (
            (
                "signoff_webhook_delivery_attempts_total",
                {"receiver": good_id, "outcome": "DELIVERED"},
            ),
            ("signoff_webhook_delivery_failures_total", {"receiver": bad_id}),
        )

        def moved() -> Scrape | None:
            after = observed.scrape()
            return after if all(m >= 1 for m in moves(before, after, ONCE + webhooks)) else None

        after = wait_until(moved, "every series to move", timeout_s=30)
    counted = moves(before, after, ONCE)
    assert counted == [1] * len(ONCE), [
        (name, n) for (name, _), n in zip(ONCE, counted, strict=True)
    ]
    assert after.value(
        "signoff_webhook_delivery_attempts_total", receiver=bad_id, outcome="FAILED"
    ) == after.value("signoff_webhook_delivery_failures_total", receiver=bad_id)

    # Route labels are templates, never paths: no model name, no id, no source.
    app_routes = set(create_app().openapi()["paths"]) | {"/metrics", "unmatched"}
    routes = after.label_values("signoff_api_request_duration_seconds_count", "route")
    assert routes <= app_routes, routes - app_routes
    assert f"{SIGNOFF}/hooks/decisions/{{source}}" in routes
    # The same flow's logs (one test: the checks need this flow's ids, and tests run in any
    # order across the ledgers' parametrized stacks).
    assert_logs_are_json_events_naming_the_call_and_never_a_secret(observed, state)


def _lines(path: Any) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        if line.strip():
            events.append(json.loads(line))  # every line is one JSON event
    return events


def assert_logs_are_json_events_naming_the_call_and_never_a_secret(
    observed: Observed, flow_state: dict[str, Any]
) -> None:
    stack = observed.stack
    api_log, worker_log = stack.root / "api.log", stack.root / "worker.log"
    api_events, worker_events = _lines(api_log), _lines(worker_log)
    for event in api_events + worker_events:
        assert {"time", "level", "logger", "message"} <= set(event), event

    create_lines = [e for e in api_events if e.get("request_id") == flow_state["create_request_id"]]
    access = [e for e in create_lines if e["logger"] == "api.access"]
    assert len(access) == 1 and "/transition-requests/create 200" in access[0]["message"]
    assert access[0]["workflow_id"] == flow_state["workflow_id"]
    assert any(
        e.get("workflow_id") == flow_state["workflow_id"] and "ended APPLIED" in e["message"]
        for e in worker_events + api_events
    )

    text = api_log.read_text() + worker_log.read_text()
    exported = b"".join(observed.otlp.bodies)
    never = [
        *flow_state["tokens"],
        SLACK_SECRET,
        SLACK_SECRET.removeprefix("whsec_"),
        flow_state["signature"],
        WEBHOOK_SECRET,
        WEBHOOK_AUTHORIZATION,
        WEBHOOK_AUTHORIZATION.removeprefix("Bearer "),
        BODY_MARKER,
        stack.env["SIGNOFF_JWT_SECRET"],
        stack.env["SIGNOFF_ENCRYPTION_KEY"],
    ]
    for secret in never:
        assert secret not in text, f"{secret[:12]}… is in a log"
        assert secret.encode() not in exported, f"{secret[:12]}… is in an exported span"
    assert "eyJ" not in text, "a token (or part of one) was logged"


def test_one_trace_runs_from_the_http_call_through_the_workflow_to_mlflow(
    observed: Observed,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    seeded = make_version()
    trace_id, read_trace = secrets.token_hex(16), secrets.token_hex(16)
    dana = user(*DANA)
    dana.headers["traceparent"] = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    request = create(dana, seeded, "Staging")  # quorum 0: applied by the workflow at once
    # A query string (where an OIDC authorization code travels) is never put on a span.
    dana.headers["traceparent"] = f"00-{read_trace}-{secrets.token_hex(8)}-01"
    code = f"code-{secrets.token_hex(8)}"
    waited = dana.get(
        f"{SIGNOFF}/transition-requests/wait",
        params={"id": request["id"], "timeout_s": 30, "code": code},
    )
    assert waited.status_code == 200, waited.text
    assert waited.json()["request"]["state"] == "APPLIED"

    def traced() -> dict[str, list[Any]] | None:
        spans = observed.otlp.snapshot()
        if not any(s.trace_id == read_trace and s.service == "signoff-api" for s in spans):
            return None
        by_service: dict[str, list[Any]] = {}
        for span in spans:
            if span.trace_id == trace_id:
                by_service.setdefault(span.service, []).append(span)
        moves = [
            s
            for s in by_service.get("signoff-worker", [])
            if "transition-stage" in str(s.attributes.get("http.url", s.attributes.get("url.full")))
        ]
        return by_service if by_service.get("signoff-api") and moves else None

    by_service = wait_until(traced, "the trace to reach the worker's MLflow call", timeout_s=30)
    api_names = {s.name for s in by_service["signoff-api"]}
    worker_names = {s.name for s in by_service["signoff-worker"]}
    assert f"POST {TRANSITIONS}/create" in api_names, api_names
    assert "StartWorkflow:TransitionWorkflow" in api_names, api_names
    assert {"RunWorkflow:TransitionWorkflow", "RunActivity:apply_transition"} <= worker_names
    assert code.encode() not in b"".join(observed.otlp.bodies)
    assert code not in (observed.stack.root / "api.log").read_text()
    assert not observed.otlp.refused
