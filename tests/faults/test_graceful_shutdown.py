"""Graceful operation over real HTTP against real processes started as the container image
starts them (`infra/docker/entrypoint.sh api` / `worker`): SIGTERM drains the API during a
burst without losing an accepted call, SIGTERM lets the worker finish the activity it runs, and
the per-principal rate limit answers 429 with `Retry-After`."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.http import SIGNOFF, TRANSITIONS, assert_error, target, version_activities, wait
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.mlflow_proxy import MlflowProxy
from tests.support.polling import wait_until
from tests.support.processes import log_tail
from tests.support.stack import ENTRYPOINT, SignoffStack, running_stack
from tests.support.temporal import TemporalServer

DRAIN_S = 3
RATE_BURST = 40
RATE_PER_S = 0.5


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    proxy: MlflowProxy,
) -> Iterator[SignoffStack]:
    """API and worker through the image's entrypoint, reaching MLflow through `proxy` (to keep
    a call in flight), draining for `DRAIN_S` after SIGTERM."""
    with running_stack(
        tmp_path_factory,
        "graceful",
        temporal_server.address,
        proxy.url,
        entrypoint=True,
        SIGNOFF_SHUTDOWN_DRAIN_S=str(DRAIN_S),
        SIGNOFF_RATE_LIMIT_BURST=str(RATE_BURST),
        SIGNOFF_RATE_LIMIT_PER_S=str(RATE_PER_S),
    ) as own:
        yield own


def test_the_image_entrypoint_starts_an_api_and_a_worker_that_are_ready(
    stack: SignoffStack,
) -> None:
    """As the image runs them: `entrypoint.sh worker` and `entrypoint.sh api` (the fixture
    waited for /readyz), then `entrypoint.sh db-upgrade` finds the ledger migrated."""
    ready = httpx.get(f"{stack.api_url}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "temporal": "ok", "mlflow": "ok"}
    upgraded = subprocess.run(
        [str(ENTRYPOINT), "db-upgrade"], env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert "already at revision" in upgraded.stdout


Outcome = httpx.Response | httpx.TransportError


def _create(client: httpx.Client, seeded: SeededVersion, stage: str) -> Outcome:
    try:
        return client.post(f"{TRANSITIONS}/create", json=target(seeded, stage))
    except httpx.TransportError as err:
        return err


def _burst(
    stack: SignoffStack, seeded: SeededVersion, who: str, accepted: list[str]
) -> list[tuple[str, Outcome]]:
    """One client creating requests for fresh aliases until the API stops accepting them;
    each accepted one's alias is appended to `accepted` as it comes."""
    outcomes: list[tuple[str, Outcome]] = []
    with stack.client(who, "data-scientist") as client:
        for i in range(RATE_BURST - 2):
            alias = f"@{who}-{i}"
            outcomes.append((alias, _create(client, seeded, alias)))
            answer = outcomes[-1][1]
            if not isinstance(answer, httpx.Response) or answer.status_code != 200:
                break
            accepted.append(alias)
    return outcomes


def _refused_while_draining(answer: Outcome) -> bool:
    """Refused before anything was read: 503 naming the API with Retry-After, or (after the
    drain, the port closed) no connection at all."""
    if isinstance(answer, httpx.ConnectError):
        return True
    if not isinstance(answer, httpx.Response) or answer.status_code != 503:
        return False
    assert_error(answer, 503, "TEMPORARILY_UNAVAILABLE")
    assert answer.headers["retry-after"].isdigit(), answer.headers
    assert answer.headers["connection"] == "close", answer.headers
    return answer.json()["dependency"] == "api"


