"""Temporal's dev server as the end-to-end suites share it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass
class TemporalServer:
    address: str
    process: subprocess.Popen[bytes]
