"""Races between people acting on one request at the same instant, over real HTTP against the
real stack. Each race is run many times (enough to catch one that goes wrong in 5% of trials
with high probability), and each trial checks what the callers were told against what the
record and MLflow say happened: a caller who is told "done" must find it done.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.http import TRANSITIONS, create, target, version_activities, wait
from tests.support.mlflow import MlflowServer, SeededVersion, mlflow_version

TRIALS = 60
"""A race lost in 5% of trials shows up in 60 trials with probability 1 - 0.95**60 ≈ 95%."""

BATCH = 6
"""Trials run this many at a time (on separate versions), so the suite stays quick."""


def _approve(client: httpx.Client, seeded: SeededVersion, stage: str) -> httpx.Response:
    body = target(seeded, stage) | {"archive_existing_versions": False}
    try:
        return client.post(f"{TRANSITIONS}/approve", json=body)
    except httpx.RemoteProtocolError:
        # A kept-alive connection the server closed just as it was reused (no answer came).
        # Sending the same decision again is safe: it attaches to the first, counted once.
        return client.post(f"{TRANSITIONS}/approve", json=body)


def _cancel(
    client: httpx.Client, seeded: SeededVersion, stage: str, creator: str
) -> httpx.Response:
    return client.delete(
        f"{TRANSITIONS}/delete", params=target(seeded, stage) | {"creator": creator}
    )


def _in_batches(trial: Callable[[int], None]) -> None:
    with ThreadPoolExecutor(BATCH) as pool:
        for _ in pool.map(trial, range(TRIALS)):
            pass


def _refused(response: httpx.Response) -> bool:
    """A decision turned away because the request is no longer open: 400 (not open) or 404
    (no open request for that target), in MLflow's error shape."""
    return response.status_code in (400, 404) and "error_code" in response.json()


@pytest.mark.timeout(600)
def test_approve_racing_cancel_tells_each_caller_the_truth(
    make_version: Callable[..., SeededVersion],
    as_user: Callable[..., httpx.Client],
    mlflow_server: MlflowServer,
) -> None:
    lee, mia = as_user("lee", "data-scientist"), as_user("mia", "ml-lead")

    def trial(_: int) -> None:
        seeded = make_version()
        request = create(lee, seeded, "Staging")
        with ThreadPoolExecutor(2) as pool:
            approving = pool.submit(_approve, mia, seeded, "Staging")
            cancelling = pool.submit(_cancel, lee, seeded, "Staging", "lee")
            approved, cancelled = approving.result(), cancelling.result()
        final = wait(lee, request["id"])
        stage = mlflow_version(mlflow_server.url, seeded)["current_stage"]
        told = (approved.status_code, cancelled.status_code)
        if approved.status_code == 200:
            assert final["state"] == "APPLIED" and stage == "Staging", (told, final)
            assert _refused(cancelled), (told, cancelled.text)
        else:
            assert _refused(approved), (told, approved.text)
            assert cancelled.status_code == 200, (told, cancelled.text)
            assert final["state"] == "CANCELLED" and stage == "None", (told, final)

    _in_batches(trial)


@pytest.mark.timeout(600)
def test_two_approvals_at_once_apply_once(
    make_version: Callable[..., SeededVersion],
    as_user: Callable[..., httpx.Client],
    mlflow_server: MlflowServer,
) -> None:
    lee = as_user("lee", "data-scientist")
    mia, rita = as_user("mia", "ml-lead"), as_user("rita", "risk-officer")

    def trial(_: int) -> None:
        seeded = make_version()
        request = create(lee, seeded, "Production")
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda c: _approve(c, seeded, "Production"), [mia, rita]))
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert wait(lee, request["id"])["state"] == "APPLIED"
        assert mlflow_version(mlflow_server.url, seeded)["current_stage"] == "Production"
        kinds = [entry["activity_type"] for entry in version_activities(lee, seeded)]
        assert kinds.count("APPROVED_REQUEST") == 2, kinds
        assert kinds.count("APPLIED_TRANSITION") == 1, kinds

    _in_batches(trial)


@pytest.mark.timeout(600)
def test_an_approval_right_after_create_comes_after_the_request_in_the_trail(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    lee, mia = as_user("lee", "data-scientist"), as_user("mia", "ml-lead")

    def trial(_: int) -> None:
        seeded = make_version()
        request = create(lee, seeded, "Staging")
        assert _approve(mia, seeded, "Staging").status_code == 200
        assert wait(lee, request["id"])["state"] == "APPLIED"
        trail = [e for e in version_activities(lee, seeded) if e["id"].startswith(request["id"])]
        kinds = [entry["activity_type"] for entry in trail]
        assert kinds == ["REQUESTED_TRANSITION", "APPROVED_REQUEST", "APPLIED_TRANSITION"], trail

    _in_batches(trial)


def test_twenty_parallel_creates_open_one_request(
    make_version: Callable[..., SeededVersion], as_user: Callable[..., httpx.Client]
) -> None:
    seeded = make_version()
    lee = as_user("lee", "data-scientist")
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(
                lambda _: lee.post(f"{TRANSITIONS}/create", json=target(seeded, "Production")),
                range(20),
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 19, [a.text for a in answers]
    listed = lee.get(f"{TRANSITIONS}/list", params={"name": seeded.name, "version": seeded.version})
    assert len(listed.json()["requests"]) == 1
    requested = [
        e for e in version_activities(lee, seeded) if e["activity_type"] == "REQUESTED_TRANSITION"
    ]
    assert len(requested) == 1, requested
