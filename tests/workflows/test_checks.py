"""The verdicts of the validation checks (signoff/workflows/checks.py): pure functions of the
check a policy names and the evidence the activity read from MLflow."""

from __future__ import annotations

import math

import pytest

from signoff.policies import MetricCheck, TagCheck
from signoff.workflows.checks import evaluate_metric, evaluate_tag
from signoff.workflows.types import CheckStatus

# -- metric ------------------------------------------------------------------------------------


def test_metric_below_min_fails_with_value_and_bound() -> None:
    result = evaluate_metric(MetricCheck(name="auc", min=0.9), {"auc": 0.7, "loss": 0.3})

    assert result.status is CheckStatus.FAILED
    assert result.check_id == "metric:auc"
    assert result.type == "metric"
    assert result.summary == "auc = 0.7 < min 0.9"
    assert result.evidence == {"metric": "auc", "min": 0.9, "max": None, "value": 0.7}


def test_metric_above_max_fails() -> None:
    result = evaluate_metric(MetricCheck(name="latency_ms", max=50), {"latency_ms": 51.5})

    assert result.status is CheckStatus.FAILED
    assert result.summary == "latency_ms = 51.5 > max 50.0"
    assert result.evidence["value"] == 51.5
    assert result.evidence["max"] == 50


@pytest.mark.parametrize(
    ("check", "value", "summary"),
    [
        (MetricCheck(name="auc", min=0.8), 0.85, "auc = 0.85 >= 0.8"),
        (MetricCheck(name="auc", max=0.99), 0.85, "auc = 0.85 <= 0.99"),
        (MetricCheck(name="auc", min=0.8, max=0.99), 0.85, "auc = 0.85 >= 0.8 and <= 0.99"),
    ],
)
def test_metric_within_bounds_passes(check: MetricCheck, value: float, summary: str) -> None:
    result = evaluate_metric(check, {"auc": value})

    assert result.status is CheckStatus.PASSED
    assert result.summary == summary
    assert result.evidence["value"] == value


@pytest.mark.parametrize("value", [0.9, 1.0])
def test_metric_bounds_are_inclusive(value: float) -> None:
    check = MetricCheck(name="auc", min=0.9, max=1.0)

    assert evaluate_metric(check, {"auc": value}).status is CheckStatus.PASSED


def test_missing_metric_fails_and_lists_what_is_logged() -> None:
    result = evaluate_metric(MetricCheck(name="auc", min=0.9), {"loss": 0.2, "accuracy": 0.9})

    assert result.status is CheckStatus.FAILED
    assert result.summary == "metric 'auc' is not logged on the run (logged: accuracy, loss)"
    assert "value" not in result.evidence


def test_missing_metric_on_a_run_without_metrics() -> None:
    result = evaluate_metric(MetricCheck(name="auc", min=0.9), {})

    assert result.status is CheckStatus.FAILED
    assert result.summary.endswith("(logged: none)")


@pytest.mark.parametrize(
    "check",
    [MetricCheck(name="auc", min=0.9), MetricCheck(name="auc", max=0.9)],
    ids=["min", "max"],
)
def test_nan_metric_fails(check: MetricCheck) -> None:
    # MLflow logs NaN (a diverged run); NaN compares false with everything, so a bound
    # check must not read "not below min" as "passed".
    result = evaluate_metric(check, {"auc": math.nan})

    assert result.status is CheckStatus.FAILED
    assert "NaN" in result.summary
    assert math.isnan(result.evidence["value"])


def test_metric_result_survives_a_json_round_trip() -> None:
    result = evaluate_metric(MetricCheck(name="auc", min=0.9), {"auc": 0.7})

    assert type(result).model_validate_json(result.model_dump_json()) == result


# -- tag ---------------------------------------------------------------------------------------


def test_tag_present_passes() -> None:
    result = evaluate_tag(TagCheck(key="validated_by"), {"validated_by": "alice"})

    assert result.status is CheckStatus.PASSED
    assert result.check_id == "tag:validated_by"
    assert result.summary == "tag validated_by = 'alice'"
    assert result.evidence == {"key": "validated_by", "expected": None, "value": "alice"}


def test_missing_tag_fails_with_a_clear_summary() -> None:
    result = evaluate_tag(TagCheck(key="validated_by"), {"team": "fraud"})

    assert result.status is CheckStatus.FAILED
    assert result.summary == "tag 'validated_by' is not set"
    assert result.evidence == {"key": "validated_by", "expected": None}


def test_tag_with_expected_value() -> None:
    check = TagCheck(key="data_review", value="passed")

    good = evaluate_tag(check, {"data_review": "passed"})
    bad = evaluate_tag(check, {"data_review": "pending"})

    assert good.status is CheckStatus.PASSED
    assert bad.status is CheckStatus.FAILED
    assert bad.summary == "tag data_review = 'pending', expected 'passed'"
    assert bad.evidence == {"key": "data_review", "expected": "passed", "value": "pending"}


def test_tag_value_is_compared_exactly() -> None:
    check = TagCheck(key="data_review", value="passed")

    assert evaluate_tag(check, {"data_review": "Passed"}).status is CheckStatus.FAILED
    assert evaluate_tag(check, {"data_review": "passed "}).status is CheckStatus.FAILED


def test_empty_tag_value_counts_as_present() -> None:
    # MLflow tags may carry an empty value; presence is what a check without `value` asks.
    assert evaluate_tag(TagCheck(key="reviewed"), {"reviewed": ""}).status is CheckStatus.PASSED
