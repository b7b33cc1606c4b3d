"""Waiting for something to become true, without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(probe: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    """Poll `probe` until it returns something truthy, and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)  # probes are cheap; every wait is on some test's critical path
    raise AssertionError(f"timed out waiting for {what}")
