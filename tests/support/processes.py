"""Starting and stopping real services as subprocesses on free loopback ports, and the probes that
tell when they are ready."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.polling import POLL_S


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log_path: Path, lines: int = 60) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def http_ok(url: str, timeout: float = 1.0) -> Callable[[], bool]:
    """A `ready` probe: true once GET `url` answers 200."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def start_process(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float = 60.0,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own process group, stdout+stderr to `log_path`, and wait until
    `ready()` is true. On timeout or early exit, stop it and fail with the log's tail."""
    proc = spawn_process(cmd, env=env, log_path=log_path, cwd=cwd)
    wait_ready(proc, cmd, log_path=log_path, ready=ready, timeout=timeout)
    return proc


def spawn_process(
    cmd: list[str], *, env: dict[str, str] | None = None, log_path: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own process group, stdout+stderr to `log_path`; no waiting."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop_process reaps its children too
        )


def wait_ready(
    proc: subprocess.Popen[bytes],
    cmd: list[str],
    *,
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float = 60.0,
) -> None:
    """Wait until `ready()` is true for `proc` (started by `spawn_process`). On timeout or
    early exit, stop it and fail with the log's tail."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            problem = f"exited with code {proc.returncode} before it was ready"
            break
        if ready():
            return
        if time.monotonic() > deadline:
            problem = f"was not ready after {timeout:g} s"
            break
        time.sleep(POLL_S)
    stop_process(proc)
    raise RuntimeError(f"{cmd[0]} {problem}. Last lines of {log_path}:\n{log_tail(log_path)}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group started by `start_process`, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def venv_executable(name: str, package: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"`{name}` is not installed; install the `{package}` package (signoff[dev]).")
    return found


def port_open(host: str, port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        return False

    return probe
