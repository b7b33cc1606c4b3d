"""What a caller is told when something Signoff depends on is down or going away, over real
HTTP against real processes: no worker running, Temporal unreachable, the API shutting down
with long-polls open. Every answer says what happened and what to do; nothing counts twice.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.http import (
    SIGNOFF,
    TRANSITIONS,
    assert_error,
    create,
    target,
    version_activities,
    wait,
)
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.stack import SignoffStack, api_without_temporal, running_stack
from tests.support.temporal import TemporalServer


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    """A stack of this module's own: its worker is stopped and started by the tests."""
    with running_stack(
        tmp_path_factory, "faults", temporal_server.address, mlflow_server.url
    ) as own:
        yield own


def _unavailable(response: httpx.Response, dependency: str) -> dict[str, Any]:
    assert_error(response, 503, "TEMPORARILY_UNAVAILABLE")
    assert response.headers.get("retry-after", "").isdigit(), response.headers
    body = response.json()
    assert body["dependency"] == dependency, body
    return body


def _approve(client: httpx.Client, seeded: SeededVersion, stage: str) -> httpx.Response:
    return client.post(
        f"{TRANSITIONS}/approve", json=target(seeded, stage) | {"archive_existing_versions": False}
    )


def test_an_approval_with_no_worker_is_503_and_its_retry_counts_once(
    stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
) -> None:
    seeded = make_version()
    with stack.client("lee", "data-scientist") as lee, stack.client("mia", "ml-lead") as mia:
        request = create(lee, seeded, "Staging")
        stack.kill_worker()
        try:
            body = _unavailable(_approve(mia, seeded, "Staging"), "worker")
            assert body["recorded"] is False
            assert "not recorded yet" in body["message"] and "same call again" in body["message"]
            assert stage_in_mlflow(mlflow_server.url, seeded) == "None"
        finally:
            stack.start_worker()
        again = _approve(mia, seeded, "Staging")
        assert again.status_code == 200, again.text
        # The answer waits a while for the move; a worker just started may take longer, and
        # the answer then says the move is under way.
        assert again.json()["request"]["state"] in ("APPLIED", "APPLYING"), again.text
        assert wait(mia, request["id"])["state"] == "APPLIED"
        assert stage_in_mlflow(mlflow_server.url, seeded) == "Staging"
        trail = [e for e in version_activities(lee, seeded) if e.get("request_id") == request["id"]]
        kinds = [entry["activity_type"] for entry in trail]
        assert kinds == ["REQUESTED_TRANSITION", "APPROVED_REQUEST", "APPLIED_TRANSITION"], trail


def test_temporal_down_is_503_naming_temporal(
    stack: SignoffStack, make_version: Callable[..., SeededVersion]
) -> None:
    seeded = make_version()
    with api_without_temporal(stack, stack.root / "api-no-temporal.log") as url:
        headers = {"Authorization": f"Bearer {stack.token('lee', 'data-scientist')}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as lee:
            created = lee.post(f"{TRANSITIONS}/create", json=target(seeded, "Staging"))
            assert "Temporal" in _unavailable(created, "temporal")["message"]
        headers = {"Authorization": f"Bearer {stack.token('mia', 'ml-lead')}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as mia:
            _unavailable(_approve(mia, seeded, "Staging"), "temporal")


def test_sigterm_answers_open_long_polls_and_the_api_exits(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    make_version: Callable[..., SeededVersion],
) -> None:
    seeded = make_version()
    with running_stack(
        tmp_path_factory, "sigterm", temporal_server.address, mlflow_server.url
    ) as own:
        assert own.api is not None
        with own.client("lee", "data-scientist") as lee:
            request = create(lee, seeded, "Production")
            answers: list[httpx.Response | Exception] = []

            def long_poll() -> None:
                try:
                    answers.append(
                        lee.get(
                            f"{SIGNOFF}/transition-requests/wait",
                            params={"id": request["id"], "timeout_s": 280},
                            timeout=300,
                        )
                    )
                except Exception as err:  # noqa: BLE001 - reported by the assertion below
                    answers.append(err)

            poller = threading.Thread(target=long_poll)
            poller.start()
            # The long-poll is in flight once the API has read the request: its access log
            # says nothing until it answers, so give the request a moment to arrive.
            threading.Event().wait(2.0)
            os.kill(own.api.pid, signal.SIGTERM)
            poller.join(timeout=120)
            assert not poller.is_alive(), "the long-poll was not answered on shutdown"
            assert own.api.wait(timeout=60) is not None
            [answer] = answers
            assert isinstance(answer, httpx.Response), answer
            assert answer.status_code == 200, answer.text
            assert answer.json()["request"]["state"] == "PENDING"
            own.api = None
