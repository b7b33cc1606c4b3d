"""A worker killed with SIGKILL mid-request loses no approval and applies no transition twice.

The worker reaches MLflow through a recording proxy (a loopback HTTP server that forwards to
the real `mlflow server`), which counts every `transition-stage` call MLflow receives and can
hold one in flight while the worker is killed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.http import version_activities
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.polling import wait_until
from tests.support.stack import SignoffStack, launch_stack
from tests.support.temporal import TemporalServer

TRANSITION_PATH = "/api/2.0/mlflow/model-versions/transition-stage"


class RecordingProxy:
    """Forwards everything to MLflow; records `transition-stage` calls; can hold them."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.transitions: list[bytes] = []
        self.hold_transitions = False
        self.transition_arrived = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith(TRANSITION_PATH):
                    if proxy.hold_transitions:
                        proxy.transition_arrived.set()
                        proxy.release.wait(timeout=60)
                    proxy.transitions.append(body)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                upstream = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers
                )
                try:
                    self.send_response(upstream.status_code)
                    self.send_header("Content-Type", upstream.headers.get("content-type", ""))
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker that asked was killed meanwhile

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def proxied_stack(
    tmp_path: Path, temporal_server: TemporalServer, mlflow_server: MlflowServer
) -> Iterator[tuple[SignoffStack, RecordingProxy]]:
    proxy = RecordingProxy(mlflow_server.url)
    stack = launch_stack(tmp_path, temporal_server.address, proxy.url)
    try:
        yield stack, proxy
    finally:
        stack.stop()
        proxy.close()


def _body(version: SeededVersion, comment: str | None = None) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": version.version,
        "stage": "Production",
        "archive_existing_versions": True,
        "comment": comment,
    }


def _approve(stack: SignoffStack, sub: str, role: str, version: SeededVersion) -> None:
    with stack.client(sub, role) as client:
        response = client.post("/api/2.0/mlflow/transition-requests/approve", json=_body(version))
    assert response.status_code == 200, response.text


def _wait_closed(stack: SignoffStack, request_id: str, deadline_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    with stack.client("auditor", "ml-lead") as client:
        while time.monotonic() < deadline:
            request = client.get(
                "/api/2.0/signoff/transition-requests/wait",
                params={"id": request_id, "timeout_s": 10},
            ).json()["request"]
            if request["state"] not in ("PENDING", "APPLYING"):
                return request
    raise AssertionError(f"request {request_id} still open after {deadline_s}s")


def _assert_record(stack: SignoffStack, version: SeededVersion) -> None:
    """The ledger converges on exactly one row per step. A ledger write the killed worker had
    started is retried once its timeout passes, so the record may trail the applied state."""
    expected = [
        ("REQUESTED_TRANSITION", "lee"),
        ("APPROVED_REQUEST", "mia"),
        ("APPROVED_REQUEST", "rita"),
        ("APPLIED_TRANSITION", "rita"),
    ]
    with stack.client("auditor", "ml-lead") as client:

        def whole_trail() -> list[dict[str, Any]] | None:
            found = version_activities(client, version)
            return found if len(found) >= len(expected) else None

        activities = wait_until(whole_trail, f"{len(expected)} activities", timeout_s=60)
    assert [(a["activity_type"], a["user_id"]) for a in activities] == expected
    assert len({a["id"] for a in activities}) == len(activities)


def test_approval_given_before_a_crash_still_counts(
    proxied_stack: tuple[SignoffStack, RecordingProxy], make_version: Any
) -> None:
    stack, proxy = proxied_stack
    version = make_version()
    with stack.client("lee", "ml-lead") as lee:
        created = lee.post("/api/2.0/mlflow/transition-requests/create", json=_body(version))
    assert created.status_code == 200, created.text
    _approve(stack, "mia", "ml-lead", version)

    stack.kill_worker()
    stack.start_worker()

    with stack.client("rita", "risk-officer") as rita:
        approved = rita.post("/api/2.0/mlflow/transition-requests/approve", json=_body(version))
        if approved.status_code == 503:  # the new worker was not ready yet: as documented,
            # the same call again attaches to the decision already sent, counted once
            assert approved.json()["dependency"] == "worker", approved.text
            approved = rita.post("/api/2.0/mlflow/transition-requests/approve", json=_body(version))
    assert approved.status_code == 200, approved.text
    assert _wait_closed(stack, created.json()["request"]["id"])["state"] == "APPLIED"
    assert stage_in_mlflow(stack.mlflow_url, version) == "Production"
    assert len(proxy.transitions) == 1
    _assert_record(stack, version)


def test_worker_killed_while_applying_applies_once(
    proxied_stack: tuple[SignoffStack, RecordingProxy], make_version: Any
) -> None:
    stack, proxy = proxied_stack
    version = make_version()
    with stack.client("lee", "ml-lead") as lee:
        created = lee.post("/api/2.0/mlflow/transition-requests/create", json=_body(version))
    request_id = created.json()["request"]["id"]
    _approve(stack, "mia", "ml-lead", version)

    proxy.hold_transitions = True
    answers: list[httpx.Response] = []

    def last_approval() -> None:
        with stack.client("rita", "risk-officer") as rita:
            answers.append(
                rita.post("/api/2.0/mlflow/transition-requests/approve", json=_body(version))
            )

    approver = threading.Thread(target=last_approval)
    approver.start()
    assert proxy.transition_arrived.wait(timeout=30), "the worker never called MLflow"

    stack.kill_worker()  # MLflow has the call in flight; the worker will never see the answer
    proxy.release.set()
    deadline = time.monotonic() + 30
    while stage_in_mlflow(stack.mlflow_url, version) != "Production":
        assert time.monotonic() < deadline, "the held transition never reached MLflow"
    stack.start_worker()

    assert _wait_closed(stack, request_id)["state"] == "APPLIED"
    approver.join(timeout=60)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    assert len(proxy.transitions) == 1, "MLflow received the transition more than once"
    assert stage_in_mlflow(stack.mlflow_url, version) == "Production"
    _assert_record(stack, version)
