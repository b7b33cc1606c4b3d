"""Waiting for something to become true, without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.05
"""How often a condition is asked again: probes are cheap, and every wait is on some test's
critical path (a stack's start-up on every module's)."""


def wait_until(probe: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    """Poll `probe` until it returns something truthy, and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")
