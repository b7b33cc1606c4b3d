"""The work units pytest-xdist hands to its processes under `--dist loadgroup`, and their order.

A unit is a test module (its tests share the module's stack), or, for an end-to-end module that
runs on both ledgers, each ledger's share of it: the two start a stack each and can run at the
same time in two processes. Units are handed out in collection order to whichever process is
free, so the costliest go first and the run does not end waiting on one long module that
started last. The costs are seconds measured on a loaded 2-core machine (`work_unit_costs.json`,
made by `python -m tests.support.work_units junit.xml...`); a unit not listed there is
estimated from its tests."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

COSTS = Path(__file__).with_name("work_unit_costs.json")

SECONDS_PER_TEST = 2.0
"""The estimate for a test of a unit not measured yet, plus `SECONDS_PER_STACK` when its
tests run a real stack."""

SECONDS_PER_STACK = 20.0


def unit_of(module: str, ledger: str | None) -> str:
    """`tests/api/test_slack.py`, or `tests/api/test_slack.py|postgresql` for its share on
    PostgreSQL. Neither `@` nor `]` may appear: pytest-xdist splits node ids on them."""
    return f"{module}|{ledger}" if ledger == "postgresql" else module


def mark(items: list[pytest.Item], ledger_of: Callable[[pytest.Item], str | None]) -> None:
    """Put each test in its unit (`xdist_group`)."""
    for item in items:
        item.add_marker(
            pytest.mark.xdist_group(unit_of(item.nodeid.split("::")[0], ledger_of(item)))
        )


def _group(item: pytest.Item) -> str:
    marker = item.get_closest_marker("xdist_group")
    assert marker is not None, item.nodeid
    return str(marker.args[0])


def costliest_first(items: list[pytest.Item]) -> None:
    """Reorder `items` unit by unit, the costliest unit first, keeping the order within each."""
    measured: dict[str, float] = json.loads(COSTS.read_text()) if COSTS.exists() else {}
    members: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        members[_group(item)].append(item)

    def cost(unit: str) -> float:
        if unit in measured:
            return measured[unit]
        if unit.split("|")[0] in measured:  # a module's share on PostgreSQL: as on SQLite
            return measured[unit.split("|")[0]]
        tests = members[unit]
        stack = any("temporal_server" in getattr(item, "fixturenames", ()) for item in tests)
        return len(tests) * SECONDS_PER_TEST + (SECONDS_PER_STACK if stack else 0.0)

    items[:] = [item for unit in sorted(members, key=cost, reverse=True) for item in members[unit]]


def measure(junit_files: list[Path]) -> dict[str, float]:
    """Seconds per unit (setup, call and teardown of its tests) from JUnit XML reports."""
    costs: dict[str, float] = defaultdict(float)
    for path in junit_files:
        for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - our own report
            module = case.get("classname", "").split(".")
            name = case.get("name", "")
            while module and module[-1][:1].isupper():  # a test class
                module.pop()
            ledger = "postgresql" if "postgresql-ledger" in name.rsplit("[", 1)[-1] else None
            costs[unit_of("/".join(module) + ".py", ledger)] += float(case.get("time", 0))
    return {unit: round(seconds, 1) for unit, seconds in sorted(costs.items())}


if __name__ == "__main__":
    print(json.dumps(measure([Path(arg) for arg in sys.argv[1:]]), indent=1))
