"""The stack's processes: `signoff dev` (everything), `signoff worker`, `signoff api`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.client import fail, load_settings

if TYPE_CHECKING:
    from api.settings import ApiSettings
    from workflows.logs import LogFormat


def _production_settings() -> ApiSettings:
    """The settings of a process serving real traffic: never the placeholder JWT secret (the
    worker is refused it too, so that no half of a stack runs on it)."""
    from api.settings import InsecureSettingsError

    settings = load_settings()
    try:
        settings.require_production_secret()
    except InsecureSettingsError as err:
        fail(str(err))
    return settings


def _observability(settings: ApiSettings, service: str, log_format: LogFormat = "json") -> None:
    """Log lines as SIGNOFF_LOG_FORMAT says (default `log_format`); traces when an OTLP
    endpoint is set."""
    from workflows.logs import configure_logging
    from workflows.tracing import setup_tracing  # OpenTelemetry: only for a process that runs

    configure_logging(settings.log_format or log_format)
    setup_tracing(settings, service)


def dev(
    host: Annotated[
        str, typer.Option(help="Interface the API listens on.", metavar="HOST")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.", metavar="PORT")] = 8000,
) -> None:
    """Run the whole stack on the embedded defaults: Temporal, MLflow, worker and API.

    Temporal listens at SIGNOFF_TEMPORAL_ADDRESS (default localhost:7233; its UI 1000 ports
    above) and MLflow at SIGNOFF_MLFLOW_TRACKING_URI (default http://127.0.0.1:5000); state is
    kept in SIGNOFF_DATA_DIR (default ./.signoff). A Temporal or MLflow server already
    answering there is reused; a port held by anything else stops the command before it
    starts anything, naming the setting that moves it.
    """
    settings = load_settings()
    _observability(settings, "signoff", "text")
    logging.getLogger("api.access").setLevel(logging.WARNING)  # one line per call: too many
    from api.cli.devstack import DevStackError, run_dev

    try:
        run_dev(settings, host, port, say=typer.echo)
    except DevStackError as err:
        fail(str(err))


def worker() -> None:
    """Run a worker: executes transition workflows and their activities."""
    import asyncio  # here, not for every client command
    import signal

    settings = _production_settings()
    _observability(settings, "signoff-worker")  # first: what importing says is logged too
    from workflows.startup import StartupFailed
    from workflows.worker import run_worker

    async def until_signalled() -> None:
        # SIGTERM or SIGINT: stop polling, let running activities finish, then exit.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop=stop)

    try:
        asyncio.run(until_signalled())
    except StartupFailed as err:
        fail(str(err))


def api(
    host: Annotated[
        str, typer.Option(help="Interface to listen on.", metavar="HOST")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", metavar="PORT")] = 8000,
) -> None:
    """Run the HTTP API."""
    settings = _production_settings()
    _observability(settings, "signoff-api")  # first: what importing says is logged too
    from api.app import create_app
    from api.server import ApiServer

    server = ApiServer(
        create_app(settings), host=host, port=port, drain_s=settings.shutdown_drain_s
    )
    server.run()
