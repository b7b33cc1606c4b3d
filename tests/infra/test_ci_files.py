"""The CI files in infra/ci/: their contract with Signoff, and their scripts run for real.

The GitHub workflow's and the composite action's shell steps are executed with bash after
evaluating their `${{ ... }}` expressions from a table (an expression missing from the table
fails the test: the file changed, look again), against loopback servers standing in for the
Signoff API and GitHub's OIDC token endpoint, and a real MLflow server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.actions_oidc import REQUEST_TOKEN, actions_endpoint, actions_env
from tests.support.ci_callback import CALLBACK_BODY_KEYS, Recorder
from tests.support.jenkins import SIGNOFF_PARAMETERS
from tests.support.loopback import api_server
from tests.support.mlflow import MlflowServer

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "infra" / "ci"
WORKFLOW = CI / "github" / "validate-model.yml"
ACTION = CI / "github" / "request-promotion" / "action.yml"
JENKINSFILE = CI / "jenkins" / "Jenkinsfile"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def workflow_steps() -> list[dict[str, Any]]:
    (job,) = load(WORKFLOW)["jobs"].values()
    return job["steps"]


def step(steps: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(s for s in steps if s.get("name") == name or s.get("id") == name)


EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(text: str, table: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression not in table:
            raise AssertionError(f"unexpected expression ${{{{ {expression} }}}} in {text!r}")
        return table[expression]

    return EXPRESSION.sub(one, str(text))


def run_step(
    spec: dict[str, Any], table: dict[str, str], env: dict[str, str], cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run a `run:` step the way the runner does: bash -e, its env evaluated, in `cwd`."""
    step_env = {name: evaluate(value, table) for name, value in (spec.get("env") or {}).items()}
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "ACTIONS_", "MLFLOW_"))
    }
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    return subprocess.run(
        [shutil.which("bash") or "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
         evaluate(spec["run"], table)],
        env=base | env | step_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


# ============================================================================================
# GitHub Actions: the validation workflow
# ============================================================================================


def test_validation_workflow_contract() -> None:
    workflow = load(WORKFLOW)
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    inputs = on["workflow_dispatch"]["inputs"]
    assert {"model", "version", "target", "request_id", "callback_url", "callback_token"} <= set(
        inputs
    )
    for name in ("model", "version", "target", "request_id"):
        assert inputs[name]["required"] is True, name
    for name in set(inputs) - {"model", "version", "target", "request_id"}:
        # Signoff may leave them out; GitHub refuses a dispatch missing a required input.
        assert inputs[name]["required"] is False and inputs[name]["default"] == "", name
    assert len(inputs) <= 10  # GitHub's historical workflow_dispatch limit
    assert "${{ inputs.request_id }}" in workflow["run-name"]
    assert workflow["permissions"]["id-token"] == "write"

    steps = workflow_steps()
    callback = steps[-1]
    assert callback["if"] == "always()"
    assert "infra/ci/ci_callback.py" in callback["run"]
    assert callback["env"]["DETAILS_URL"] == (
        "${{ github.server_url }}/${{ github.repository }}/actions/runs/${{ github.run_id }}"
    )
    assert callback["env"]["CALLBACK_TOKEN"] == "${{ inputs.callback_token }}"
    assert callback["env"]["PASSED"] == "${{ steps.validate.outcome == 'success' }}"
    validate = step(steps, "validate")
    assert "infra/ci/validate_model.py" in validate["run"]
    # No input is pasted into a script (script injection): inputs reach steps through env.
    for each in steps:
        assert "inputs." not in each.get("run", ""), each


RUNNER_ENV = {
    "GITHUB_REPOSITORY": "acme/models",
    "GITHUB_WORKFLOW_REF": "acme/models/.github/workflows/validate-model.yml@refs/heads/main",
}
"""What the runner sets in every step of a run of the validation workflow in acme/models."""


def run_workflow_step(
    spec: dict[str, Any], table: dict[str, str], tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """A step of the validation workflow, with the job's env and the runner's variables."""
    (job,) = load(WORKFLOW)["jobs"].values()
    job_env = {name: evaluate(value, table) for name, value in (job.get("env") or {}).items()}
    return run_step(spec, table, RUNNER_ENV | {"RUNNER_TEMP": str(tmp_path)} | job_env | env)


def github_table(**overrides: str) -> dict[str, str]:
    return {
        "inputs.model": "fraud-detector",
        "inputs.version": "7",
        "inputs.target": "Production",
        "inputs.request_id": "req-42",
        "inputs.callback_url": "",
        "inputs.callback_token": "",
        "inputs.check": "",
        "steps.validate.outcome == 'success'": "true",
        "github.server_url": "https://github.com",
        "github.repository": "acme/models",
        "github.run_id": "987654",
        "vars.SIGNOFF_OIDC_AUDIENCE || 'signoff'": "signoff",
        "vars.SIGNOFF_VALIDATION_ARGS || '--min auc=0.80'": "--min auc=0.80",
        "vars.MLFLOW_TRACKING_URI": "",
        "secrets.MLFLOW_TRACKING_TOKEN": "",
    } | overrides


def test_callback_step_with_the_callback_token(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "signoff-summary.txt").write_text("fraud-detector v7: passed (auc 0.91 >= 0.8)\n")
    table = github_table(
        **{
            "inputs.callback_url": recorder.url,
            "inputs.callback_token": "cb-one-time",
            "inputs.check": "github_actions:acme/models/validate-model.yml",
        }
    )
    result = run_workflow_step(workflow_steps()[-1], table, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cb-one-time" not in result.stdout + result.stderr
    ((headers, body),) = recorder.received
    assert body == {
        "request_id": "req-42",
        "check": "github_actions:acme/models/validate-model.yml",
        "passed": True,
        "details_url": "https://github.com/acme/models/actions/runs/987654",
        "summary": "fraud-detector v7: passed (auc 0.91 >= 0.8)",
        "callback_token": "cb-one-time",
    }
    assert set(body) == CALLBACK_BODY_KEYS
    assert "authorization" not in headers
    assert headers["content-type"] == "application/json"


def test_callback_step_falls_back_to_the_jobs_oidc_token(
    recorder: Recorder, tmp_path: Path
) -> None:
    table = github_table(
        **{
            "inputs.callback_url": recorder.url,
            "steps.validate.outcome == 'success'": "false",
            "vars.SIGNOFF_OIDC_AUDIENCE || 'signoff'": "https://signoff.example.com",
        }
    )
    with actions_endpoint() as endpoint:  # no summary file: validation never wrote one
        result = run_workflow_step(workflow_steps()[-1], table, tmp_path, **actions_env(endpoint))
    assert result.returncode == 0, result.stderr
    (asked,) = endpoint.seen
    assert asked.authorization == f"Bearer {REQUEST_TOKEN}"
    assert asked.query["audience"] == "https://signoff.example.com"
    ((headers, body),) = recorder.received
    assert headers["authorization"].startswith("Bearer ey")
    assert f"::add-mask::{headers['authorization'][7:]}" in result.stdout
    assert body == {
        "request_id": "req-42",
        "check": "github_actions:acme/models/validate-model.yml",  # what Signoff names it
        "passed": False,
        "details_url": "https://github.com/acme/models/actions/runs/987654",
    }


def test_callback_step_of_a_run_by_hand_reports_nothing(tmp_path: Path) -> None:
    result = run_workflow_step(workflow_steps()[-1], github_table(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nothing to report" in result.stdout


def test_callback_refused_fails_the_step(tmp_path: Path) -> None:
    refusing = Recorder(status=409)
    try:
        table = github_table(
            **{"inputs.callback_url": refusing.url, "inputs.callback_token": "used-already"}
        )
        result = run_workflow_step(workflow_steps()[-1], table, tmp_path)
    finally:
        refusing.close()
    assert result.returncode == 1
    assert "Signoff refused the callback (409)" in result.stderr


def test_validate_step_against_mlflow(
    mlflow_server: MlflowServer, make_version: Any, tmp_path: Path
) -> None:
    spec = step(workflow_steps(), "validate")
    for auc, code, said in ((0.91, 0, "passed (version status READY"), (0.7, 1, "failed")):
        version = make_version(metrics={"auc": auc})
        table = github_table(
            **{
                "inputs.model": version.name,
                "inputs.version": version.version,
                "vars.MLFLOW_TRACKING_URI": mlflow_server.url,
            }
        )
        result = run_workflow_step(spec, table, tmp_path)
        assert result.returncode == code, (result.stdout, result.stderr)
        summary = (tmp_path / "signoff-summary.txt").read_text()
        assert summary.startswith(f"{version.name} v{version.version}: {said}")
        assert f"auc {auc:g}" in summary


# ============================================================================================
# infra/ci/validate_model.py on its own
# ============================================================================================


def validate_model(mlflow_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = mlflow_url
    env["GITHUB_STEP_SUMMARY"] = str(cwd / "step-summary.md")
    return subprocess.run(
        [sys.executable, str(CI / "validate_model.py"), *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_validate_model_checks_bounds_and_tags(
    mlflow_server: MlflowServer, make_version: Any, tmp_path: Path
) -> None:
    good = make_version(metrics={"auc": 0.93, "latency_ms": 31}, tags={"validated_by": "qa"})
    checks = ["--min", "auc=0.9", "--max", "latency_ms=50", "--require-tag", "validated_by=qa"]
    result = validate_model(mlflow_server.url, good.name, good.version, *checks, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "ok    auc 0.93 >= 0.9" in result.stdout
    assert "ok    latency_ms 31 <= 50" in result.stdout
    assert "| ok | tag validated_by = 'qa' |" in (tmp_path / "step-summary.md").read_text()

    bad = make_version(metrics={"auc": 0.95, "latency_ms": 80}, tags={"validated_by": "me"})
    result = validate_model(
        mlflow_server.url, bad.name, bad.version, *checks, "--min", "f1=0.5",
        "--summary-file", "s.txt", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    summary = (tmp_path / "s.txt").read_text().strip()
    assert summary == (
        f"{bad.name} v{bad.version}: failed (tag validated_by is 'me', not 'qa'; metric f1 is "
        f"missing from run {bad.run_id}; latency_ms 80 > 50)"
    )


def test_validate_model_cannot_validate_what_is_not_there(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    result = validate_model(
        mlflow_server.url, "no-such-model", "1", "--summary-file", "s.txt", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "no-such-model version 1 does not exist in MLflow" in result.stderr
    assert "could not validate" in (tmp_path / "s.txt").read_text()
    unreachable = validate_model("http://127.0.0.1:9", "m", "1", cwd=tmp_path)
    assert unreachable.returncode == 2 and "cannot reach MLflow" in unreachable.stderr


# ============================================================================================
# GitHub Actions: the composite action that requests and waits
# ============================================================================================


def test_request_promotion_action_contract() -> None:
    action = load(ACTION)
    assert {"api-url", "model", "version", "target"} <= set(action["inputs"])
    assert action["runs"]["using"] == "composite"
    for each in action["runs"]["steps"]:
        if "run" in each:
            assert each["shell"] == "bash", each  # composite run steps must name their shell
    request = step(action["runs"]["steps"], "request")
    assert re.search(r"signoff \"\$\{args\[@\]\}\"", request["run"])
    assert 'args=(request "$MODEL" "$VERSION" "$TARGET" --wait' in request["run"]
    assert request["env"]["SIGNOFF_API_URL"] == "${{ inputs.api-url }}"
    assert request["env"]["SIGNOFF_OIDC_AUDIENCE"] == "${{ inputs.audience }}"
    assert action["outputs"]["exit-code"]["value"] == "${{ steps.request.outputs.exit-code }}"


@pytest.mark.parametrize(("final", "code"), [("APPLIED", 0), ("REJECTED", 2)])
def test_request_promotion_step_waits_with_the_jobs_oidc_token(
    tmp_path: Path, final: str, code: int
) -> None:
    request = step(load(ACTION)["runs"]["steps"], "request")
    output = tmp_path / "github-output"
    with api_server(final) as api, actions_endpoint() as endpoint:
        table = {
            "inputs.api-url": api.url,
            "inputs.token": "",
            "inputs.audience": "signoff",
            "inputs.model": "fraud-detector",
            "inputs.version": "7",
            "inputs.target": "Production",
            "inputs.comment": "",
            "inputs.timeout": "30",
        }
        runner = {
            "GITHUB_OUTPUT": str(output),
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/models",
            "GITHUB_RUN_ID": "1",
        }
        result = run_step(request, table, runner | actions_env(endpoint), cwd=tmp_path)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert output.read_text() == f"exit-code={code}\n"
    assert f"{final}" in result.stdout
    assert endpoint.seen and all(s.authorization.startswith("Bearer ey") for s in api.seen)


# ============================================================================================
# Jenkins
# ============================================================================================


def jenkinsfile_parameters(text: str) -> dict[str, str]:
    return {
        name: "password" if kind == "password" else "string"
        for kind, name in re.findall(r"\b(string|password)\(name: '([^']+)'", text)
    }


def test_jenkinsfile_contract() -> None:
    text = JENKINSFILE.read_text()
    parameters = jenkinsfile_parameters(text)
    # Exactly what the Jenkins client sends (Jenkins drops parameters a job does not define).
    for name, kind in SIGNOFF_PARAMETERS.items():
        assert parameters.get(name) == kind, name
    assert "password(name: 'callback_token'" in text

    post = text[text.index("post {") :]
    assert "always {" in post and "infra/ci/ci_callback.py" in post
    for option in ('--url "$callback_url"', '--request-id "$request_id"', '--check "$check"',
                   '--passed "$PASSED"', '--details-url "$BUILD_URL"',
                   "--token-env callback_token"):  # fmt: skip
        assert option in post, option
    # The secret never appears in a command line or a Groovy string.
    assert "$callback_token" not in text and "params.callback_token" not in text
    assert "infra/ci/validate_model.py" in text

    assert (
        "withCredentials([string(credentialsId: 'signoff-token', variable: 'SIGNOFF_TOKEN')])"
        in text
    )
    assert re.search(r"signoff request \"\$model\" \"\$version\" \"\$promote_to\" --wait", text)


def test_jenkins_callback_command_sends_the_documented_body(
    recorder: Recorder, tmp_path: Path
) -> None:
    """The Jenkinsfile's callback line, run by sh with Jenkins' environment."""
    text = JENKINSFILE.read_text()
    command = re.search(r"sh '(python3 infra/ci/ci_callback\.py[^']*)'", text)
    assert command is not None
    (tmp_path / "signoff-summary.txt").write_text("m v1: failed (auc 0.7 < 0.8)")
    (tmp_path / "infra").symlink_to(ROOT / "infra")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "ACTIONS_"))}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        # Jenkins exports build parameters (a password one included) as environment variables.
        "model": "m", "version": "1", "target": "Production", "request_id": "req-7",
        "check": "", "callback_url": recorder.url, "callback_token": "jk-one-time",
        "PASSED": "false", "BUILD_URL": "https://jenkins.example.com/job/ml/job/validate/12/",
        "JOB_NAME": "ml/validate",
    }  # fmt: skip
    result = subprocess.run(
        ["sh", "-xe", "-c", command.group(1)],  # Jenkins' sh step traces with -xe
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "jk-one-time" not in result.stdout + result.stderr
    ((_, body),) = recorder.received
    assert body == {
        "request_id": "req-7",
        "check": "jenkins:ml/validate",
        "passed": False,
        "details_url": "https://jenkins.example.com/job/ml/job/validate/12/",
        "summary": "m v1: failed (auc 0.7 < 0.8)",
        "callback_token": "jk-one-time",
    }
