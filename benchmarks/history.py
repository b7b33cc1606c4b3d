"""One governed request's cost in Temporal: the events in its workflow history, for a request
applied with two approvals and no checks (Production under the default policy), and which
events they are; and the MLflow calls it made, by path (from MLflow's own access log, from the
create call to the end of the request). With `timings`, where the completing approval's time
goes, read from the history's own timestamps.

    python -m benchmarks.history [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from benchmarks.report import REPORT_ONLY, Figure, print_figures
from benchmarks.stack import EmbeddedStack, running_stack, wait_for_entries


def _event_name(event_type: int) -> str:
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_")


async def _events(stack: EmbeddedStack, workflow_id: str) -> list:
    client = await Client.connect(stack.temporal_address)
    handle = client.get_workflow_handle(workflow_id)
    await handle.result()
    history = await handle.fetch_history()
    return list(history.events)


_ACCESS = re.compile(r'"(GET|POST|PATCH|DELETE) (/api/[^ ?"]+)')


class MlflowCalls:
    """The calls MLflow answered from a point on, read from its access log (`signoff dev`
    writes it to `logs/mlflow.log`)."""

    def __init__(self, stack: EmbeddedStack) -> None:
        self.log = stack.root / "logs" / "mlflow.log"
        self.start = self._size()

    def _size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def since(self, settle_s: float = 1.0) -> Counter[str] | None:
        """The calls since this was made, by method and path, once the log stops growing; None
        when the stack did not start MLflow (`--mlflow URL`: its log is not ours to read)."""
        if not self.log.exists():
            return None
        size, deadline = self._size(), time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(settle_s)
            if self._size() == size:
                break
            size = self._size()
        with open(self.log, "rb") as log:
            log.seek(self.start)
            text = log.read().decode("utf-8", "replace")
        return Counter(
            f"{m.group(1)} {m.group(2).removeprefix('/api/2.0/mlflow/')}"
            for m in _ACCESS.finditer(text)
        )


def applied_request(stack: EmbeddedStack, name: str, version: str) -> tuple[str, float]:
    """Open, approve twice, wait for the end; returns the workflow id and the send time of the
    completing approval (epoch seconds)."""
    body = {"name": name, "version": version, "stage": "Production"}
    lee, mia = stack.token("lee", "ml-lead"), stack.token("mia", "ml-lead")
    rita = stack.token("rita", "risk-officer")
    stack.api.post(
        "/api/2.0/mlflow/transition-requests/create", json=body, headers=lee
    ).raise_for_status()
    stack.api.post(
        "/api/2.0/mlflow/transition-requests/approve", json=body, headers=mia
    ).raise_for_status()
    wait_for_entries(stack, name, version, 2, mia)
    sent = time.time()
    stack.api.post(
        "/api/2.0/mlflow/transition-requests/approve", json=body, headers=rita
    ).raise_for_status()
    return f"transition/{name}/{version}/Production", sent


def timeline(events: list, since: float) -> list[str]:
    """The events from the completing approval on, in time order, each with its offset from
    `since` (activities named)."""
    names = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    rows = []
    for event in events:
        at = event.event_time.ToDatetime().timestamp()
        if at < since - 0.005:
            continue
        kind = _event_name(event.event_type)
        scheduled = event.event_id if kind == "ACTIVITY_TASK_SCHEDULED" else None
        for attrs in ("activity_task_started", "activity_task_completed"):
            if event.HasField(f"{attrs}_event_attributes"):
                scheduled = getattr(event, f"{attrs}_event_attributes").scheduled_event_id
        label = f"{kind} {names.get(scheduled, '')}".strip()
        rows.append((at, event.event_id, f"  +{(at - since) * 1000:7.1f} ms  {label}"))
    return [line for _, _, line in sorted(rows)]


def _at(event) -> float:  # noqa: ANN001 (a protobuf HistoryEvent)
    return event.event_time.ToDatetime().timestamp()


def approval_phases(events: list, sent: float, answered: float) -> dict[str, float]:
    """Where the completing approval's time went (seconds), from the history's timestamps:
    the API and Temporal until the update is accepted, each activity from scheduled to
    completed, the workflow tasks (scheduled to completed), until the update completed, and
    the API's answer after it. Overlaps are not double counted: activities run between tasks."""
    accepted = [e for e in events if _name(e) == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED"][-1]
    completed = [e for e in events if _name(e) == "WORKFLOW_EXECUTION_UPDATE_COMPLETED"][-1]
    start, end = _at(accepted), _at(completed)
    phases: dict[str, float] = {"API → update accepted": start - sent}
    names = _activity_names(events)
    scheduled: dict[int, float] = {}
    task_scheduled = None
    for event in events:
        at, kind = _at(event), _name(event)
        if not start <= at <= end:
            continue
        if kind == "WORKFLOW_TASK_SCHEDULED":
            task_scheduled = at
        elif kind == "WORKFLOW_TASK_COMPLETED" and task_scheduled is not None:
            phases["workflow tasks"] = phases.get("workflow tasks", 0) + at - task_scheduled
            task_scheduled = None
        elif kind == "ACTIVITY_TASK_SCHEDULED":
            scheduled[event.event_id] = at
        elif kind == "ACTIVITY_TASK_COMPLETED":
            key = event.activity_task_completed_event_attributes.scheduled_event_id
            if key in scheduled:
                label = f"activity {names[key]}"
                phases[label] = phases.get(label, 0) + at - scheduled[key]
    phases["update completed → answer"] = answered - end
    phases["total (the approve call)"] = answered - sent
    return phases


def _name(event) -> str:  # noqa: ANN001
    return _event_name(event.event_type)


def _activity_names(events: list) -> dict[int, str]:
    return {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


def fetch_histories(stack: EmbeddedStack, workflow_ids: list[str]) -> list[list]:
    async def run() -> list[list]:
        client = await Client.connect(stack.temporal_address)
        found = []
        for workflow_id in workflow_ids:
            handle = client.get_workflow_handle(workflow_id)
            await handle.result()
            found.append(list((await handle.fetch_history()).events))
        return found

    return asyncio.run(run())


def measure(stack: EmbeddedStack, *, quick: bool = False, timings: bool = True) -> list[Figure]:
    del quick  # one request either way
    stack.new_versions(1)  # MLflow's first answers are slow; not this request's
    name, version = stack.new_versions(1)[0]
    calls = MlflowCalls(stack)
    workflow_id, sent = applied_request(stack, name, version)
    events = asyncio.run(_events(stack, workflow_id))
    made = calls.since()
    kinds = Counter(_event_name(event.event_type) for event in events)
    print(f"\nHistory of one governed request ({len(events)} events):")
    for kind, count in kinds.most_common():
        print(f"  {count:3d}  {kind}")
    if timings:
        print("\nThe completing approval, by the history's timestamps (from the call's send):")
        print("\n".join(timeline(events, sent)))
    listed = ", ".join(f"{kind} ×{count}" for kind, count in kinds.most_common())
    figures = []
    if made is None:
        print("\nMLflow calls: not counted (this MLflow was not started by the benchmark)")
    else:
        print(f"\nMLflow calls from create to applied ({sum(made.values())}):")
        for call, count in made.most_common():
            print(f"  {count:3d}  {call}")
        figures.append(
            Figure(
                "MLflow calls, one applied request (create → 2 approvals → applied)",
                sum(made.values()),
                "calls",
                REPORT_ONLY,
                note=", ".join(f"{call} ×{count}" for call, count in made.most_common()),
            )
        )
    return [
        *figures,
        Figure(
            "history events, applied request (2 approvals, no checks)",
            len(events),
            "events",
            REPORT_ONLY,
            note=listed,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry")
    args = parser.parse_args()
    with running_stack() as stack:
        print_figures("Temporal history", measure(stack, quick=args.quick))


if __name__ == "__main__":
    main()
