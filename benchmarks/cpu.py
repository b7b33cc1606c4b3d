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


def mlflow_pids(root: int) -> list[int]:
    """The MLflow server's processes (its workers too) among `root`'s descendants."""
    found, todo = [], [root]
    while todo:
        for child in _children(todo.pop()):
            todo.append(child)
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"mlflow" in command or b"uvicorn" in command or b"gunicorn" in command:
                found.append(child)
    return found
