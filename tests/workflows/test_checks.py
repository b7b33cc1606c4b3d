"""The verdicts of the validation checks (workflows/checks.py): pure functions of the
check a policy names and the evidence the activity read from MLflow."""

from __future__ import annotations

import json
import math

import pytest

from policies import CompareCheck, HttpCheck, MetricCheck, SignatureCheck, TagCheck
from workflows.checks import (
    EVIDENCE_TEXT_LIMIT,
    evaluate_compare,
    evaluate_http,
    evaluate_metric,
    evaluate_signature,
    evaluate_tag,
    http_status_is_retryable,
)
from workflows.domain import CheckResult, CheckStatus

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


# -- signature ---------------------------------------------------------------------------------

WHERE = {"source": "runs:/abc/model", "artifact_uri": "runs:/abc/model", "url": "http://m/x"}

# What MLflow 3 writes into MLmodel for a pandas input and a numpy output.
MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.pyfunc.model
mlflow_version: 3.1.0
signature:
  inputs: '[{"type": "double", "name": "amount", "required": true}, {"type": "string",
    "name": "country", "required": false}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
  params: null
"""


def test_signature_with_inputs_and_outputs_passes() -> None:
    result = evaluate_signature(SignatureCheck(), MLMODEL, WHERE)

    assert result.status is CheckStatus.PASSED
    assert result.check_id == "signature"
    assert result.summary == (
        "signature inputs [amount: double, country: string (optional)]; "
        "outputs [tensor float64 (-1,)]"
    )
    assert result.evidence == {
        **WHERE,
        "path": "MLmodel",
        "require_outputs": True,
        "inputs": ["amount: double", "country: string (optional)"],
        "outputs": ["tensor float64 (-1,)"],
    }


def test_signature_reads_bytes_too() -> None:
    assert evaluate_signature(SignatureCheck(), MLMODEL.encode(), WHERE).status is (
        CheckStatus.PASSED
    )


def test_no_mlmodel_fails_clearly() -> None:
    result = evaluate_signature(SignatureCheck(), None, WHERE)

    assert result.status is CheckStatus.FAILED
    assert result.summary == (
        "no MLmodel file at runs:/abc/model: the version's source is not a logged MLflow "
        "model, so it has no signature"
    )
    assert result.evidence["url"] == "http://m/x"


def test_mlmodel_without_signature_fails() -> None:
    text = "artifact_path: model\nflavors: {}\n"

    result = evaluate_signature(SignatureCheck(), text, WHERE)

    assert result.status is CheckStatus.FAILED
    assert result.summary == (
        "the model at runs:/abc/model has no signature; log it with `signature=` or an "
        "`input_example`"
    )


@pytest.mark.parametrize("inputs", ["null", "''", "'[]'"])
def test_signature_without_inputs_fails(inputs: str) -> None:
    text = f'signature:\n  inputs: {inputs}\n  outputs: \'[{{"type": "long"}}]\'\n'

    result = evaluate_signature(SignatureCheck(require_outputs=False), text, WHERE)

    assert result.status is CheckStatus.FAILED
    assert result.summary == "the model's signature at runs:/abc/model has no inputs"


def test_missing_outputs_fail_unless_not_required() -> None:
    text = 'signature:\n  inputs: \'[{"type": "long", "name": "n"}]\'\n'

    strict = evaluate_signature(SignatureCheck(), text, WHERE)
    lenient = evaluate_signature(SignatureCheck(require_outputs=False), text, WHERE)

    assert strict.status is CheckStatus.FAILED
    assert "has inputs but no outputs" in strict.summary
    assert lenient.status is CheckStatus.PASSED
    assert lenient.summary == "signature inputs [n: long]; no outputs"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("signature: [unclosed", "is not valid YAML"),
        ("- a list", "is not an MLflow model description"),
        ("signature: just-a-string", "signature in the MLmodel at runs:/abc/model is malformed"),
        ("signature:\n  inputs: '{not json'", "signature's inputs in the MLmodel"),
    ],
)
def test_unreadable_mlmodel_fails_with_the_reason(text: str, problem: str) -> None:
    result = evaluate_signature(SignatureCheck(), text, WHERE)

    assert result.status is CheckStatus.FAILED
    assert problem in result.summary


def test_long_signature_is_summarised() -> None:
    columns = [{"type": "double", "name": f"f{i}"} for i in range(60)]
    nested = [{"type": "array", "items": {"type": "string"}, "name": "tags"}]
    text = f"signature:\n  inputs: '{json.dumps(columns)}'\n  outputs: '{json.dumps(nested)}'\n"

    result = evaluate_signature(SignatureCheck(), text, WHERE)

    assert result.status is CheckStatus.PASSED
    assert result.summary.startswith("signature inputs [f0: double, f1: double,")
    assert "+52 more]" in result.summary
    assert result.summary.endswith("; outputs [tags: array<string>]")
    assert len(result.evidence["inputs"]) == 50


# -- compare -----------------------------------------------------------------------------------


def compare(
    check: CompareCheck,
    candidate: dict[str, float] | None,
    champion: dict[str, float] | None,
    champion_version: str | None = "3",
    target: str = "Production",
) -> CheckResult:
    return evaluate_compare(
        check,
        target=target,
        candidate=candidate,
        champion_version=champion_version,
        champion=champion,
    )


@pytest.mark.parametrize(
    ("higher_is_better", "candidate", "status"),
    [
        (True, 0.91, CheckStatus.PASSED),
        (True, 0.90, CheckStatus.FAILED),  # a tie does not beat
        (True, 0.89, CheckStatus.FAILED),
        (False, 0.89, CheckStatus.PASSED),
        (False, 0.90, CheckStatus.FAILED),
        (False, 0.91, CheckStatus.FAILED),
    ],
)
def test_beat_is_strict_in_the_metrics_direction(
    higher_is_better: bool, candidate: float, status: CheckStatus
) -> None:
    check = CompareCheck(metric="m", mode="beat", higher_is_better=higher_is_better, tolerance=1)

    result = compare(check, {"m": candidate}, {"m": 0.90})

    assert result.status is status
    assert result.check_id == "compare:m"
    assert (result.evidence["candidate"], result.evidence["champion"]) == (candidate, 0.90)


def test_beat_summary_and_evidence() -> None:
    result = compare(CompareCheck(metric="auc", mode="beat"), {"auc": 0.93}, {"auc": 0.91})

    assert result.summary == (
        "beats: auc 0.93 vs 0.91 of the champion version 3 at Production (higher is better)"
    )
    assert result.evidence == {
        "metric": "auc",
        "mode": "beat",
        "higher_is_better": True,
        "tolerance": 0.0,
        "target": "Production",
        "champion_version": "3",
        "candidate": 0.93,
        "champion": 0.91,
        "improvement": pytest.approx(0.02),
    }


@pytest.mark.parametrize(
    ("higher_is_better", "candidate", "status"),
    [
        (True, 0.90, CheckStatus.PASSED),  # equal is not worse
        (True, 0.88, CheckStatus.PASSED),  # worse by exactly the tolerance (float 0.0200...02)
        (True, 0.879, CheckStatus.FAILED),
        (False, 0.92, CheckStatus.PASSED),
        (False, 0.921, CheckStatus.FAILED),
        (False, 0.5, CheckStatus.PASSED),
    ],
)
def test_not_worse_allows_the_tolerance_inclusively(
    higher_is_better: bool, candidate: float, status: CheckStatus
) -> None:
    check = CompareCheck(metric="m", higher_is_better=higher_is_better, tolerance=0.02)

    assert compare(check, {"m": candidate}, {"m": 0.90}).status is status


def test_not_worse_with_zero_tolerance_fails_any_regression() -> None:
    result = compare(CompareCheck(metric="auc"), {"auc": 0.8999}, {"auc": 0.9})

    assert result.status is CheckStatus.FAILED
    assert result.summary == (
        "worse than the champion by 0.0001, more than the tolerance 0: auc 0.8999 vs 0.9 of the "
        "champion version 3 at Production (higher is better)"
    )


def test_no_champion_passes() -> None:
    result = compare(CompareCheck(metric="auc"), {"auc": 0.5}, None, champion_version=None)

    assert result.status is CheckStatus.PASSED
    assert result.summary == "no champion at Production; nothing to compare"
    assert result.evidence["champion_version"] is None
    assert result.evidence["candidate"] == 0.5


def test_no_champion_at_an_alias() -> None:
    result = compare(CompareCheck(metric="auc"), None, None, None, target="@champion")

    assert result.summary == "no champion at @champion; nothing to compare"


@pytest.mark.parametrize(
    ("candidate", "champion", "summary"),
    [
        (None, {"auc": 0.9}, "the candidate version has no run, so it has no metric 'auc'"),
        (
            {"loss": 0.1},
            {"auc": 0.9},
            "metric 'auc' is not logged on the candidate's run (logged: loss)",
        ),
        (
            {"auc": 0.9},
            None,
            "the champion version 3 at Production has no run, so it has no metric 'auc' to "
            "compare with",
        ),
        (
            {"auc": 0.9},
            {},
            "metric 'auc' is not logged on the run of the champion version 3 at Production "
            "(logged: none)",
        ),
    ],
    ids=["candidate-no-run", "candidate-missing", "champion-no-run", "champion-missing"],
)
def test_missing_metric_says_which_side(
    candidate: dict[str, float] | None, champion: dict[str, float] | None, summary: str
) -> None:
    result = compare(CompareCheck(metric="auc"), candidate, champion)

    assert result.status is CheckStatus.FAILED
    assert result.summary == summary


@pytest.mark.parametrize(
    ("candidate", "champion", "who"),
    [(math.nan, 0.9, "the candidate's"), (0.9, math.nan, "the champion's")],
)
def test_nan_on_either_side_fails(candidate: float, champion: float, who: str) -> None:
    result = compare(CompareCheck(metric="auc", tolerance=1), {"auc": candidate}, {"auc": champion})

    assert result.status is CheckStatus.FAILED
    assert result.summary == f"{who} auc is NaN, which compares with nothing"


def test_compare_result_survives_a_json_round_trip() -> None:
    result = compare(CompareCheck(metric="auc"), {"auc": 0.7}, {"auc": 0.9})

    assert type(result).model_validate_json(result.model_dump_json()) == result


# -- http --------------------------------------------------------------------------------------

HTTP = HttpCheck(url="https://review.example/validate", name="review")


def test_http_passed_with_structured_details() -> None:
    body = json.dumps({"passed": True, "details": {"cases": 3}}).encode()

    result = evaluate_http(HTTP, 200, body)

    assert result.status is CheckStatus.PASSED
    assert result.check_id == "http:review"
    assert result.summary == "review passed"
    assert result.evidence == {
        "url": "https://review.example/validate",
        "status": 200,
        "details": {"cases": 3},
    }


def test_http_failed_with_text_details_says_them() -> None:
    body = json.dumps({"passed": False, "details": "drift too high"}).encode()

    result = evaluate_http(HttpCheck(url="https://r.example/v"), 201, body)

    assert result.status is CheckStatus.FAILED
    assert result.summary == "https://r.example/v failed: drift too high"


def test_http_details_may_be_absent() -> None:
    result = evaluate_http(HTTP, 200, b'{"passed": true}')

    assert (result.status, result.evidence["details"]) == (CheckStatus.PASSED, None)


def test_http_large_details_are_cut() -> None:
    body = json.dumps({"passed": True, "details": {"log": "x" * 10_000}}).encode()

    details = evaluate_http(HTTP, 200, body).evidence["details"]

    assert isinstance(details, str)
    assert len(details) == EVIDENCE_TEXT_LIMIT + 1
    assert details.endswith("…")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "with a body that is not JSON"),
        (b"passed", "with a body that is not JSON"),
        (b'{"passed": 1}', "with 'passed' is 1"),
        (b'{"passed": null}', "with 'passed' is null"),
        (b'{"result": "ok"}', "with no 'passed'"),
        (b"true", "with a JSON bool"),
    ],
)
def test_http_badly_shaped_2xx_fails(body: bytes, problem: str) -> None:
    result = evaluate_http(HTTP, 200, body)

    assert result.status is CheckStatus.FAILED
    assert result.summary.startswith(
        f"POST https://review.example/validate answered HTTP 200 {problem}; expected"
    )
    assert result.evidence["body"] == body.decode()


def test_http_4xx_fails_with_the_answer() -> None:
    result = evaluate_http(HTTP, 404, b"no such check")

    assert result.status is CheckStatus.FAILED
    assert result.summary == "POST https://review.example/validate answered HTTP 404: no such check"
    assert result.evidence == {
        "url": "https://review.example/validate",
        "status": 404,
        "body": "no such check",
    }


def test_http_redirect_fails_and_names_the_target() -> None:
    result = evaluate_http(HTTP, 307, b"", location="https://elsewhere.example/v")

    assert result.status is CheckStatus.FAILED
    assert "redirect to https://elsewhere.example/v" in result.summary
    assert result.evidence["location"] == "https://elsewhere.example/v"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (502, True), (503, True), (408, True), (429, True)]
    + [(400, False), (401, False), (403, False), (404, False), (422, False), (200, False)],
)
def test_which_http_statuses_are_retried(status: int, retryable: bool) -> None:
    assert http_status_is_retryable(status) is retryable
