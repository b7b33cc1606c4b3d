"""The request series count what the ledger records, once: whoever writes a request (the API's
early write, the worker's outbox, both at once), however often (activities run at least once),
on SQLite and on PostgreSQL. And in multiprocess mode one endpoint serves the sum of several
processes' series."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.workflows.test_ledger import T0, run_concurrently, snapshot
from workflows.domain import Approval, CheckResult, CheckStatus, RequestState
from workflows.ledger import Ledger
from workflows.metrics import exposition_registry
from workflows.settings import WorkerSettings

ALIAS = {"target": "@alias"}
APPLIED = {"state": "APPLIED", "target": "@alias"}
SERIES = {
    "opened": ("signoff_requests_opened_total", ALIAS),
    "ended": ("signoff_requests_ended_total", APPLIED),
    "decisions": ("signoff_request_decision_seconds_count", APPLIED),
    "decision_s": ("signoff_request_decision_seconds_sum", APPLIED),
    "applies": ("signoff_request_approval_to_applied_seconds_count", ALIAS),
    "apply_s": ("signoff_request_approval_to_applied_seconds_sum", ALIAS),
    "checks": ("signoff_check_duration_seconds_count", {"type": "metric", "outcome": "PASSED"}),
}


def values() -> dict[str, float]:
    return {
        key: REGISTRY.get_sample_value(name, labels) or 0.0
        for key, (name, labels) in SERIES.items()
    }


def moved(before: dict[str, float]) -> dict[str, float]:
    after = values()
    return {key: round(after[key] - before[key], 3) for key in SERIES}


async def test_a_request_is_counted_once_whoever_writes_it_and_however_often(
    ledger: Ledger,
) -> None:
    before = values()
    opening = snapshot("req-m", target="@champion")
    await run_concurrently(3, lambda _: ledger.requests.record(snapshot=opening))
    check = CheckResult(
        check_id="metric:auc", type="metric", status=CheckStatus.PASSED, finished_ms=T0 + 2_000
    )
    checked = snapshot("req-m", target="@champion", revision=3, checks=[check])
    await run_concurrently(2, lambda _: ledger.requests.record(snapshot=checked))
    approval = Approval(user_id="bob", creation_timestamp=T0 + 10_000)

    def applied(revision: int):  # noqa: ANN202
        return snapshot(
            "req-m",
            target="@champion",
            revision=revision,
            state=RequestState.APPLIED,
            checks=[check],
            approvals=[approval],
            updated_ms=T0 + 10_500,
        )

    # The API's early write and the worker's, of two revisions of the end, at once.
    await run_concurrently(2, lambda i: ledger.requests.record(snapshot=applied(5 + i)))
    await ledger.requests.record(snapshot=applied(6))  # a retried activity

    assert moved(before) == {
        "opened": 1,
        "ended": 1,
        "decisions": 1,
        "decision_s": 10.0,  # created → the last approval it waited for
        "applies": 1,
        "apply_s": 0.5,  # the last approval → applied
        "checks": 1,
    }
    assert (await ledger.requests.get("req-m")).revision == 6


def test_in_multiprocess_mode_one_endpoint_serves_the_sum_of_every_process(
    tmp_path: Path,
) -> None:
    count = (
        "from workflows.metrics import WEBHOOK_ATTEMPTS; "
        "WEBHOOK_ATTEMPTS.labels('hook-1', 'DELIVERED').inc()"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(Path.cwd())}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=120)

    settings = WorkerSettings(PROMETHEUS_MULTIPROC_DIR=tmp_path)
    text = generate_latest(exposition_registry(settings)).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    key = (
        "signoff_webhook_delivery_attempts_total",
        (("outcome", "DELIVERED"), ("receiver", "hook-1")),
    )
    assert samples[key] == 2.0
