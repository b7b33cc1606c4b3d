"""MLflow down when the completing approval arrives, over real HTTP: the approver is told the
truth at once (approved; MLflow unreachable; Signoff keeps retrying), and once MLflow is back
the transition is applied, once."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.http import TRANSITIONS, create, target, version_activities, wait
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.mlflow_proxy import MlflowProxy
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    proxy: MlflowProxy,
) -> Iterator[SignoffStack]:
    """A stack that reaches MLflow only through `proxy`."""
    with running_stack(tmp_path_factory, "mlflow-down", temporal_server.address, proxy.url) as own:
        yield own


def test_the_completing_approval_says_mlflow_is_down_and_applies_once_it_is_back(
    stack: SignoffStack,
    proxy: MlflowProxy,
    make_version: Callable[..., SeededVersion],
    mlflow_server: MlflowServer,
) -> None:
    seeded = make_version()
    with stack.client("lee", "data-scientist") as lee, stack.client("mia", "ml-lead") as mia:
        request = create(lee, seeded, "Staging")
        with proxy.down():
            answer = mia.post(
                f"{TRANSITIONS}/approve",
                json=target(seeded, "Staging") | {"archive_existing_versions": False},
            )
            assert answer.status_code == 200, answer.text
            outcome = answer.json()["request"]
            assert outcome["state"] == "APPLYING", outcome
            assert outcome["reason"] == "MLflow is unreachable, Signoff keeps retrying"
            assert stage_in_mlflow(mlflow_server.url, seeded) == "None"
        assert wait(lee, request["id"], timeout_s=120)["state"] == "APPLIED"
        assert stage_in_mlflow(mlflow_server.url, seeded) == "Staging"
        kinds = [
            entry["activity_type"]
            for entry in version_activities(lee, seeded)
            if entry.get("request_id") == request["id"]
        ]
        assert kinds == ["REQUESTED_TRANSITION", "APPROVED_REQUEST", "APPLIED_TRANSITION"]
