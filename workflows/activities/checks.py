"""The `run_check` activity: one validation check (tag, metric, signature, compare, http)
against the version as MLflow shows it now. The verdicts are the pure functions of
`workflows.checks`; this module does their I/O. Safe to run twice."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from policies import (
    CompareCheck,
    HttpCheck,
    MetricCheck,
    SignatureCheck,
    TagCheck,
    is_alias,
)
from workflows.checks import (
    evaluate_compare,
    evaluate_http,
    evaluate_metric,
    evaluate_signature,
    evaluate_tag,
    http_status_is_retryable,
)
from workflows.domain import CheckResult, CheckStatus
from workflows.errors import HTTP_CHECK_UNAVAILABLE
from workflows.messages import CheckInput
from workflows.mlflow_client import (
    InvalidRequest,
    MlflowRegistry,
    ModelVersion,
    ResourceNotFound,
)
from workflows.tls import verifying_context


class CheckActivities:
    def __init__(self, registry: MlflowRegistry) -> None:
        self.registry = registry

    @activity.defn
    async def run_check(self, inp: CheckInput) -> CheckResult:
        check = inp.check
        try:
            version = await self.registry.get_model_version(inp.model, inp.version)
            if isinstance(check, TagCheck):
                return evaluate_tag(check, version.tags)
            if isinstance(check, MetricCheck):
                if not version.run_id:
                    return CheckResult(
                        check_id=check.check_id,
                        type=check.type,
                        status=CheckStatus.FAILED,
                        summary="the version has no run, so it has no metrics",
                    )
                return evaluate_metric(check, await self.registry.get_run_metrics(version.run_id))
            if isinstance(check, SignatureCheck):
                return await self._check_signature(check, version)
            if isinstance(check, CompareCheck):
                return await self._check_compare(check, inp, version)
            if isinstance(check, HttpCheck):
                return await _check_http(check, inp, version)
        except ResourceNotFound as err:
            return CheckResult(
                check_id=check.check_id,
                type=check.type,
                status=CheckStatus.FAILED,
                summary=f"not found in MLflow: {err.message}",
            )
        raise ApplicationError(f"unknown check type {check.type!r}", non_retryable=True)

    async def _check_signature(self, check: SignatureCheck, version: ModelVersion) -> CheckResult:
        """Read the MLmodel at the root of the version's model through the tracking server,
        which resolves the version's source (`runs:/…`, `models:/m-…`, a store URI) itself."""
        registry = self.registry
        artifact_uri = await registry.get_model_version_download_uri(version.name, version.version)
        location: dict[str, Any] = {
            "source": version.source,
            "artifact_uri": artifact_uri or None,
            "url": registry.model_version_artifact_url(version.name, version.version, "MLmodel"),
        }
        mlmodel: bytes | None
        try:
            mlmodel = await registry.get_model_version_artifact(
                version.name, version.version, "MLmodel"
            )
        except ResourceNotFound:
            mlmodel = None  # the version exists (read just before), so the file does not
        except InvalidRequest as err:
            return CheckResult(
                check_id=check.check_id,
                type=check.type,
                status=CheckStatus.FAILED,
                summary=f"MLflow refused to serve the version's MLmodel: {err.message}",
                evidence=location,
            )
        return evaluate_signature(check, mlmodel, location)

    async def _check_compare(
        self, check: CompareCheck, inp: CheckInput, version: ModelVersion
    ) -> CheckResult:
        champion = await self._champion(inp.model, inp.target, exclude=version.version)
        candidate_metrics = (
            await self.registry.get_run_metrics(version.run_id) if version.run_id else None
        )
        champion_metrics = None
        if champion is not None and champion.run_id:
            champion_metrics = await self.registry.get_run_metrics(champion.run_id)
        result = evaluate_compare(
            check,
            target=inp.target,
            candidate=candidate_metrics,
            champion_version=champion.version if champion else None,
            champion=champion_metrics,
        )
        result.evidence["candidate_version"] = version.version
        return result

    async def _champion(self, model: str, target: str, *, exclude: str) -> ModelVersion | None:
        """The version now at `target` (a stage: the newest version in it; an alias: the
        version it points at), unless that is the candidate itself."""
        if is_alias(target):
            try:
                found = await self.registry.get_model_version_by_alias(model, target)
            except ResourceNotFound:
                return None
        else:
            at_stage = await self.registry.get_latest_versions(model, [target])
            found = next((v for v in at_stage if v.current_stage == target), None)
        if found is None or found.version == exclude:
            return None
        return found


_HTTP_CHECK_MAX_WAIT = 300.0
"""Seconds an http check waits for one answer outside an activity (tests, tools)."""


async def _check_http(check: HttpCheck, inp: CheckInput, version: ModelVersion) -> CheckResult:
    """POST the request's context to the check's URL. A final answer (2xx, 3xx, 4xx) is judged
    by `evaluate_http`; no answer, 5xx, 408 or 429 raise, so Temporal retries the activity."""
    payload = {
        "request_id": inp.request_id,
        "model": inp.model,
        "version": inp.version,
        "target": inp.target,
        "check": check.check_id,
        "from_stage": version.current_stage,
        "run_id": version.run_id,
    }
    headers = {"User-Agent": "signoff", "Accept": "application/json", **check.headers}
    wait = _http_wait(check)
    timeout = httpx.Timeout(wait, connect=min(wait, 10.0))
    where = f"POST {check.url}"
    try:
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, verify=verifying_context()
        ) as client:
            response = await client.post(check.url, json=payload, headers=headers)
    except httpx.TimeoutException as err:
        raise ApplicationError(
            f"{where} gave no answer within {wait:g} s ({type(err).__name__})",
            type=HTTP_CHECK_UNAVAILABLE,
        ) from err
    except httpx.TransportError as err:
        what = "could not connect" if isinstance(err, httpx.ConnectError) else "failed"
        raise ApplicationError(
            f"{where} {what} ({type(err).__name__}: {err})",
            type=HTTP_CHECK_UNAVAILABLE,
        ) from err
    status = response.status_code
    if http_status_is_retryable(status):
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        raise ApplicationError(
            f"{where} answered HTTP {status}: {text}", status, type=HTTP_CHECK_UNAVAILABLE
        )
    result = evaluate_http(
        check, status, response.content, location=response.headers.get("location")
    )
    if activity.in_activity():
        result.evidence["attempt"] = activity.info().attempt
    return result


def _http_wait(check: HttpCheck) -> float:
    """Seconds to wait for one answer: just under the attempt's own timeout, so a slow server
    ends as a clear retryable error rather than an attempt Temporal times out silently."""
    limit = min(check.timeout.total_seconds(), _HTTP_CHECK_MAX_WAIT)
    if activity.in_activity():
        attempt = activity.info().start_to_close_timeout
        if attempt is not None:
            limit = min(limit, attempt.total_seconds())
    return max(1.0, limit - 1.0) if limit > 2.0 else limit
