"""How each validation check judges the evidence it gathered. Pure: the activities fetch the
evidence (from MLflow, from a check's URL), these functions decide, so the verdicts are testable
without a server."""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

from policies import Check, CompareCheck, HttpCheck, MetricCheck, SignatureCheck, TagCheck
from workflows.domain import CheckResult, CheckStatus

EVIDENCE_TEXT_LIMIT = 2000
"""Longest text (a response body, a check's `details` as JSON) kept as evidence: evidence lands
in workflow history and in the ledger."""
_SCHEMA_ITEMS_LIMIT = 50
_SUMMARY_ITEMS = 8


def evaluate_metric(check: MetricCheck, metrics: dict[str, float]) -> CheckResult:
    evidence: dict[str, object] = {"metric": check.name, "min": check.min, "max": check.max}
    value = metrics.get(check.name)
    if value is None:
        logged = ", ".join(sorted(metrics)) or "none"
        return _result(
            check,
            CheckStatus.FAILED,
            f"metric {check.name!r} is not logged on the run (logged: {logged})",
            evidence,
        )
    evidence["value"] = value
    if math.isnan(value):
        # NaN compares false with every bound, so without this it would pass them all.
        return _result(
            check, CheckStatus.FAILED, f"{check.name} is NaN, which meets no bound", evidence
        )
    if check.min is not None and value < check.min:
        return _result(
            check, CheckStatus.FAILED, f"{check.name} = {value} < min {check.min}", evidence
        )
    if check.max is not None and value > check.max:
        return _result(
            check, CheckStatus.FAILED, f"{check.name} = {value} > max {check.max}", evidence
        )
    bounds = " and ".join(
        part
        for part in (
            f">= {check.min}" if check.min is not None else "",
            f"<= {check.max}" if check.max is not None else "",
        )
        if part
    )
    return _result(check, CheckStatus.PASSED, f"{check.name} = {value} {bounds}", evidence)


def evaluate_tag(check: TagCheck, tags: dict[str, str]) -> CheckResult:
    evidence: dict[str, object] = {"key": check.key, "expected": check.value}
    if check.key not in tags:
        return _result(check, CheckStatus.FAILED, f"tag {check.key!r} is not set", evidence)
    actual = tags[check.key]
    evidence["value"] = actual
    if check.value is not None and actual != check.value:
        summary = f"tag {check.key} = {actual!r}, expected {check.value!r}"
        return _result(check, CheckStatus.FAILED, summary, evidence)
    return _result(check, CheckStatus.PASSED, f"tag {check.key} = {actual!r}", evidence)


# -- signature -----------------------------------------------------------------------------------


def evaluate_signature(
    check: SignatureCheck, mlmodel: str | bytes | None, location: dict[str, Any]
) -> CheckResult:
    """Judge the version's `MLmodel` file (None: there is none). `location` says where it was
    read from (`url`, `artifact_uri`, `source`) and is kept as evidence."""
    evidence: dict[str, object] = {
        **location,
        "path": "MLmodel",
        "require_outputs": check.require_outputs,
    }
    where = location.get("artifact_uri") or location.get("source") or "the version's source"
    if mlmodel is None:
        return _result(
            check,
            CheckStatus.FAILED,
            f"no MLmodel file at {where}: the version's source is not a logged MLflow model, "
            "so it has no signature",
            evidence,
        )
    try:
        document = yaml.safe_load(mlmodel)
    except yaml.YAMLError as err:
        problem = " ".join(str(err).split())[:200]
        return _result(
            check,
            CheckStatus.FAILED,
            f"the MLmodel at {where} is not valid YAML: {problem}",
            evidence,
        )
    if not isinstance(document, dict):
        return _result(
            check,
            CheckStatus.FAILED,
            f"the MLmodel at {where} is not an MLflow model description (not a YAML mapping)",
            evidence,
        )
    signature = document.get("signature")
    if not signature:
        return _result(
            check,
            CheckStatus.FAILED,
            f"the model at {where} has no signature; log it with `signature=` or an "
            "`input_example`",
            evidence,
        )
    if not isinstance(signature, dict):
        return _result(
            check,
            CheckStatus.FAILED,
            f"the signature in the MLmodel at {where} is malformed",
            evidence,
        )
    parts: dict[str, list[str] | None] = {}
    for key in ("inputs", "outputs", "params"):
        try:
            parts[key] = _schema_items(signature.get(key))
        except ValueError as err:
            return _result(
                check,
                CheckStatus.FAILED,
                f"the signature's {key} in the MLmodel at {where} cannot be read: {err}",
                evidence,
            )
    for key, items in parts.items():
        if items is not None:
            evidence[key] = items[:_SCHEMA_ITEMS_LIMIT]
    inputs, outputs = parts["inputs"], parts["outputs"]
    if not inputs:
        return _result(
            check, CheckStatus.FAILED, f"the model's signature at {where} has no inputs", evidence
        )
    if check.require_outputs and not outputs:
        return _result(
            check,
            CheckStatus.FAILED,
            f"the model's signature at {where} has inputs but no outputs "
            "(set require_outputs: false to accept that)",
            evidence,
        )
    summary = f"signature inputs {_brief(inputs)}"
    summary += f"; outputs {_brief(outputs)}" if outputs else "; no outputs"
    return _result(check, CheckStatus.PASSED, summary, evidence)


