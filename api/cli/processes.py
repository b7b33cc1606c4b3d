"""The stack's processes: `signoff dev` (everything), `signoff worker`, `signoff api`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

import typer

from api.cli.client import fail
from api.settings import ApiSettings, InsecureSettingsError


def _production_settings() -> ApiSettings:
    """The settings of a process serving real traffic: never the placeholder JWT secret (the
    worker is refused it too, so that no half of a stack runs on it)."""
    settings = ApiSettings()
    try:
        settings.require_production_secret()
    except InsecureSettingsError as err:
        fail(str(err))
    return settings


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def dev(
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8000,
) -> None:
    """Run the whole stack on the embedded defaults: Temporal, MLflow, worker and API."""
    from api.cli.devstack import DevStackError, run_dev

    try:
        run_dev(ApiSettings(), host, port, say=typer.echo)
    except DevStackError as err:
        fail(str(err))


def worker() -> None:
    """Run a worker: executes transition workflows and their activities."""
    from workflows.worker import run_worker

    settings = _production_settings()
    _logging()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings))


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API."""
    from api.app import create_app
    from api.server import ApiServer

    settings = _production_settings()
    _logging()
    ApiServer(create_app(settings), host=host, port=port).run()