def test_sigterm_during_a_burst_finishes_calls_in_flight_and_loses_no_accepted_call(
    stack: SignoffStack, proxy: MlflowProxy, make_version: Callable[..., SeededVersion]
) -> None:
    assert stack.api is not None
    seeded = make_version()
    held: list[Outcome] = []
    bursts: dict[str, list[tuple[str, Outcome]]] = {}
    progress: list[str] = []

    def burst(who: str) -> None:
        bursts[who] = _burst(stack, seeded, who, progress)

    with stack.client("lee", "data-scientist") as lee, proxy.hold("/model-versions/get") as go:
        held_before = len(proxy.held)
        in_flight = threading.Thread(target=lambda: held.append(_create(lee, seeded, "Staging")))
        in_flight.start()
        wait_until(lambda: len(proxy.held) > held_before, "the create call to reach MLflow")
        workers = [threading.Thread(target=burst, args=(who,)) for who in ("ann", "bob", "cyd")]
        for worker in workers:
            worker.start()
        wait_until(lambda: len(progress) >= 6, "a burst of accepted calls")
        os.kill(stack.api.pid, signal.SIGTERM)

        with httpx.Client(base_url=stack.api_url, timeout=30) as probe:
            wait_until(lambda: probe.get("/readyz").status_code == 503, "/readyz to say draining")
            assert probe.get("/healthz").status_code == 200
        with stack.client("eve", "data-scientist") as eve:
            assert _refused_while_draining(_create(eve, seeded, "@eve")), "a new call was served"
        go.set()  # the call in flight since before SIGTERM goes on, and is answered
        for thread in (in_flight, *workers):
            thread.join(timeout=120)
    stack.api.wait(timeout=60)
    stack.api = None

    [first] = held  # in flight all along: answered, and told not to reuse the connection
    assert isinstance(first, httpx.Response) and first.status_code == 200, first
    assert first.headers["connection"] == "close"
    accepted = [first.json()["request"]["id"]]
    refused: list[str] = []
    for outcomes in bursts.values():
        *served, (last_alias, last) = outcomes
        assert all(isinstance(a, httpx.Response) and a.status_code == 200 for _, a in served)
        accepted += [answer.json()["request"]["id"] for _, answer in served]  # type: ignore[union-attr]
        assert _refused_while_draining(last), last
        refused.append(last_alias)

    stack.start_api()
    with stack.client("lee", "data-scientist") as lee:
        for request_id in accepted:
            found = lee.get(f"{SIGNOFF}/transition-requests/get", params={"id": request_id})
            assert found.status_code == 200, found.text
        trail = version_activities(lee, seeded)
        requested = {e["to_stage"] for e in trail if e["activity_type"] == "REQUESTED_TRANSITION"}
        assert not requested & set(refused), "a refused call was half done"
        assert len(requested) == len(accepted)
        for alias in refused:  # nothing was done: the retry simply works
            again = _create(lee, seeded, alias)
            assert isinstance(again, httpx.Response) and again.status_code == 200, again


def test_sigterm_lets_the_worker_finish_its_running_activity(
    stack: SignoffStack,
    proxy: MlflowProxy,
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
) -> None:
    assert stack.worker is not None
    seeded = make_version()
    decided: list[httpx.Response] = []
    with stack.client("lee", "data-scientist") as lee, stack.client("mia", "ml-lead") as mia:
        request = lee.post(f"{TRANSITIONS}/create", json=target(seeded, "Staging")).json()
        with proxy.hold("/model-versions/transition-stage") as go:
            held_before = len(proxy.held)
            approve = threading.Thread(
                target=lambda: decided.append(
                    mia.post(
                        f"{TRANSITIONS}/approve",
                        json=target(seeded, "Staging") | {"archive_existing_versions": False},
                    )
                )
            )
            approve.start()
            wait_until(lambda: len(proxy.held) > held_before, "the apply activity to call MLflow")
            os.kill(stack.worker.pid, signal.SIGTERM)
            wait_until(
                lambda: "worker stopping" in log_tail(stack.root / "worker.log"),
                "the worker to begin its shutdown",
            )
            go.set()
            assert stack.worker.wait(timeout=60) == 0, log_tail(stack.root / "worker.log")
        stack.worker = None
        # The activity ran to its end before the worker exited: MLflow has the move.
        assert stage_in_mlflow(mlflow_server.url, seeded) == "Staging"
        assert "worker stopped" in log_tail(stack.root / "worker.log")
        stack.start_worker()
        approve.join(timeout=120)
        assert wait(lee, request["request"]["id"], timeout_s=60)["state"] == "APPLIED"
        kinds = [
            entry["activity_type"]
            for entry in version_activities(lee, seeded)
            if entry.get("request_id") == request["request"]["id"]
        ]
        assert kinds == ["REQUESTED_TRANSITION", "APPROVED_REQUEST", "APPLIED_TRANSITION"]
        moves = [path for path in proxy.forwarded if path.endswith("/transition-stage")]
        assert len(moves) <= 2, moves  # completed, or retried once
    [answer] = decided
    assert answer.status_code in (200, 503), answer.text


def test_a_principal_past_its_rate_limit_gets_429_with_retry_after(
    stack: SignoffStack, make_version: Callable[..., SeededVersion]
) -> None:
    seeded = make_version()
    path = f"{SIGNOFF}/activities/list"
    params = {"name": seeded.name, "version": seeded.version}
    with (
        stack.client("rlx", "data-scientist") as busy,
        stack.client("rly", "data-scientist") as other,
    ):
        answers = [busy.get(path, params=params)]
        while answers[-1].status_code == 200 and len(answers) <= 2 * RATE_BURST:
            answers.append(busy.get(path, params=params))  # the bucket refills meanwhile
        *served, limited = answers
        assert len(served) >= RATE_BURST and {a.status_code for a in served} == {200}
        message = assert_error(limited, 429, "REQUEST_LIMIT_EXCEEDED")
        assert "rlx" in message
        retry_after = int(limited.headers["retry-after"])
        assert retry_after >= 1
        assert other.get(path, params=params).status_code == 200  # per principal
        threading.Event().wait(retry_after)
        assert busy.get(path, params=params).status_code == 200
