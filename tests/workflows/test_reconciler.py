"""The reconciler (`workflows.reconcile`): its pure parts (what differs, how an
out-of-band change is logged and announced), the webhook event builders it uses, and one pass
of `ReconcileActivities.reconcile_registry` against the real MLflow server, a real ledger and
the real Temporal dev server (for the activity's client)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.temporal import TemporalServer
from workflows.domain import AuditType
from workflows.ledger import Ledger, RegistryMark
from workflows.mlflow_client import MlflowRegistry, ModelVersion
from workflows.reconcile.activities import ReconcileActivities, ReconcileSummary
from workflows.reconcile.changes import (
    OUT_OF_BAND_USER,
    Change,
    differences,
    out_of_band,
    stable_id,
)
from workflows.webhooks.delivery import delivery_workflow_id
from workflows.webhooks.events import (
    WebhookEvent,
    payload_for,
    request_created_events,
    transition_events,
    with_request_link,
)

# Its Temporal workers keep a ledger of their own (not the `--ledger` backend).
pytestmark = pytest.mark.own_ledger

T0 = 1_700_000_000_000
MODEL = "fraud-detector"


def version(stage: str = "None", aliases: list[str] | None = None) -> ModelVersion:
    return ModelVersion(
        name=MODEL,
        version="3",
        current_stage=stage,
        run_id="run-1",
        source="runs:/run-1/model",
        status="READY",
        aliases=list(aliases or []),
    )


def mark(stage: str = "None", aliases: list[str] | None = None) -> RegistryMark:
    return RegistryMark(
        model_name=MODEL, version="3", stage=stage, aliases=list(aliases or []), updated_ms=T0
    )


# --------------------------------------------------------------------------------------------
# differences
# --------------------------------------------------------------------------------------------


def test_unseen_fresh_version_has_no_differences() -> None:
    assert differences(None, version()) == []


def test_matching_mark_has_no_differences() -> None:
    assert differences(mark("Production", ["b", "a"]), version("Production", ["a", "b"])) == []


def test_unseen_version_in_production_is_a_stage_change() -> None:
    assert differences(None, version("Production")) == [
        Change("stage changed from None to Production", "None", "Production", is_stage=True)
    ]


def test_unseen_version_with_alias_is_an_alias_change() -> None:
    assert differences(None, version(aliases=["champion"])) == [
        Change("alias @champion set on this version", to_stage="@champion")
    ]


def test_stage_change_from_the_mark() -> None:
    assert differences(mark("Production"), version("Archived")) == [
        Change("stage changed from Production to Archived", "Production", "Archived", True)
    ]


def test_alias_added_and_removed() -> None:
    found = differences(mark("Staging", ["champion", "stable"]), version("Staging", ["beta"]))
    assert found == [
        Change("alias @beta set on this version", to_stage="@beta"),
        Change("alias @champion removed from this version", from_stage="@champion"),
        Change("alias @stable removed from this version", from_stage="@stable"),
    ]
    assert not any(change.is_stage for change in found)


def test_stage_and_alias_together_stage_first() -> None:
    assert differences(mark("Staging", ["old"]), version("Production", ["champion"])) == [
        Change("stage changed from Staging to Production", "Staging", "Production", True),
        Change("alias @champion set on this version", to_stage="@champion"),
        Change("alias @old removed from this version", from_stage="@old"),
    ]


# --------------------------------------------------------------------------------------------
# out_of_band
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["Staging", "Production", "Archived"])
def test_out_of_band_stage_change(stage: str) -> None:
    change = Change(f"stage changed from None to {stage}", "None", stage, is_stage=True)
    entry, events = out_of_band("abc", MODEL, "3", change, seen_by="the reconciler", now_ms=T0)

    assert entry.id == "oob-abc"
    assert entry.request_id == ""
    assert entry.activity_type == AuditType.SYSTEM_TRANSITION
    assert entry.user_id == OUT_OF_BAND_USER == "mlflow"
    assert (entry.model, entry.version) == (MODEL, "3")
    assert (entry.from_stage, entry.to_stage) == ("None", stage)
    assert entry.comment is None
    assert entry.creation_timestamp == T0
    assert entry.system_comment is not None
    assert entry.system_comment.startswith("Out-of-band change")
    assert change.what in entry.system_comment
    assert entry.system_comment.endswith("(seen by the reconciler)")

    suffix = stage.upper()
    assert [e.event for e in events] == [
        "OUT_OF_BAND_CHANGE",
        "MODEL_VERSION_TRANSITIONED_STAGE",
        f"MODEL_VERSION_TRANSITIONED_TO_{suffix}",
    ]
    assert [e.event_id for e in events] == [
        "oob-abc/OUT_OF_BAND_CHANGE",
        "oob-abc/MODEL_VERSION_TRANSITIONED_STAGE",
        f"oob-abc/MODEL_VERSION_TRANSITIONED_TO_{suffix}",
    ]
    for event in events:
        assert (event.model_name, event.version) == (MODEL, "3")
        assert (event.from_stage, event.to_stage) == ("None", stage)
        assert event.text == entry.system_comment
        assert event.event_timestamp == T0
        assert event.request_id is None and event.request_url is None


def test_out_of_band_stage_change_to_none_has_only_the_generic_transition() -> None:
    change = Change("stage changed from Production to None", "Production", "None", True)
    _, events = out_of_band("x", MODEL, "3", change, seen_by="MLflow's webhook", now_ms=T0)
    assert [e.event for e in events] == ["OUT_OF_BAND_CHANGE", "MODEL_VERSION_TRANSITIONED_STAGE"]


@pytest.mark.parametrize(
    "change",
    [
        Change("alias @champion set on this version", to_stage="@champion"),
        Change("alias @champion removed from this version", from_stage="@champion"),
    ],
)
def test_out_of_band_alias_change_announces_only_out_of_band(change: Change) -> None:
    entry, events = out_of_band("al", MODEL, "3", change, seen_by="the reconciler", now_ms=T0)
    assert (entry.from_stage, entry.to_stage) == (change.from_stage, change.to_stage)
    assert [(e.event_id, e.event) for e in events] == [
        ("oob-al/OUT_OF_BAND_CHANGE", "OUT_OF_BAND_CHANGE")
    ]
    assert (events[0].from_stage, events[0].to_stage) == (change.from_stage, change.to_stage)


def test_out_of_band_ids_stable_for_the_same_change_id() -> None:
    change = Change("stage changed from None to Staging", "None", "Staging", True)
    first = out_of_band("same", MODEL, "3", change, seen_by="a", now_ms=T0)
    again = out_of_band("same", MODEL, "3", change, seen_by="b", now_ms=T0 + 60_000)
    other = out_of_band("other", MODEL, "3", change, seen_by="a", now_ms=T0)

    assert first[0].id == again[0].id
    assert [e.event_id for e in first[1]] == [e.event_id for e in again[1]]
    assert first[0].id != other[0].id
    assert not {e.event_id for e in first[1]} & {e.event_id for e in other[1]}


def test_stable_id_is_deterministic() -> None:
    a = stable_id(MODEL, "3", "stage changed from None to Staging", T0)
    assert a == stable_id(MODEL, "3", "stage changed from None to Staging", T0)
    assert len(a) == 24 and all(c in "0123456789abcdef" for c in a)
    assert a != stable_id(MODEL, "3", "stage changed from None to Staging", T0 + 1)
    assert a != stable_id(MODEL, "4", "stage changed from None to Staging", T0)
    # Parts are separated, not concatenated.
    assert stable_id("ab", "c") != stable_id("a", "bc")
    assert stable_id(3) == stable_id("3")


# --------------------------------------------------------------------------------------------
# Event builders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to_stage", "names"),
    [
        ("Staging", ["MODEL_VERSION_TRANSITIONED_TO_STAGING"]),
        ("Production", ["MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"]),
        ("Archived", ["MODEL_VERSION_TRANSITIONED_TO_ARCHIVED"]),
        ("None", []),
        ("@champion", []),
    ],
)
def test_transition_events(to_stage: str, names: list[str]) -> None:
    events = transition_events(
        "req-1-4",
        model=MODEL,
        version="3",
        to_stage=to_stage,
        from_stage="Staging",
        request_id="req-1",
        event_timestamp=T0,
    )
    expected = ["MODEL_VERSION_TRANSITIONED_STAGE", *names]
    assert [e.event for e in events] == expected
    assert [e.event_id for e in events] == [f"req-1-4/{name}" for name in expected]
    for event in events:
        assert (event.model_name, event.version) == (MODEL, "3")
        assert (event.from_stage, event.to_stage) == ("Staging", to_stage)
        assert (event.request_id, event.event_timestamp) == ("req-1", T0)


@pytest.mark.parametrize(
    ("to_stage", "names"),
    [
        ("Staging", ["TRANSITION_REQUEST_TO_STAGING_CREATED"]),
        ("Production", ["TRANSITION_REQUEST_TO_PRODUCTION_CREATED"]),
        ("Archived", ["TRANSITION_REQUEST_TO_ARCHIVED_CREATED"]),
        ("@champion", []),
        ("None", []),
    ],
)
def test_request_created_events(to_stage: str, names: list[str]) -> None:
    events = request_created_events(
        "req-2-0", model=MODEL, version="3", to_stage=to_stage, comment="please", event_timestamp=T0
    )
    expected = ["TRANSITION_REQUEST_CREATED", *names]
    assert [e.event for e in events] == expected
    assert [e.event_id for e in events] == [f"req-2-0/{name}" for name in expected]
    assert all(e.to_stage == to_stage and e.comment == "please" for e in events)


def event(**fields: object) -> WebhookEvent:
    fields.setdefault("event_timestamp", T0)
    return WebhookEvent(event_id="e-1", event="TRANSITION_REQUEST_APPROVED", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("public", ["https://signoff.example.com", "https://signoff.example.com/"])
def test_with_request_link_adds_the_request_page(public: str) -> None:
    linked = with_request_link(event(request_id="req-9"), public)
    assert linked.request_url == "https://signoff.example.com/ui/requests/req-9"
    assert linked.request_id == "req-9"


def test_with_request_link_keeps_a_path_prefix() -> None:
    linked = with_request_link(event(request_id="r"), "https://example.com/signoff/")
    assert linked.request_url == "https://example.com/signoff/ui/requests/r"


def test_with_request_link_leaves_the_event_otherwise() -> None:
    public = "https://signoff.example.com"
    no_request = event()
    assert with_request_link(no_request, public).request_url is None
    empty_request = event(request_id="")
    assert with_request_link(empty_request, public).request_url is None
    has_url = event(request_id="req-9", request_url="https://elsewhere/x")
    assert with_request_link(has_url, public).request_url == "https://elsewhere/x"
    assert with_request_link(event(request_id="req-9"), None).request_url is None
    assert with_request_link(event(request_id="req-9"), "").request_url is None


def test_with_request_link_does_not_change_its_input() -> None:
    original = event(request_id="req-9")
    with_request_link(original, "https://signoff.example.com")
    assert original.request_url is None


def test_payload_for_omits_none_and_includes_request_id() -> None:
    body = payload_for(
        WebhookEvent(
            event_id="req-1-4/MODEL_VERSION_TRANSITIONED_STAGE",
            event="MODEL_VERSION_TRANSITIONED_STAGE",
            model_name=MODEL,
            version="3",
            to_stage="Production",
            request_id="req-1",
            event_timestamp=T0,
        ),
        "wh-1",
    )
    assert body == {
        "event": "MODEL_VERSION_TRANSITIONED_STAGE",
        "webhook_id": "wh-1",
        "event_timestamp": T0,
        "model_name": MODEL,
        "version": "3",
        "to_stage": "Production",
        "request_id": "req-1",
    }
    assert "event_id" not in body


def test_payload_for_keeps_empty_strings_and_every_field() -> None:
    full = WebhookEvent(
        event_id="x",
        event="COMMENT_CREATED",
        model_name=MODEL,
        version="3",
        from_stage="Staging",
        to_stage="Production",
        comment="",
        text="t",
        request_id="r",
        request_url="https://s/ui/requests/r",
        event_timestamp=T0,
    )
    assert payload_for(full, "wh") == {
        "event": "COMMENT_CREATED",
        "webhook_id": "wh",
        "event_timestamp": T0,
        "model_name": MODEL,
        "version": "3",
        "from_stage": "Staging",
        "to_stage": "Production",
        "comment": "",
        "text": "t",
        "request_id": "r",
        "request_url": "https://s/ui/requests/r",
    }
    minimal = WebhookEvent(event_id="y", event="REGISTERED_MODEL_CREATED", event_timestamp=T0)
    assert payload_for(minimal, "wh") == {
        "event": "REGISTERED_MODEL_CREATED",
        "webhook_id": "wh",
        "event_timestamp": T0,
    }


# --------------------------------------------------------------------------------------------
# One real pass after another: MLflow server, SQLite ledger, Temporal dev server
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def sqlite_ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    store = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    await store.migrate()
    try:
        yield store
    finally:
        store.dispose()


async def test_reconcile_registry_records_an_out_of_band_stage_change_once(
    mlflow_server: MlflowServer,
    temporal_server: TemporalServer,
    make_version: Callable[..., SeededVersion],
    sqlite_ledger: Ledger,
) -> None:
    ledger = sqlite_ledger
    seeded = make_version()
    name, number = seeded.name, seeded.version
    task_queue = f"reconciler-test-{uuid.uuid4().hex[:8]}"  # no worker polls it
    # A webhook on this model, so the change is announced to someone (deliveries are rows).
    hook_id = f"wh-{uuid.uuid4().hex[:8]}"
    await ledger.webhooks.add(
        webhook_id=hook_id,
        model_name=name,
        events=["OUT_OF_BAND_CHANGE", "MODEL_VERSION_TRANSITIONED_TO_STAGING"],
        description=None,
        status="ACTIVE",
        url="http://127.0.0.1:9/unused",
        enable_ssl_verification=True,
        secret_enc=None,
        authorization_enc=None,
        created_by="tests",
        now_ms=T0,
    )

    client = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    env = ActivityEnvironment(client=client)
    async with MlflowRegistry(mlflow_server.url) as registry:
        activities = ReconcileActivities(registry, ledger, task_queue)

        # 1. Baseline: the registry is taken as it is, nothing is reported.
        first = await env.run(activities.reconcile_registry)
        assert first.baseline is True and first.changes == 0
        assert first.versions >= 1
        mark = await ledger.marks.get(name, number)
        assert mark is not None and (mark.stage, mark.aliases) == ("None", [])

        # 2. Nothing changed: no changes, a non-baseline run recorded.
        second = await env.run(activities.reconcile_registry)
        assert second.baseline is False and second.changes == 0
        runs = await ledger.runs.latest()
        assert [(r.baseline, r.changes) for r in runs] == [(False, 0), (True, 0)]
        assert runs[0].versions == second.versions
        assert await ledger.requests.audit_trail(name, number) == []

        # 3. A stage change made directly in MLflow, behind Signoff's back.
        moved = await registry.transition_stage(
            name, number, "Staging", archive_existing_versions=False
        )
        assert moved.current_stage == "Staging"
        third = await env.run(activities.reconcile_registry)
        assert third.baseline is False and third.changes >= 1

        logged = await ledger.requests.audit_trail(name, number)
        assert len(logged) == 1
        entry = logged[0]
        assert entry.activity_type == AuditType.SYSTEM_TRANSITION
        assert entry.id.startswith("oob-")
        assert (entry.user_id, entry.request_id) == ("mlflow", "")
        assert (entry.from_stage, entry.to_stage) == ("None", "Staging")
        assert entry.system_comment and entry.system_comment.startswith("Out-of-band change")
        assert "seen by the reconciler" in entry.system_comment

        actual = await registry.get_model_version(name, number)
        mark = await ledger.marks.get(name, number)
        assert mark is not None
        assert (mark.stage, sorted(mark.aliases)) == (actual.current_stage, actual.aliases)
        assert mark.stage == "Staging"

        deliveries = await ledger.webhooks.deliveries(hook_id)
        assert sorted(d.event for d in deliveries) == [
            "MODEL_VERSION_TRANSITIONED_TO_STAGING",
            "OUT_OF_BAND_CHANGE",
        ]
        for delivery in deliveries:
            assert delivery.payload["model_name"] == name
            assert delivery.payload["to_stage"] == "Staging"
            assert delivery.payload["webhook_id"] == hook_id

        # 4. Seen once: another pass records nothing new for the version.
        fourth = await env.run(activities.reconcile_registry)
        assert fourth.baseline is False
        assert await ledger.requests.audit_trail(name, number) == logged
        assert len(await ledger.webhooks.deliveries(hook_id)) == 2
        again = await ledger.marks.get(name, number)
        assert again is not None and (again.stage, again.aliases) == ("Staging", [])
        assert len(await ledger.runs.latest()) == 4

    # The deliveries' workflows wait on a task queue no worker polls: end them.
    for delivery in deliveries:
        await client.get_workflow_handle(delivery_workflow_id(delivery.id)).terminate(
            reason="test over"
        )


async def test_a_pass_heartbeats_after_each_page_of_the_registry(
    mlflow_server: MlflowServer,
    temporal_server: TemporalServer,
    make_version: Callable[..., SeededVersion],
    sqlite_ledger: Ledger,
) -> None:
    """The registry is read a page at a time and the pass heartbeats after each page, so the
    workflow's heartbeat timeout catches a stuck pass, and a registry of many pages is not
    one silent 10-minute call."""
    for _ in range(3):
        make_version()
    client = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    env = ActivityEnvironment(client=client)
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    async with MlflowRegistry(mlflow_server.url) as registry:
        activities = ReconcileActivities(
            registry, sqlite_ledger, f"reconciler-test-{uuid.uuid4().hex[:8]}", page_size=1
        )

        summary = await env.run(activities.reconcile_registry)

    assert summary.versions >= 3
    progress = [details[0] for details in beats if details]
    assert progress == list(range(1, summary.versions + 1))  # one per page of one version


async def test_a_pass_over_several_pages_completes_under_a_short_heartbeat_timeout(
    mlflow_server: MlflowServer,
    temporal_server: TemporalServer,
    make_version: Callable[..., SeededVersion],
    sqlite_ledger: Ledger,
) -> None:
    """The real thing on the dev server: a worker runs the pass as an activity with a short
    heartbeat timeout, over about four pages of the (shared, ever-growing) registry, and a pass
    slower than that timeout (each page waits) still completes, on its first attempt."""
    for _ in range(3):
        make_version()
    client = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    task_queue = f"reconciler-test-{uuid.uuid4().hex[:8]}"
    async with SlowRegistry(mlflow_server.url, delay_s=SLOW_PAGE_S) as registry:
        page_size = -(-len(await registry.all_model_versions()) // 4)
        activities = ReconcileActivities(registry, sqlite_ledger, task_queue, page_size=page_size)
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[ShortHeartbeatPass],
            activities=[activities.reconcile_registry],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            handle = await client.start_workflow(
                ShortHeartbeatPass.run, id=f"pass-{uuid.uuid4().hex}", task_queue=task_queue
            )
            summary = await handle.result()

    assert summary.versions >= 3
    # Longer than the heartbeat timeout in all (each page is within it).
    assert registry.pages >= 3 and registry.pages * SLOW_PAGE_S > SHORT_HEARTBEAT_S
    events = [e async for e in handle.fetch_history_events()]
    [started] = [e for e in events if e.HasField("activity_task_started_event_attributes")]
    assert started.activity_task_started_event_attributes.attempt == 1


SHORT_HEARTBEAT_S = 4.0
SLOW_PAGE_S = 1.5


class SlowRegistry(MlflowRegistry):
    """The real MLflow client, over a slow link: each page of versions arrives `delay_s` late
    (the time a page of a big registry takes)."""

    def __init__(self, url: str, *, delay_s: float) -> None:
        super().__init__(url)
        self.delay_s = delay_s
        self.pages = 0

    async def model_version_pages(self, page_size: int = 1000) -> AsyncIterator[list[ModelVersion]]:
        async for page in super().model_version_pages(page_size):
            await asyncio.sleep(self.delay_s)
            self.pages += 1
            yield page


@workflow.defn(sandboxed=False)
class ShortHeartbeatPass:
    @workflow.run
    async def run(self) -> ReconcileSummary:
        return await workflow.execute_activity_method(
            ReconcileActivities.reconcile_registry,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=SHORT_HEARTBEAT_S),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
