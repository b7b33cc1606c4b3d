"""What holds a TCP port: free, or which kind of server answers there (and, on Linux, which
process of this user listens), so `signoff dev` can say why it cannot start and what to move."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from pathlib import Path

import httpx

SIGNOFF = "signoff"
MLFLOW = "mlflow"
TEMPORAL = "temporal"
TEMPORAL_UI = "temporal-ui"

KIND_NAMES = {
    SIGNOFF: "a Signoff API",
    MLFLOW: "an MLflow server",
    TEMPORAL: "a Temporal server",
    TEMPORAL_UI: "a Temporal UI",
}


def bind_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "localhost") else host


def port_busy(host: str, port: int) -> bool:
    """True when something listens on `host:port`, or the port cannot be bound there (held on
    another interface, e.g. 0.0.0.0). A host that is not this machine's is never "busy"."""
    host = bind_host(host)
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As servers bind: a port left in TIME_WAIT by a stopped server is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


def next_free_port(host: str, port: int) -> int | None:
    """The first port above `port` that is free on `host` (within 100), for a suggestion."""
    for candidate in range(port + 1, min(port + 101, 65536)):
        if not port_busy(host, candidate):
            return candidate
    return None


def _get(client: httpx.Client, url: str) -> httpx.Response | None:
    try:
        return client.get(url)
    except httpx.HTTPError:
        return None


def _json(response: httpx.Response | None) -> object:
    if response is None or response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _is_temporal_frontend(host: str, port: int) -> bool:
    from temporalio.client import Client

    async def probe() -> bool:
        client = await asyncio.wait_for(Client.connect(f"{host}:{port}"), 3)
        return await asyncio.wait_for(client.service_client.check_health(), 3)

    try:
        return asyncio.run(probe())
    except Exception:  # noqa: BLE001 - any failure means "not a Temporal frontend"
        return False


def identify(host: str, port: int) -> str | None:
    """The kind of server answering at `host:port` (SIGNOFF, MLFLOW, TEMPORAL, TEMPORAL_UI), or
    None when it is none of those (or does not answer)."""
    host = bind_host(host)
    base = f"http://{host}:{port}"
    with httpx.Client(timeout=1.5, follow_redirects=False) as client:
        health = _get(client, f"{base}/health")
        if health is not None:
            # Signoff: `/healthz` says ok, and an unknown path gets its JSON error shape.
            if _json(_get(client, f"{base}/healthz")) == {"status": "ok"}:
                with contextlib.suppress(ValueError):
                    if health.status_code == 404 and "error_code" in health.json():
                        return SIGNOFF
            version = _get(client, f"{base}/version")
            says_ok = health.status_code == 200 and health.text.strip() == "OK"
            # MLflow's /version answers its version, e.g. "3.1.0".
            if (
                says_ok
                and version is not None
                and version.status_code == 200
                and version.text.strip()[:1].isdigit()
            ):
                return MLFLOW
            settings = _json(_get(client, f"{base}/api/v1/settings"))
            if isinstance(settings, dict) and "Auth" in settings and "Codec" in settings:
                return TEMPORAL_UI
            return None
    # No HTTP/1.1 answer: a gRPC server speaks only HTTP/2.
    return TEMPORAL if _is_temporal_frontend(host, port) else None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(inode)
    return inodes


def holder(port: int) -> str | None:
    """`pid 1234: python -m http.server 5000` for the process listening on `port`, when it is
    one of this user's (Linux' /proc); None when that cannot be told."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = os.listdir(proc / "fd")
            if any(os.readlink(proc / "fd" / fd) in wanted for fd in fds):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                command = " ".join(a.decode(errors="replace") for a in argv if a)
                short = command if len(command) <= 80 else command[:79] + "…"
                return f"pid {proc.name}: {short}"
        except OSError:
            continue
    return None


def describe_holder(host: str, port: int) -> tuple[str | None, str]:
    """(kind, words): what answers on the port, e.g. (MLFLOW, "an MLflow server (pid 42: …)")
    or (None, "something that is not Signoff, MLflow or Temporal (pid 7: nc -l 5000)")."""
    kind = identify(host, port)
    words = KIND_NAMES[kind] if kind else "something that is not Signoff, MLflow or Temporal"
    process = holder(port)
    return kind, f"{words} ({process})" if process else words