def _schema_items(raw: object) -> list[str] | None:
    """One line per column or tensor of a schema as MLflow writes it in MLmodel (a JSON string
    of a list of specs); None when the schema is absent."""
    if raw is None:
        return None
    if isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ValueError("it is not JSON") from None
    if raw is None:
        return None
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise ValueError("it is not a list of columns or tensors")
    return [_spec_text(spec) for spec in raw]


def _spec_text(spec: object) -> str:
    if not isinstance(spec, dict):
        return str(spec)[:80]
    kind = _type_text(spec)
    name = spec.get("name")
    text = f"{name}: {kind}" if name is not None else kind
    if spec.get("required") is False:
        text += " (optional)"
    return text


def _type_text(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if kind == "tensor":
        tensor = spec.get("tensor-spec") or {}
        shape = tensor.get("shape")
        shape_text = f" {tuple(shape)}" if isinstance(shape, list) else ""
        return f"tensor {tensor.get('dtype', '?')}{shape_text}"
    if kind == "array" and isinstance(spec.get("items"), dict):
        return f"array<{_type_text(spec['items'])}>"
    if kind == "object" and isinstance(spec.get("properties"), dict):
        return f"object{{{', '.join(spec['properties'])}}}"
    return str(kind or "?")


def _brief(items: list[str]) -> str:
    shown = ", ".join(items[:_SUMMARY_ITEMS])
    more = len(items) - _SUMMARY_ITEMS
    return f"[{shown}{f', +{more} more' if more > 0 else ''}]"


# -- compare -------------------------------------------------------------------------------------


def evaluate_compare(
    check: CompareCheck,
    *,
    target: str,
    candidate: dict[str, float] | None,
    champion_version: str | None,
    champion: dict[str, float] | None,
) -> CheckResult:
    """The candidate's run metrics against the champion's, the version now at `target`.

    `candidate` / `champion`: the run metrics of each (None: that version has no run);
    `champion_version` None: nothing is at the target, so there is nothing to beat.
    `beat` must be strictly better; `not_worse` may be worse by at most `tolerance` (absolute,
    inclusive). Either value NaN fails: NaN is neither better nor worse than anything."""
    name = check.metric
    evidence: dict[str, object] = {
        "metric": name,
        "mode": check.mode,
        "higher_is_better": check.higher_is_better,
        "tolerance": check.tolerance,
        "target": target,
        "champion_version": champion_version,
    }
    if champion_version is None:
        if candidate is not None and name in candidate:
            evidence["candidate"] = candidate[name]
        return _result(
            check, CheckStatus.PASSED, f"no champion at {target}; nothing to compare", evidence
        )
    champion_label = f"champion version {champion_version} at {target}"
    problem = _missing_metric(
        candidate,
        name,
        no_run=f"the candidate version has no run, so it has no metric {name!r}",
        run="the candidate's run",
    )
    if problem or candidate is None:
        return _result(check, CheckStatus.FAILED, problem or "", evidence)
    value = candidate[name]
    evidence["candidate"] = value
    problem = _missing_metric(
        champion,
        name,
        no_run=f"the {champion_label} has no run, so it has no metric {name!r} to compare with",
        run=f"the run of the {champion_label}",
    )
    if problem or champion is None:
        return _result(check, CheckStatus.FAILED, problem or "", evidence)
    best = champion[name]
    evidence["champion"] = best
    if math.isnan(value) or math.isnan(best):
        which = "the candidate's" if math.isnan(value) else "the champion's"
        return _result(
            check,
            CheckStatus.FAILED,
            f"{which} {name} is NaN, which compares with nothing",
            evidence,
        )
    # How much better the candidate is, in the direction the metric improves.
    gain = value - best if check.higher_is_better else best - value
    evidence["improvement"] = gain
    direction = "higher" if check.higher_is_better else "lower"
    versus = f"{name} {value} vs {best} of the {champion_label} ({direction} is better)"
    if check.mode == "beat":
        if gain > 0:
            return _result(check, CheckStatus.PASSED, f"beats: {versus}", evidence)
        return _result(check, CheckStatus.FAILED, f"does not beat the champion: {versus}", evidence)
    within = gain >= -check.tolerance or math.isclose(
        gain, -check.tolerance, rel_tol=1e-9, abs_tol=1e-12
    )
    if within:
        margin = "" if gain >= 0 else f", worse by {-gain:.6g} within tolerance {check.tolerance:g}"
        return _result(check, CheckStatus.PASSED, f"not worse: {versus}{margin}", evidence)
    return _result(
        check,
        CheckStatus.FAILED,
        f"worse than the champion by {-gain:.6g}, more than the tolerance {check.tolerance:g}: "
        f"{versus}",
        evidence,
    )


# -- http ----------------------------------------------------------------------------------------


def http_status_is_retryable(status: int) -> bool:
    """Answers that say "not now" rather than "no": 5xx, 408 Request Timeout, 429 Too Many
    Requests. The activity raises on these so Temporal retries with backoff."""
    return status >= 500 or status in (408, 429)


def evaluate_http(
    check: HttpCheck, status: int, body: bytes, *, location: str | None = None
) -> CheckResult:
    """Judge a final answer of a check's URL: 2xx with `{"passed": bool, "details": ...}`
    decides; any other 2xx body, a redirect or a 4xx fails. `location`: a redirect's target."""
    evidence: dict[str, object] = {"url": check.url, "status": status}
    label = f"POST {check.url}"
    if 300 <= status < 400:
        evidence["location"] = location
        return _result(
            check,
            CheckStatus.FAILED,
            f"{label} answered HTTP {status} (a redirect to {location or 'nowhere'}); "
            "point the check at the final URL",
            evidence,
        )
    if not 200 <= status < 300:
        excerpt = _excerpt(body)
        evidence["body"] = excerpt
        said = f": {excerpt[:200]}" if excerpt else ""
        return _result(check, CheckStatus.FAILED, f"{label} answered HTTP {status}{said}", evidence)
    try:
        answer = json.loads(body)
    except ValueError:
        evidence["body"] = _excerpt(body)
        return _result(
            check,
            CheckStatus.FAILED,
            f"{label} answered HTTP {status} with a body that is not JSON; expected "
            '{"passed": true|false, "details": ...}',
            evidence,
        )
    if not isinstance(answer, dict) or not isinstance(answer.get("passed"), bool):
        evidence["body"] = _excerpt(body)
        got = (
            f"'passed' is {json.dumps(answer['passed'])}"
            if isinstance(answer, dict) and "passed" in answer
            else "no 'passed'"
            if isinstance(answer, dict)
            else f"a JSON {type(answer).__name__}"
        )
        return _result(
            check,
            CheckStatus.FAILED,
            f"{label} answered HTTP {status} with {got}; expected "
            '{"passed": true|false, "details": ...} with a boolean "passed"',
            evidence,
        )
    details = _bounded(answer.get("details"))
    evidence["details"] = details
    passed = answer["passed"]
    verdict = "passed" if passed else "failed"
    summary = f"{check.name or check.url} {verdict}"
    if isinstance(details, str) and details:
        summary += f": {details[:200]}"
    return _result(check, CheckStatus.PASSED if passed else CheckStatus.FAILED, summary, evidence)


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    return text if len(text) <= EVIDENCE_TEXT_LIMIT else text[:EVIDENCE_TEXT_LIMIT] + "…"


def _bounded(value: object) -> object:
    """`value` itself if small, else its JSON text cut to the evidence limit."""
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= EVIDENCE_TEXT_LIMIT:
        return value
    return text[:EVIDENCE_TEXT_LIMIT] + "…"


def _result(
    check: Check, status: CheckStatus, summary: str, evidence: dict[str, object]
) -> CheckResult:
    return CheckResult(
        check_id=check.check_id, type=check.type, status=status, summary=summary, evidence=evidence
    )


def _missing_metric(
    metrics: dict[str, float] | None, name: str, *, no_run: str, run: str
) -> str | None:
    """Why `name` cannot be read from one side of a comparison, or None when it can."""
    if metrics is None:
        return no_run
    if name not in metrics:
        logged = ", ".join(sorted(metrics)) or "none"
        return f"metric {name!r} is not logged on {run} (logged: {logged})"
    return None
