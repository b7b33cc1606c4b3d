"""The Databricks SDK pointed at a Signoff stack, as a Databricks user would call it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from tests.support.stack import SignoffStack


def workspace_factory(
    stack: SignoffStack, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., WorkspaceClient]:
    """`make(sub, *roles, token=None)`: a Databricks `WorkspaceClient` pointed at `stack` with
    one of our JWTs as its personal access token. Isolated from any DATABRICKS_* environment
    and ~/.databrickscfg on the machine running the tests."""
    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            monkeypatch.delenv(key)
    config_file = str(config_dir / "no-databrickscfg")

    def make(sub: str, *roles: str, token: str | None = None) -> WorkspaceClient:
        return WorkspaceClient(
            host=stack.api_url,
            token=token or stack.token(sub, *roles),
            auth_type="pat",
            config_file=config_file,
        )

    return make
