"""CPU time the stack's processes spend, from /proc: on a machine shared with other work a rate
says as much about the scheduler as about the code, while the CPU a process spends per call
says what the call costs it."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids: list[int]) -> float:
    """User plus system CPU seconds spent so far by these processes (all their threads)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def _descendants(root: int, *markers: bytes) -> list[int]:
    """`root`'s descendants whose command line holds one of `markers`."""
    found, todo = [], [root]
    while todo:
        for child in _children(todo.pop()):
            todo.append(child)
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if any(marker in command for marker in markers):
                found.append(child)
    return found


def mlflow_pids(root: int) -> list[int]:
    """The MLflow server's processes (its workers too) among `root`'s descendants."""
    return _descendants(root, b"mlflow", b"uvicorn", b"gunicorn")


def temporal_pids(root: int) -> list[int]:
    """Temporal's dev server among `root`'s descendants."""
    return _descendants(root, b"temporal")


class CpuPerOperation:
    """CPU milliseconds per operation that each process of the embedded stack (`root`: the
    `signoff dev` process, which runs the API and the worker) spends between `start()` and
    `stop(operations)`: where a governed move's work goes, beside the rate it reaches."""

    def __init__(self, root: int) -> None:
        self.processes = {
            "Signoff (API + worker)": [root],
            "Temporal": temporal_pids(root),
            "MLflow": mlflow_pids(root),
        }
        self._spent: dict[str, float] = {}

    def start(self) -> None:
        self._spent = {name: cpu_s(pids) for name, pids in self.processes.items()}

    def stop(self, operations: int) -> dict[str, float]:
        return {
            name: (cpu_s(pids) - self._spent[name]) * 1000 / operations
            for name, pids in self.processes.items()
        }
