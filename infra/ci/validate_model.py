#!/usr/bin/env python3
"""Validate an MLflow model version before Signoff lets it move: a CI job's validation step.

Reads the version and its run through MLflow's REST API (`MLFLOW_TRACKING_URI`, with
`MLFLOW_TRACKING_TOKEN` or `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` when your
server needs them) and checks:

- the version exists and is READY, and has a run that FINISHED;
- every `--min METRIC=VALUE` / `--max METRIC=VALUE` bound on the run's metrics;
- every `--require-tag KEY` (present) or `--require-tag KEY=VALUE` (equal) on the version.

Prints one line per finding, writes a one-line summary to `--summary-file` (for the callback
step) and a table to `$GITHUB_STEP_SUMMARY` when set. Exit status: 0 passed, 1 a check failed,
2 the version could not be validated (not found, MLflow unreachable, bad arguments).

Standard library only, so any runner with Python 3.9+ can run it without installing anything.

    python infra/ci/validate_model.py fraud-detector 7 --min auc=0.80 --max latency_ms=50 \\
        --require-tag validated_by --summary-file summary.txt
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PASSED, FAILED, ERROR = 0, 1, 2


class ValidationError(Exception):
    """The version could not be validated at all (exit 2)."""


def _bound(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not METRIC=NUMBER") from None


def _tag(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    if not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY or KEY=VALUE")
    return key.strip(), value if sep else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="registered model name")
    parser.add_argument("version", help="model version")
    parser.add_argument(
        "--min", type=_bound, action="append", default=[], metavar="METRIC=VALUE",
        help="the run's METRIC must be at least VALUE (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--max", type=_bound, action="append", default=[], metavar="METRIC=VALUE",
        help="the run's METRIC must be at most VALUE (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--require-tag", type=_tag, action="append", default=[], metavar="KEY[=VALUE]",
        help="the version must carry tag KEY (with VALUE, if given) (repeatable)",
    )  # fmt: skip
    parser.add_argument("--summary-file", help="write a one-line summary here")
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow server URL (default: $MLFLOW_TRACKING_URI)",
    )
    return parser.parse_args(argv)


class Mlflow:
    def __init__(self, uri: str | None) -> None:
        if not uri or not uri.startswith(("http://", "https://")):
            raise ValidationError(
                f"MLFLOW_TRACKING_URI must be the http(s) URL of an MLflow server, got {uri!r}"
            )
        self.uri = uri.rstrip("/")
        self.headers = {"Accept": "application/json"}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user:
            pair = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    def get(self, path: str, **params: str) -> dict[str, Any]:
        url = f"{self.uri}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers=self.headers)  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as err:
            try:
                body = json.load(err)
            except ValueError:
                body = {}
            if body.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
                raise LookupError(body.get("message", path)) from None
            raise ValidationError(
                f"MLflow answered {err.code} to {path}: {body.get('message', err.reason)}"
            ) from None
        except (urllib.error.URLError, OSError) as err:
            raise ValidationError(f"cannot reach MLflow at {self.uri}: {err}") from None


def validate(args: argparse.Namespace) -> tuple[bool, list[str]]:
    """(passed, findings). Raises ValidationError when it cannot tell."""
    mlflow = Mlflow(args.tracking_uri)
    try:
        version = mlflow.get("model-versions/get", name=args.model, version=args.version)[
            "model_version"
        ]
    except LookupError:
        raise ValidationError(
            f"{args.model} version {args.version} does not exist in MLflow at {mlflow.uri}"
        ) from None
    findings: list[str] = []
    failed = False

    def note(ok: bool, text: str) -> None:
        nonlocal failed
        failed = failed or not ok
        findings.append(("ok    " if ok else "FAIL  ") + text)

    status = version.get("status", "READY")
    note(status == "READY", f"version status {status}")

    tags = {t["key"]: t.get("value", "") for t in version.get("tags", [])}
    for key, wanted in args.require_tag:
        if key not in tags:
            note(False, f"tag {key} is missing")
        elif wanted is not None and tags[key] != wanted:
            note(False, f"tag {key} is {tags[key]!r}, not {wanted!r}")
        else:
            note(True, f"tag {key} = {tags[key]!r}")

    bounds = [(name, ">=", v) for name, v in args.min] + [(name, "<=", v) for name, v in args.max]
    run_id = version.get("run_id")
    if not run_id:
        note(not bounds, "the version has no run" + (", so no metrics" if bounds else ""))
        return not failed, findings
    try:
        run = mlflow.get("runs/get", run_id=run_id)["run"]
    except LookupError:
        note(False, f"run {run_id} of the version does not exist")
        return False, findings
    run_status = run["info"].get("status")
    note(run_status == "FINISHED", f"run {run_id} status {run_status}")
    metrics = {m["key"]: float(m["value"]) for m in run.get("data", {}).get("metrics", [])}
    for name, op, limit in bounds:
        if name not in metrics:
            note(False, f"metric {name} is missing from run {run_id}")
            continue
        value = metrics[name]
        ok = value >= limit if op == ">=" else value <= limit
        note(ok, f"{name} {value:g} {op if ok else ('<' if op == '>=' else '>')} {limit:g}")
    return not failed, findings


def _summary(passed: bool, findings: list[str], args: argparse.Namespace) -> str:
    failures = [f[6:] for f in findings if f.startswith("FAIL")]
    checked = [f[6:] for f in findings if f.startswith("ok")]
    head = f"{args.model} v{args.version}: "
    if passed:
        return head + "passed (" + "; ".join(checked) + ")"
    return head + "failed (" + "; ".join(failures) + ")"


def _write_outputs(summary: str, findings: list[str], args: argparse.Namespace) -> None:
    if args.summary_file:
        with open(args.summary_file, "w", encoding="utf-8") as out:
            out.write(summary + "\n")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as out:
            out.write(f"### Signoff validation of {args.model} v{args.version}\n\n")
            out.write("| result | finding |\n| --- | --- |\n")
            for finding in findings:
                out.write(f"| {finding[:6].strip()} | {finding[6:]} |\n")
            out.write(f"\n{summary}\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        passed, findings = validate(args)
    except ValidationError as err:
        summary = f"{args.model} v{args.version}: could not validate: {err}"
        print(summary, file=sys.stderr)
        _write_outputs(summary, [f"FAIL  {err}"], args)
        return ERROR
    for finding in findings:
        print(finding)
    summary = _summary(passed, findings, args)
    print(summary)
    _write_outputs(summary, findings, args)
    return PASSED if passed else FAILED


if __name__ == "__main__":
    sys.exit(main())
