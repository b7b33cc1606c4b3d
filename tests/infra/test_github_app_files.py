"""infra/ci/github's GitHub App manifest and gated deployment workflow: what Signoff relies on
(the App's permissions and events, the request job's OIDC token, the deploy job's environment,
the route the App's webhooks go to)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from api.app import create_app
from api.errors import leaf_routes
from api.settings import ApiSettings

GITHUB = Path(__file__).resolve().parents[2] / "infra" / "ci" / "github"


def test_the_app_manifest_asks_for_what_a_protection_rule_needs_and_no_more() -> None:
    manifest = json.loads((GITHUB / "app-manifest.json").read_text())
    assert manifest["default_permissions"] == {"actions": "read", "deployments": "write"}
    assert manifest["default_events"] == ["deployment_protection_rule"]
    assert manifest["public"] is False
    hook = manifest["hook_attributes"]["url"]
    assert hook.endswith("/api/2.0/signoff/hooks/github") and hook.startswith("https://")
    app = create_app(ApiSettings(_env_file=None))  # type: ignore[call-arg]
    served = {getattr(route, "path", None) for route in leaf_routes(app.routes)}
    assert "/api/2.0/signoff/hooks/github" in served


def test_the_deploy_job_waits_at_the_environment_for_the_request_an_earlier_job_opens() -> None:
    workflow: dict[str, Any] = yaml.safe_load((GITHUB / "deploy-gated.yml").read_text())
    request, deploy = workflow["jobs"]["request"], workflow["jobs"]["deploy"]
    assert request["permissions"]["id-token"] == "write"
    assert "environment" not in request  # the gated job cannot open its own request
    (opening,) = [step for step in request["steps"] if "signoff request" in step.get("run", "")]
    assert "--wait" not in opening["run"]  # the deploy job waits, not a runner
    assert "${{" not in opening["run"]  # inputs reach the shell through env only
    assert deploy["needs"] == "request" and deploy["environment"] == "production"
