"""The repository's shape, checked from the source: imports point one way only (`api` →
`workflows` → `policies`), `policies` does no I/O beyond reading a policy file, only the
settings modules read the environment, and the top level holds only the card's entries.

Every check is a function over a directory tree, run on the repository and on small synthetic
trees in tmp_path with a planted violation, so each can be seen to fail."""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("policies", "workflows", "api")

FORBIDDEN: dict[str, set[str]] = {
    "policies": {"workflows", "api"},
    "workflows": {"api"},
    "api": set(),
    # The CI scripts run inside CI jobs, where Signoff's API code is not installed.
    "infra": {"api"},
}
"""For each top-level folder, the packages its modules must not import (the back-arrows)."""

POLICIES_NO_IO = {
    "httpx",
    "requests",
    "urllib.request",
    "socket",
    "subprocess",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "psycopg",
    "temporalio",
}
"""What `policies/` must not import: it decides from what it is given and reads only a policy
file (`pathlib`)."""

ENVIRONMENT_READERS = {
    "workflows/settings.py": "the worker's settings model",
    "api/settings.py": "the API's and the CLI's settings model",
    # Hands its own environment, plus MLflow's webhook switches, to the MLflow server it starts
    # as a child process (`os.environ | env`); it reads no setting from it.
    "api/cli/devstack.py": "passes the environment on to child processes",
}
"""The only modules of the three packages that may touch `os.environ` / `os.getenv`."""

TOP_LEVEL = {
    "pyproject.toml",
    "README.md",
    "policies",
    "workflows",
    "api",
    "tests",
    "infra",
    "benchmarks",
    "scripts",
    "docs",
    ".ci",
    ".gitignore",
    ".gitattributes",
    ".editorconfig",
    ".pre-commit-config.yaml",
    ".python-version",
    ".dockerignore",
    ".github",
    "LICENSE",
}
"""What the repository's top level may hold (tracked files): the card's entries and the usual
dotfiles."""


# -- the checkers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    module: str  # the importing module's path, relative to the root
    line: int
    name: str  # the absolute dotted name imported ("workflows.settings", "os.environ")


def python_files(root: Path, folder: str) -> Iterator[Path]:
    yield from sorted((root / folder).rglob("*.py"))


def _package_of(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts if parts[-1] == "__init__" else parts[:-1]


def imports_of(path: Path, root: Path) -> Iterator[Imported]:
    """Every module (and `from` name) `path` imports, relative imports resolved."""
    rel = path.relative_to(root).as_posix()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), rel)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Imported(rel, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(path, root)
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            yield Imported(rel, node.lineno, base)
            for alias in node.names:
                yield Imported(rel, node.lineno, f"{base}.{alias.name}")


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def back_arrows(root: Path) -> list[str]:
    """Imports against the direction `api` → `workflows` → `policies`, as readable lines."""
    found = set()
    for folder, forbidden in FORBIDDEN.items():
        for path in python_files(root, folder):
            for item in imports_of(path, root):
                if _top(item.name) in forbidden:
                    found.add(f"{item.module}:{item.line} imports {_top(item.name)}")
    return sorted(found)


def io_in_policies(root: Path) -> list[str]:
    found = set()
    for path in python_files(root, "policies"):
        for item in imports_of(path, root):
            for banned in POLICIES_NO_IO:
                if item.name == banned or item.name.startswith(banned + "."):
                    found.add(f"{item.module}:{item.line} imports {banned}")
    return sorted(found | set(environment_reads(root, ["policies"], allowed={})))


def environment_reads(
    root: Path, folders: list[str], allowed: dict[str, str] | None = None
) -> list[str]:
    """Every use of `os.environ`, `os.environb` or `os.getenv` outside `allowed` modules."""
    allowed = ENVIRONMENT_READERS if allowed is None else allowed
    names = {"os.environ", "os.environb", "os.getenv", "os.putenv"}
    found = []
    for folder in folders:
        for path in python_files(root, folder):
            rel = path.relative_to(root).as_posix()
            if rel in allowed:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), rel)
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    name = f"{node.value.id}.{node.attr}"
                    if node.value.id == "os" and name in names:
                        found.append(f"{rel}:{node.lineno} reads {name}")
            found += [
                f"{item.module}:{item.line} imports {item.name}"
                for item in imports_of(path, root)
                if item.name in names
            ]
    return sorted(set(found))


def tracked_top_level(root: Path) -> set[str]:
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split("/", 1)[0] for line in listed.splitlines() if line}


