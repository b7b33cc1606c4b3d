"""`scripts/setup`, which `./scripts/dev` and `./scripts/test` run first: it installs only when
`pyproject.toml` changed since the last install, so a restart of the dev stack is quick.

The script runs for real in a copy of the repository's skeleton whose `.venv/bin/python` is a
stand-in that logs what it was asked to do (a real install takes minutes and the network)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


def _skeleton(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup", tmp_path / "scripts" / "setup")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "signoff"\n')
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "signoff"):
        (bin_dir / name).write_text(FAKE_PYTHON)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def _setup(repo: Path) -> str:
    done = subprocess.run(
        ["bash", str(repo / "scripts" / "setup")], capture_output=True, text=True, check=True
    )
    return done.stdout


def _installs(repo: Path) -> int:
    log = repo / ".venv" / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    return sum("install --quiet -e .[dev]" in call for call in calls)


def test_setup_installs_once_then_again_only_when_pyproject_changes(tmp_path: Path) -> None:
    repo = _skeleton(tmp_path)
    assert "installing signoff[dev]" in _setup(repo)
    assert _installs(repo) == 1

    assert "up to date" in _setup(repo)
    assert _installs(repo) == 1

    (repo / "pyproject.toml").write_text('[project]\nname = "signoff"\nversion = "2"\n')
    assert "installing signoff[dev]" in _setup(repo)
    assert _installs(repo) == 2


def test_setup_installs_when_the_console_script_is_missing(tmp_path: Path) -> None:
    repo = _skeleton(tmp_path)
    _setup(repo)
    (repo / ".venv" / "bin" / "signoff").unlink()
    assert "installing signoff[dev]" in _setup(repo)
    assert _installs(repo) == 2


def test_pyproject_license_is_an_spdx_expression() -> None:
    """A license table makes setuptools print a deprecation banner on every install."""
    text = (ROOT / "pyproject.toml").read_text()
    assert 'license = "Apache-2.0"' in text
