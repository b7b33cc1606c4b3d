"""A CI step pays the `signoff` command's start-up on every call: the client commands import
only what a client needs (no database layer, no Temporal, no web framework, no MLflow, no PDF
library, no tracing). Run in a fresh interpreter, against a loopback server playing the API,
so every command goes all the way through sending its call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.loopback import api_server

HEAVY = (
    "sqlalchemy",
    "alembic",
    "sqlmodel",
    "temporalio",
    "fastapi",
    "uvicorn",
    "mlflow",
    "reportlab",
    "opentelemetry",
)

CLIENT_COMMANDS = [
    ["request", "fraud-detector", "7", "Production", "--wait", "--timeout", "30"],
    ["rollback", "fraud-detector", "Production"],
    ["approve", "fraud-detector", "7", "Production"],
    ["reject", "fraud-detector", "7", "Production"],
    ["cancel", "fraud-detector", "7", "Production"],
    ["requests"],
    ["activities", "fraud-detector", "7"],
    ["evidence", "req-abc"],
]

SCRIPT = """
import json, sys
HEAVY, COMMANDS, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]

def heavy():
    return sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))

from api.cli import app

report = {"import": heavy(), "codes": []}
for argv in COMMANDS:
    try:
        app(argv, prog_name="signoff")
    except SystemExit as done:
        report["codes"].append(done.code)
report["commands"] = heavy()
with open(out, "w") as sink:
    json.dump(report, sink)
"""


def test_client_commands_import_no_server_side_library(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "ACTIONS_ID_TOKEN_"))
    }
    out = tmp_path / "report.json"
    with api_server() as api:
        ran = subprocess.run(
            [sys.executable, "-c", SCRIPT, json.dumps(HEAVY), json.dumps(CLIENT_COMMANDS), out],
            env=env | {"SIGNOFF_API_URL": api.url, "SIGNOFF_TOKEN": "t", "PYTHONPATH": str(repo)},
            cwd=tmp_path,  # no stray .env
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(out.read_text())
    # Every command sent its call: `request --wait` was answered APPLIED and `requests` an
    # empty list (exit 0); the others got the loopback's 404 as a sentence (exit 1).
    assert report["codes"] == [0, 1, 1, 1, 1, 0, 1, 1], (report, ran.stderr)
    assert "Traceback" not in ran.stderr
    assert {seen.path for seen in api.seen} == {
        "/api/2.0/mlflow/transition-requests/create",
        "/api/2.0/signoff/transition-requests/wait",
        "/api/2.0/signoff/rollback",
        "/api/2.0/mlflow/transition-requests/approve",
        "/api/2.0/mlflow/transition-requests/reject",
        "/api/2.0/mlflow/transition-requests/list",
        "/api/2.0/signoff/transition-requests/search",
        "/api/2.0/signoff/activities/list",
        "/api/2.0/signoff/transition-requests/evidence",
    }
    assert report["import"] == [], f"importing api.cli loads {report['import']}"
    assert report["commands"] == [], f"the client commands load {report['commands']}"