# -- the repository --------------------------------------------------------------------------


def test_imports_point_one_way() -> None:
    assert back_arrows(ROOT) == []


def test_policies_does_no_io() -> None:
    assert io_in_policies(ROOT) == []


def test_only_the_settings_modules_read_the_environment() -> None:
    assert environment_reads(ROOT, list(PACKAGES)) == []


def test_the_allow_listed_environment_readers_exist() -> None:
    # A stale entry would let a new module of that name read the environment unnoticed.
    assert [name for name in ENVIRONMENT_READERS if not (ROOT / name).is_file()] == []


def test_the_top_level_holds_only_the_cards_entries() -> None:
    # The suite runs from a git checkout (`.ci/run` runs in a clone): without one, this is a
    # failure to look at, not a check to skip.
    assert shutil.which("git") is not None, "git is needed to list the tracked files"
    assert (ROOT / ".git").exists(), f"{ROOT} is not a git checkout"
    assert tracked_top_level(ROOT) - TOP_LEVEL == set()


# -- the checkers themselves, on synthetic trees ---------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


CLEAN = {
    "policies/__init__.py": "from policies.schema import Policy\n",
    "policies/schema.py": "from pathlib import Path\nimport yaml\n",
    "workflows/__init__.py": "",
    "workflows/settings.py": "import os\nHOME = os.environ.get('HOME')\n",
    "workflows/worker.py": "import policies\nfrom workflows import settings\n",
    "api/__init__.py": "",
    "api/settings.py": "from workflows.settings import HOME\n",
    "api/app.py": "from workflows.worker import run\nfrom api.settings import HOME\n",
    "infra/ci/callback.py": "import json\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = write(tmp_path, CLEAN)
    assert back_arrows(root) == []
    assert io_in_policies(root) == []
    assert environment_reads(root, list(PACKAGES)) == []


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ({"policies/schema.py": "from workflows.domain import X\n"}, "policies/schema.py:1"),
        ({"policies/schema.py": "import api.auth\n"}, "policies/schema.py:1 imports api"),
        ({"workflows/worker.py": "\n\nfrom api import app\n"}, "workflows/worker.py:3"),
        # relative imports resolve: `from .. import api` inside workflows/ci/ is workflows.api,
        # while `from ...api import x` climbs out of workflows to the top-level api package
        ({"workflows/ci/x.py": "from ...api import auth\n"}, "workflows/ci/x.py:1 imports api"),
        ({"infra/ci/callback.py": "from api.cli import app\n"}, "infra/ci/callback.py:1"),
    ],
)
def test_a_planted_back_arrow_is_found(
    tmp_path: Path, planted: dict[str, str], expected: str
) -> None:
    root = write(tmp_path, CLEAN | planted)
    found = back_arrows(root)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_relative_import_within_the_package_is_no_back_arrow(tmp_path: Path) -> None:
    root = write(tmp_path, CLEAN | {"workflows/ci/x.py": "from ..settings import HOME\n"})
    assert back_arrows(root) == []


@pytest.mark.parametrize(
    "planted",
    [
        "import httpx\n",
        "from sqlalchemy import select\n",
        "from temporalio import workflow\n",
        "import urllib.request\n",
        "import os\nX = os.environ['X']\n",
    ],
)
def test_io_in_policies_is_found(tmp_path: Path, planted: str) -> None:
    root = write(tmp_path, CLEAN | {"policies/schema.py": planted})
    assert len(io_in_policies(root)) == 1, io_in_policies(root)


@pytest.mark.parametrize(
    "planted",
    [
        "import os\nX = os.environ.get('SIGNOFF_X')\n",
        "import os\nX = os.getenv('SIGNOFF_X')\n",
        "from os import environ\n",
        "from os import getenv\n",
    ],
)
def test_an_environment_read_outside_the_settings_is_found(tmp_path: Path, planted: str) -> None:
    root = write(tmp_path, CLEAN | {"workflows/worker.py": planted})
    assert [line.split(":")[0] for line in environment_reads(root, list(PACKAGES))] == [
        "workflows/worker.py"
    ]


def test_an_untracked_top_level_entry_is_found(tmp_path: Path) -> None:
    assert shutil.which("git") is not None, "git is needed to list the tracked files"
    root = write(tmp_path, {"README.md": "", "api/__init__.py": "", "notes.txt": ""})
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    assert tracked_top_level(root) - TOP_LEVEL == {"notes.txt"}
