"""The `signoff` command as users and CI steps run it: a real subprocess against the stack."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.support.mlflow import MlflowServer, SeededVersion, mlflow_version, stage_in_mlflow
from tests.support.polling import wait_until
from tests.support.stack import SignoffStack, launch_stack
from tests.support.temporal import TemporalServer
from tests.support.tokens import mint_token

GATING_POLICY = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
transitions:
  - models: ["checked-*"]
    to: Production
    checks:
      - {type: metric, name: auc, min: 0.9}
    approvals: {quorum: 1, roles: [ml-lead]}
  - models: ["short-*"]
    to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
    expires_after: 3s
  - models: ["*"]
    to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
"""
FROZEN_RULE = """\
  - models: ["*"]
    to: "@release"
    approvals: {{quorum: 1, roles: [ml-lead]}}
    freezes: [{{from: {start}, to: {end}, reason: "release freeze"}}]
"""
"""The gating stack's `@release`: frozen from yesterday to ten days on (UTC), so an approved
request is SCHEDULED, to apply at midnight UTC eleven days from now."""


def frozen_rule() -> str:
    today = datetime.now(UTC).date()
    return FROZEN_RULE.format(start=today - timedelta(days=1), end=today + timedelta(days=10))


def freeze_ends() -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=11)
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def signoff(
    stack: SignoffStack, *args: str, token: str | None = None, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    env = stack.env | {"SIGNOFF_API_URL": stack.api_url} | env_vars
    if token:
        env["SIGNOFF_TOKEN"] = token
    return run_signoff(env, *args)


def run_signoff(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


NOWHERE = "http://127.0.0.1:9"
"""An API URL where nothing listens."""


def signoff_alone(
    *args: str, api_url: str = NOWHERE, token: str | None = None, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    """`signoff` with no stack, as a CI job runs it: the API's URL, perhaps a token, and none
    of this machine's SIGNOFF_* variables. For what needs no API (or none that answers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "ACTIONS_ID_"))}
    env |= {"SIGNOFF_API_URL": api_url} | ({"SIGNOFF_TOKEN": token} if token else {}) | env_vars
    return run_signoff(env, *args)


def start_signoff(
    stack: SignoffStack, *args: str, token: str, **env_vars: str
) -> subprocess.Popen[str]:
    env = stack.env | {"SIGNOFF_API_URL": stack.api_url, "SIGNOFF_TOKEN": token} | env_vars
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_says(command: str, nth: int = 0) -> list[str]:
    """What the README's tour shows under the `nth` `command` (its `#   ` lines), parentheticals
    dropped."""
    text = README.read_text()
    tour = text[text.index("## A five-minute tour") : text.index("## Gating a pipeline")]
    lines = tour.splitlines()
    shown = []
    at = [i for i, line in enumerate(lines) if line == command]
    assert len(at) > nth, f"the README's tour has no {command!r} (#{nth})"
    for line in lines[at[nth] + 1 :]:
        if line.startswith("  |"):  # a command's continuation
            continue
        if not line.startswith("#   "):
            break
        if not line.startswith("#   ("):
            shown.append(line[4:])
    assert shown, f"the README shows no output for {command!r}"
    return shown


def assert_prints_what_the_readme_says(
    command: str, nth: int, result: subprocess.CompletedProcess[str], label: str
) -> None:
    """The last lines printed match the README's, with its `…` for ids and times."""
    expected = readme_says(command, nth)
    printed = [line.rstrip() for line in (result.stdout + result.stderr).splitlines()]
    got = printed[-len(expected) :]
    for want, line in zip(expected, got, strict=True):
        pattern = re.escape(want.rstrip()).replace("…", ".+?")
        pattern = pattern.replace(re.escape("fraud-detector v1"), re.escape(label))
        assert re.fullmatch(pattern, line), (want, line, printed)


def test_readme_tour_through_the_cli(signoff_stack: SignoffStack, make_version: Any) -> None:
    """Every CLI step of the README's tour, against the real stack, prints what the README
    shows (a fresh model stands in for fraud-detector v1)."""
    stack = signoff_stack
    version = make_version("fraud-" + uuid.uuid4().hex[:6], metrics={"auc": 0.91})
    label = f"{version.name} v{version.version}"
    tokens = {}
    for sub, role in (("lee", "ml-lead"), ("mia", "ml-lead"), ("rita", "risk-officer")):
        minted = signoff(stack, "token", "--sub", sub, "--role", role)
        assert minted.returncode == 0, minted.stderr
        assert minted.stderr == ""  # the policy has these roles: no warning
        tokens[sub] = minted.stdout.strip()
    steps: list[tuple[str, str, int]] = [
        ("LEE", "request fraud-detector 1 @champion --comment 'AUC 0.91 on holdout'", 0),
        ("LEE", "approve fraud-detector 1 @champion", 1),
        ("RITA", "approve fraud-detector 1 @champion --comment 'risk reviewed'", 0),
        ("RITA", "activities fraud-detector 1", 0),
        ("LEE", "request fraud-detector 1 Production --comment 'AUC 0.91 on holdout'", 0),
        ("MIA", "approve fraud-detector 1 Production", 0),
        ("RITA", "approve fraud-detector 1 Production --comment 'risk reviewed'", 0),
        ("RITA", "requests --all", 0),
        ("RITA", "activities fraud-detector 1", 0),
    ]
    seen: list[str] = []
    for who, args, code in steps:
        line = f"SIGNOFF_TOKEN=${who} signoff {args}".replace("'", '"')
        seen.append(line)
        argv = shlex.split(args.replace("fraud-detector 1", f"{version.name} {version.version}"))
        if argv[0] == "requests":
            argv.insert(1, version.name)
        result = signoff(stack, *argv, token=tokens[who.lower()])
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert_prints_what_the_readme_says(line, seen.count(line) - 1, result, label)
        if args.startswith("approve fraud-detector 1 @champion --"):
            assert alias_in_mlflow(stack.mlflow_url, version, "champion")
        if args.startswith("approve fraud-detector 1 Production"):
            expected = "Production" if who == "RITA" else "None"
            assert stage_in_mlflow(stack.mlflow_url, version) == expected


def alias_in_mlflow(mlflow_url: str, version: SeededVersion, alias: str) -> bool:
    answer = httpx.get(
        f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
        params={"name": version.name, "alias": alias},
    )
    return answer.status_code == 200 and answer.json()["model_version"]["version"] == str(
        version.version
    )


def test_client_commands_explain_what_to_do_without_a_token() -> None:
    result = signoff_alone("requests")
    assert result.returncode == 1
    assert "SIGNOFF_TOKEN" in result.stderr


def test_cli_reports_an_unreachable_api() -> None:
    result = signoff_alone("requests", token=mint_token("lee", "ml-lead"))
    assert result.returncode == 1
    assert "cannot reach the Signoff API" in result.stderr


def test_policy_check_reports_lines(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GATING_POLICY)
    assert signoff_alone("policy", "check", str(good)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "roles:\n"
        "  ml-lead: {'*': CAN_MANAGE_PRODUCTION_VERSIONS}\n"
        "transitions:\n"
        "  - to: Production\n"
        "    approvals: {quorum: -1, roles: [ml-lead]}\n"
    )
    result = signoff_alone("policy", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:5:" in result.stderr and "quorum" in result.stderr


# -- `request --wait` as a CI gate --------------------------------------------------------------


@pytest.fixture(scope="module")
def gating_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    root = tmp_path_factory.mktemp("gating")
    policy = root / "policy.yaml"
    policy.write_text(GATING_POLICY + frozen_rule())
    stack = launch_stack(
        root, temporal_server.address, mlflow_server.url, SIGNOFF_POLICY_FILE=str(policy)
    )
    try:
        yield stack
    finally:
        stack.stop()


def decide_when_open(stack: SignoffStack, action: str, version: SeededVersion) -> None:
    """Approve or reject as soon as the waiting CLI's request exists."""
    body = {"name": version.name, "version": version.version, "stage": "Production"}
    if action == "approve":
        body["archive_existing_versions"] = False
    else:
        body["comment"] = "the holdout is from last year"
    deadline = time.monotonic() + 30
    with stack.client("mia", "ml-lead") as mia:
        while time.monotonic() < deadline:
            response = mia.post(f"/api/2.0/mlflow/transition-requests/{action}", json=body)
            if response.status_code != 404:
                assert response.status_code == 200, response.text
                return
    raise AssertionError("the request never opened")


def cancel_when_open(stack: SignoffStack, version: SeededVersion) -> None:
    params = {
        "name": version.name,
        "version": version.version,
        "stage": "Production",
        "creator": "lee",
        "comment": "superseded by v2",
    }
    deadline = time.monotonic() + 30
    with stack.client("lee", "data-scientist") as lee:
        while time.monotonic() < deadline:
            response = lee.delete("/api/2.0/mlflow/transition-requests/delete", params=params)
            if response.status_code != 404:
                assert response.status_code == 200, response.text
                return
    raise AssertionError("the request never opened")


@pytest.mark.parametrize(
    ("prefix", "metrics", "act", "exit_code", "said"),
    [
        ("plain-", {"auc": 0.95}, "approve", 0, "APPLIED"),
        ("plain-", {"auc": 0.95}, "reject", 2, "rejected by mia: 'the holdout is from last year'"),
        ("checked-", {"auc": 0.7}, None, 3, "metric:auc"),
        ("short-", {"auc": 0.95}, None, 4, "no decision within"),
        ("plain-", {"auc": 0.95}, "cancel", 5, "cancelled by lee: 'superseded by v2'"),
    ],
    ids=["applied", "rejected", "failed-validation", "expired", "cancelled"],
)
def test_request_wait_exit_code(
    gating_stack: SignoffStack,
    make_version: Any,
    prefix: str,
    metrics: dict[str, float],
    act: str | None,
    exit_code: int,
    said: str,
) -> None:
    version = make_version(prefix + uuid.uuid4().hex[:6], metrics=metrics)
    waiting = start_signoff(
        gating_stack,
        "request", version.name, version.version, "Production", "--wait", "--timeout", "60",
        token=gating_stack.token("lee", "data-scientist"),
    )  # fmt: skip
    if act == "cancel":
        cancel_when_open(gating_stack, version)
    elif act:
        decide_when_open(gating_stack, act, version)
    stdout, stderr = waiting.communicate(timeout=90)
    assert waiting.returncode == exit_code, (stdout, stderr)
    assert said in stdout + stderr
    if act in ("reject", "cancel"):
        assert f"  {said}" in stdout.splitlines()  # on its own line, after the outcome
    expected_stage = "Production" if exit_code == 0 else "None"
    assert stage_in_mlflow(gating_stack.mlflow_url, version) == expected_stage


def open_request_of(stack: SignoffStack, version: SeededVersion) -> dict[str, Any]:
    with stack.client("mia", "ml-lead") as mia:

        def probe() -> dict[str, Any] | None:
            found = mia.get(
                "/api/2.0/signoff/transition-requests/search", params={"name": version.name}
            )
            assert found.status_code == 200, found.text
            return next(iter(found.json()["requests"]), None)

        return wait_until(probe, "the request to open")


def test_request_wait_on_a_frozen_target_exits_7_with_when_it_applies_and_cancel_withdraws_it(
    gating_stack: SignoffStack, make_version: Any
) -> None:
    version = make_version()
    tokyo = {"TZ": "Asia/Tokyo"}  # the apply time is printed on the machine's own clock
    lee, mia = gating_stack.token("lee", "data-scientist"), gating_stack.token("mia", "ml-lead")
    waiting = start_signoff(
        gating_stack, "request", version.name, version.version, "@release", "--wait",
        "--timeout", "60", token=lee, **tokyo,
    )  # fmt: skip
    open_request_of(gating_stack, version)
    approved = signoff(
        gating_stack, "approve", version.name, version.version, "@release", token=mia, **tokyo
    )
    stdout, stderr = waiting.communicate(timeout=90)

    local = freeze_ends().astimezone(ZoneInfo("Asia/Tokyo")).strftime("%a %Y-%m-%d %H:%M JST")
    applies = re.escape(f"applies at {local} (in ") + r"1[01] days\)"  # 10 to 11 days away
    assert approved.returncode == 0, approved.stderr
    assert re.match(
        f"approved; waiting for its change window: {applies} \\(request SCHEDULED: approved "
        "inside the freeze 'release freeze'",
        approved.stdout,
    ), approved.stdout
    assert waiting.returncode == 7, (stdout, stderr)
    lines = stdout.splitlines()
    assert any(
        re.fullmatch(f"  approved; waiting for its change window: {applies}", x) for x in lines
    )
    assert re.search(f"@release: SCHEDULED \\(approvals 1/1: mia\\); {applies}", stdout), stdout
    assert re.search(f"not applied yet: approved, {applies}, after --timeout", stderr), stderr
    assert "aliases" not in mlflow_version(gating_stack.mlflow_url, version)

    cancelled = signoff(
        gating_stack, "cancel", version.name, version.version, "@release", token=lee
    )
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled: {version.name} v{version.version} will not move to @release" in (
        cancelled.stdout
    )
    assert "aliases" not in mlflow_version(gating_stack.mlflow_url, version)


def test_the_wait_answers_once_approved_into_scheduled_and_then_waits_for_the_close(
    gating_stack: SignoffStack, make_version: Any
) -> None:
    version = make_version()
    target = {"name": version.name, "version": version.version, "stage": "@release"}
    answers: list[dict[str, Any]] = []
    with (
        gating_stack.client("lee", "data-scientist") as lee,
        gating_stack.client("mia", "ml-lead") as mia,
    ):
        created = lee.post("/api/2.0/mlflow/transition-requests/create", json=target)
        assert created.status_code == 200, created.text
        request_id = created.json()["request"]["id"]

        def wait(seen_state: str) -> threading.Thread:
            """Start a long-poll (300 s: far longer than the test runs, so its answer comes
            with the change) once its call is on the wire, from the state the caller saw."""
            sent = threading.Event()

            def run() -> None:
                with gating_stack.client("lee", "data-scientist") as waiter:
                    waiter.timeout = httpx.Timeout(120)
                    waiter.event_hooks["request"] = [lambda _: sent.set()]
                    answer = waiter.get(
                        "/api/2.0/signoff/transition-requests/wait",
                        params={"id": request_id, "timeout_s": 300, "seen_state": seen_state},
                    )
                    assert answer.status_code == 200, answer.text
                    answers.append(answer.json()["request"])

            thread = threading.Thread(target=run)
            thread.start()
            assert sent.wait(30)
            return thread

        # Whether the wait reads the request before or after the approval lands, it answers
        # with SCHEDULED: the caller said it saw PENDING.
        pending = wait("PENDING")
        approved = mia.post("/api/2.0/mlflow/transition-requests/approve", json=target)
        assert approved.status_code == 200, approved.text
        outcome = approved.json()["request"]
        assert outcome["state"] == "SCHEDULED"
        assert outcome["apply_at"] == int(freeze_ends().timestamp() * 1000)
        pending.join(timeout=150)
        assert [(a["state"], a["apply_at"]) for a in answers] == [
            ("SCHEDULED", outcome["apply_at"])
        ]

        # A wait from PENDING read after the approval landed answers at once (it used to
        # wait for the close, 300 s here: the client's 60 s would run out first).
        lee.timeout = httpx.Timeout(60)
        late = lee.get(
            "/api/2.0/signoff/transition-requests/wait",
            params={"id": request_id, "timeout_s": 300, "seen_state": "PENDING"},
        )
        assert late.status_code == 200, late.text
        assert late.json()["request"]["state"] == "SCHEDULED"

        # Waiting on a SCHEDULED request lasts until it closes (here: cancelled).
        scheduled = wait("SCHEDULED")
        scheduled.join(timeout=1)
        assert scheduled.is_alive() and len(answers) == 1
        cancel = lee.delete(
            "/api/2.0/mlflow/transition-requests/delete", params=target | {"creator": "lee"}
        )
        assert cancel.status_code == 200, cancel.text
        scheduled.join(timeout=150)
        assert [a["state"] for a in answers] == ["SCHEDULED", "CANCELLED"]


# -- messages a new user meets ------------------------------------------------------------------


def test_settings_errors_are_sentences_without_pydantic_prefix() -> None:
    wrong = {"SIGNOFF_CALLBACK_KEY": "short", "SIGNOFF_RECONCILE_INTERVAL_S": "0"}
    for command in (["requests"], ["token", "--sub", "a", "--role", "ml-lead"], ["worker"]):
        result = signoff_alone(*command, token="x", **wrong)
        assert result.returncode == 1, result
        assert result.stderr.startswith("error: invalid settings: "), result.stderr
        assert "SIGNOFF_CALLBACK_KEY must be at least 32 characters" in result.stderr
        assert "SIGNOFF_RECONCILE_INTERVAL_S: " in result.stderr
        assert "Value error" not in result.stderr and "Traceback" not in result.stderr
        assert "short" not in result.stderr  # a value may be a secret: never printed


def test_api_validation_messages_lose_pydantic_prefix(
    signoff_stack: SignoffStack, make_version: Any
) -> None:
    version = make_version()
    token = signoff_stack.token("lee", "ml-lead")
    result = signoff(signoff_stack, "request", version.name, version.version, "Prod", token=token)
    assert result.returncode == 1
    assert "'Prod' is not a stage" in result.stderr and "400" in result.stderr
    assert "Value error" not in result.stderr


def test_policy_check_messages_lose_pydantic_prefix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "roles:\n"
        "  ml-lead: {'*': CAN_MANAGE_PRODUCTION_VERSIONS}\n"
        "transitions:\n"
        "  - to: Production\n"
        "    checks: [{type: metric, name: auc, min: 2, max: 1}]\n"
        "    approvals: {quorum: 1, roles: [ml-lead]}\n"
    )
    result = signoff_alone("policy", "check", str(bad))
    assert result.returncode == 1
    assert "can never pass: min 2.0 is above max 1.0" in result.stderr
    assert "Value error" not in result.stderr


def test_an_api_url_that_is_not_signoff_is_named_not_dumped(mlflow_server: MlflowServer) -> None:
    for command in (["requests"], ["approve", "m", "1", "Production"]):
        result = signoff_alone(
            *command, api_url=mlflow_server.url, token=mint_token("lee", "ml-lead")
        )
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"error: {mlflow_server.url} did not answer like a Signoff API (HTTP 404, "
            "text/html); is SIGNOFF_API_URL right?"
        )


def test_help_says_where_url_and_token_come_from_and_shows_no_bool_tags() -> None:
    wide = {"COLUMNS": "200", "NO_COLOR": "1"}
    top = signoff_alone("--help", **wide)
    assert top.returncode == 0
    assert "SIGNOFF_API_URL" in top.stdout and "SIGNOFF_TOKEN" in top.stdout
    # Each command's help, from the same `app` in this process (the start-up of one
    # `signoff` process per command adds nothing to what is asserted).
    client = ["request", "approve", "reject", "cancel", "requests", "activities"]
    runner = CliRunner()
    helps = {
        c: runner.invoke(app, [c, "--help"], env=wide, prog_name="signoff")
        for c in [*client, "dev", "worker", "api", "token", "policy"]
    }
    for command in client:
        shown = helps[command]
        assert shown.exit_code == 0, shown.output
        assert "SIGNOFF_API_URL" in shown.stdout and "SIGNOFF_TOKEN" in shown.stdout, command
    for shown in [top, *helps.values()]:
        assert "<bool>" not in shown.stdout, shown.stdout
    assert re.search(r"--comment\s+TEXT", helps["request"].stdout)
