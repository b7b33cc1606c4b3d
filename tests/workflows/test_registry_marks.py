"""The ledger's registry marks, inbound-hook claims, free-standing audit entries and reconciler
runs, on a real SQLite file and a real PostgreSQL database (the `ledger` fixture runs every
test on both)."""

from __future__ import annotations

from typing import Any

from workflows.domain import AuditEntry, AuditType
from workflows.ledger import PENDING_GRACE_MS, InboundHook, Ledger, RegistryMark

T0 = 1_700_000_000_000  # epoch ms
MODEL = "fraud-detector"


async def marks_of(ledger: Ledger, model: str = MODEL) -> dict[str, tuple[str, list[str]]]:
    """{version: (stage, aliases)} of the model's marks."""
    return {m.version: (m.stage, list(m.aliases or [])) for m in await ledger.marks.of_model(model)}


def pending_of(mark: RegistryMark | None) -> tuple[str | None, str | None, int | None]:
    assert mark is not None
    return mark.pending_request, mark.pending_target, mark.pending_ms


# --------------------------------------------------------------------------------------------
# Registry marks
# --------------------------------------------------------------------------------------------


async def test_get_mark_of_unknown_version_is_none(ledger: Ledger) -> None:
    assert await ledger.marks.get(MODEL, "1") is None
    assert await ledger.marks.of_model(MODEL) == []
    assert await ledger.marks.all() == {}


async def test_mark_pending_creates_mark_in_current_stage(ledger: Ledger) -> None:
    await ledger.marks.set_pending(
        model=MODEL,
        version="1",
        request_id="req-1",
        target="Production",
        stage="Staging",
        now_ms=T0,
    )
    mark = await ledger.marks.get(MODEL, "1")
    assert mark is not None
    assert (mark.model_name, mark.version, mark.stage, mark.aliases) == (
        MODEL,
        "1",
        "Staging",
        [],
    )
    assert pending_of(mark) == ("req-1", "Production", T0)
    assert mark.updated_ms == T0


async def test_mark_pending_on_existing_mark_keeps_its_stage_and_aliases(ledger: Ledger) -> None:
    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Staging", aliases=["champion"], now_ms=T0
    )
    # The `stage` argument only seeds a new mark: the expected state is not changed by it.
    await ledger.marks.set_pending(
        model=MODEL,
        version="1",
        request_id="req-2",
        target="Production",
        stage="None",
        now_ms=T0 + 5,
    )
    mark = await ledger.marks.get(MODEL, "1")
    assert mark is not None
    assert (mark.stage, mark.aliases) == ("Staging", ["champion"])
    assert pending_of(mark) == ("req-2", "Production", T0 + 5)


async def test_mark_applied_stage_target_sets_stage_and_clears_matching_pending(
    ledger: Ledger,
) -> None:
    await ledger.marks.set_pending(
        model=MODEL, version="1", request_id="req-1", target="Staging", stage="None", now_ms=T0
    )
    await ledger.marks.set_applied(
        model=MODEL,
        version="1",
        target="Staging",
        archive_others=False,
        now_ms=T0 + 10,
        request_id="req-1",
    )
    mark = await ledger.marks.get(MODEL, "1")
    assert mark is not None
    assert (mark.stage, mark.aliases, mark.updated_ms) == ("Staging", [], T0 + 10)
    assert pending_of(mark) == (None, None, None)


async def test_mark_applied_without_prior_mark_creates_one(ledger: Ledger) -> None:
    await ledger.marks.set_applied(
        model=MODEL, version="3", target="Production", archive_others=False, now_ms=T0
    )
    mark = await ledger.marks.get(MODEL, "3")
    assert mark is not None
    assert (mark.stage, mark.aliases, mark.updated_ms) == ("Production", [], T0)
    assert pending_of(mark) == (None, None, None)


async def test_mark_applied_keeps_pending_of_another_request(ledger: Ledger) -> None:
    await ledger.marks.set_pending(
        model=MODEL, version="1", request_id="req-B", target="Staging", stage="None", now_ms=T0
    )
    await ledger.marks.set_applied(
        model=MODEL,
        version="1",
        target="Staging",
        archive_others=False,
        now_ms=T0 + 1,
        request_id="req-A",
    )
    mark = await ledger.marks.get(MODEL, "1")
    assert mark is not None
    assert mark.stage == "Staging"
    assert pending_of(mark) == ("req-B", "Staging", T0)


async def test_mark_applied_without_request_id_clears_any_pending(ledger: Ledger) -> None:
    await ledger.marks.set_pending(
        model=MODEL, version="1", request_id="req-B", target="Staging", stage="None", now_ms=T0
    )
    await ledger.marks.set_applied(
        model=MODEL, version="1", target="Staging", archive_others=False, now_ms=T0 + 1
    )
    assert pending_of(await ledger.marks.get(MODEL, "1")) == (None, None, None)


async def test_mark_applied_alias_moves_it_off_other_versions(ledger: Ledger) -> None:
    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Production", aliases=["champion", "stable"], now_ms=T0
    )
    await ledger.marks.set_observed(
        model=MODEL, version="2", stage="Staging", aliases=["challenger"], now_ms=T0
    )
    await ledger.marks.set_observed(
        model="other-model", version="1", stage="None", aliases=["champion"], now_ms=T0
    )

    await ledger.marks.set_applied(
        model=MODEL, version="2", target="@champion", archive_others=True, now_ms=T0 + 1
    )

    assert await marks_of(ledger) == {
        "1": ("Production", ["stable"]),
        "2": ("Staging", ["challenger", "champion"]),  # stage untouched, aliases sorted
    }
    # Another model's alias of the same name is its own.
    assert await marks_of(ledger, "other-model") == {"1": ("None", ["champion"])}


async def test_mark_applied_alias_on_new_version_keeps_stage_none(ledger: Ledger) -> None:
    await ledger.marks.set_applied(
        model=MODEL, version="5", target="@champion", archive_others=False, now_ms=T0
    )
    assert await marks_of(ledger) == {"5": ("None", ["champion"])}


async def test_mark_applied_alias_twice_keeps_one(ledger: Ledger) -> None:
    for now in (T0, T0 + 1):
        await ledger.marks.set_applied(
            model=MODEL, version="1", target="@champion", archive_others=False, now_ms=now
        )
    assert await marks_of(ledger) == {"1": ("None", ["champion"])}


async def test_mark_applied_archive_others_archives_that_stage_only(ledger: Ledger) -> None:
    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Production", aliases=[], now_ms=T0
    )
    await ledger.marks.set_observed(
        model=MODEL, version="2", stage="Production", aliases=["champion"], now_ms=T0
    )
    await ledger.marks.set_observed(
        model=MODEL, version="3", stage="Staging", aliases=[], now_ms=T0
    )
    await ledger.marks.set_observed(
        model="other-model", version="1", stage="Production", aliases=[], now_ms=T0
    )

    await ledger.marks.set_applied(
        model=MODEL, version="3", target="Production", archive_others=True, now_ms=T0 + 1
    )

    assert await marks_of(ledger) == {
        "1": ("Archived", []),
        "2": ("Archived", ["champion"]),
        "3": ("Production", []),
    }
    assert await marks_of(ledger, "other-model") == {"1": ("Production", [])}


async def test_mark_applied_staging_with_archive_others(ledger: Ledger) -> None:
    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Staging", aliases=[], now_ms=T0
    )
    await ledger.marks.set_observed(
        model=MODEL, version="2", stage="Production", aliases=[], now_ms=T0
    )
    await ledger.marks.set_applied(
        model=MODEL, version="3", target="Staging", archive_others=True, now_ms=T0 + 1
    )
    assert await marks_of(ledger) == {
        "1": ("Archived", []),
        "2": ("Production", []),
        "3": ("Staging", []),
    }


async def test_mark_applied_without_archive_others_leaves_other_versions(ledger: Ledger) -> None:
    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Production", aliases=[], now_ms=T0
    )
    await ledger.marks.set_applied(
        model=MODEL, version="2", target="Production", archive_others=False, now_ms=T0 + 1
    )
    assert await marks_of(ledger) == {"1": ("Production", []), "2": ("Production", [])}


async def test_archive_others_does_nothing_for_archived_or_none(ledger: Ledger) -> None:
    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Archived", aliases=[], now_ms=T0
    )
    await ledger.marks.set_observed(model=MODEL, version="2", stage="None", aliases=[], now_ms=T0)
    await ledger.marks.set_observed(
        model=MODEL, version="3", stage="Production", aliases=[], now_ms=T0
    )
    await ledger.marks.set_observed(
        model=MODEL, version="4", stage="Production", aliases=[], now_ms=T0
    )

    await ledger.marks.set_applied(
        model=MODEL, version="3", target="Archived", archive_others=True, now_ms=T0 + 1
    )
    await ledger.marks.set_applied(
        model=MODEL, version="4", target="None", archive_others=True, now_ms=T0 + 2
    )

    assert await marks_of(ledger) == {
        "1": ("Archived", []),
        "2": ("None", []),
        "3": ("Archived", []),
        "4": ("None", []),
    }


async def test_clear_pending_only_for_the_matching_request(ledger: Ledger) -> None:
    await ledger.marks.set_pending(
        model=MODEL, version="1", request_id="req-1", target="Staging", stage="None", now_ms=T0
    )

    await ledger.marks.clear_pending(model=MODEL, version="1", request_id="req-other")
    assert pending_of(await ledger.marks.get(MODEL, "1")) == ("req-1", "Staging", T0)

    await ledger.marks.clear_pending(model=MODEL, version="1", request_id="req-1")
    mark = await ledger.marks.get(MODEL, "1")
    assert pending_of(mark) == (None, None, None)
    assert mark is not None and mark.stage == "None"  # nothing else changes


async def test_clear_pending_of_unknown_version_does_nothing(ledger: Ledger) -> None:
    await ledger.marks.clear_pending(model=MODEL, version="404", request_id="req-1")
    assert await ledger.marks.get(MODEL, "404") is None


async def test_mark_observed_creates_and_overwrites(ledger: Ledger) -> None:
    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Staging", aliases=["b", "a"], now_ms=T0
    )
    mark = await ledger.marks.get(MODEL, "1")
    assert mark is not None
    assert (mark.stage, mark.aliases, mark.updated_ms) == ("Staging", ["a", "b"], T0)

    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Production", aliases=[], now_ms=T0 + 7
    )
    mark = await ledger.marks.get(MODEL, "1")
    assert mark is not None
    assert (mark.stage, mark.aliases, mark.updated_ms) == ("Production", [], T0 + 7)


async def test_mark_observed_takes_its_aliases_off_other_versions(ledger: Ledger) -> None:
    await ledger.marks.set_observed(
        model=MODEL, version="1", stage="Production", aliases=["champion", "stable"], now_ms=T0
    )
    await ledger.marks.set_observed(
        model=MODEL, version="2", stage="Staging", aliases=["challenger"], now_ms=T0
    )
    await ledger.marks.set_observed(
        model="other-model", version="9", stage="None", aliases=["champion"], now_ms=T0
    )

    await ledger.marks.set_observed(
        model=MODEL, version="3", stage="None", aliases=["champion", "challenger"], now_ms=T0
    )

    assert await marks_of(ledger) == {
        "1": ("Production", ["stable"]),
        "2": ("Staging", []),
        "3": ("None", ["challenger", "champion"]),
    }
    assert await marks_of(ledger, "other-model") == {"9": ("None", ["champion"])}


async def test_model_marks_and_all_marks(ledger: Ledger) -> None:
    await ledger.marks.set_observed(model=MODEL, version="1", stage="None", aliases=[], now_ms=T0)
    await ledger.marks.set_observed(
        model=MODEL, version="2", stage="Staging", aliases=[], now_ms=T0
    )
    await ledger.marks.set_pending(
        model="other-model", version="1", request_id="r", target="@x", stage="None", now_ms=T0
    )

    assert sorted(m.version for m in await ledger.marks.of_model(MODEL)) == ["1", "2"]
    assert [m.version for m in await ledger.marks.of_model("other-model")] == ["1"]
    assert await ledger.marks.of_model("nobody") == []

    everything = await ledger.marks.all()
    assert set(everything) == {(MODEL, "1"), (MODEL, "2"), ("other-model", "1")}
    assert everything[(MODEL, "2")].stage == "Staging"
    assert everything[("other-model", "1")].pending_target == "@x"


async def test_marks_round_trip_awkward_names(ledger: Ledger) -> None:
    model = "team/mödel 'quoted' ✓"
    await ledger.marks.set_observed(
        model=model, version="12", stage="Staging", aliases=["blue-green", "v1.2"], now_ms=T0
    )
    mark = await ledger.marks.get(model, "12")
    assert mark is not None
    assert mark.aliases == ["blue-green", "v1.2"]
    assert list(await ledger.marks.all()) == [(model, "12")]


# --------------------------------------------------------------------------------------------
# Inbound hooks
# --------------------------------------------------------------------------------------------


def inbound(
    hook_id: str,
    *,
    source: str = "decision",
    message_id: str | None = "msg-1",
    received_ms: int = T0,
    **fields: Any,
) -> dict[str, Any]:
    """The keyword arguments of one inbound message, for `ledger.inbound.claim` (the claim is
    "<source>/<message_id>") or, with an `outcome`, `ledger.inbound.record`."""
    return {
        "hook_id": hook_id,
        "source": source,
        "message_id": message_id,
        "received_ms": received_ms,
        **fields,
    }


async def inbound_by_id(ledger: Ledger) -> dict[str, InboundHook]:
    return {row.id: row for row in await ledger.inbound.recent()}


async def test_claim_inbound_first_wins_replay_refused(ledger: Ledger) -> None:
    assert await ledger.inbound.claim(**inbound("in-1")) is True
    assert await ledger.inbound.claim(**inbound("in-2", received_ms=T0 + 1)) is False

    rows = await inbound_by_id(ledger)
    assert set(rows) == {"in-1"}  # the replay left no row
    assert rows["in-1"].claim == "decision/msg-1"
    assert rows["in-1"].outcome == "PROCESSING"


async def test_claims_are_per_source_and_message(ledger: Ledger) -> None:
    assert await ledger.inbound.claim(**inbound("in-1", source="decision", message_id="m"))
    assert await ledger.inbound.claim(**inbound("in-2", source="mlflow", message_id="m"))
    assert await ledger.inbound.claim(**inbound("in-3", source="decision", message_id="n"))
    assert set(await inbound_by_id(ledger)) == {"in-1", "in-2", "in-3"}


async def test_recent_processing_claim_is_not_taken_over(ledger: Ledger) -> None:
    assert await ledger.inbound.claim(**inbound("in-1"), stale_after_ms=1_000)
    assert not await ledger.inbound.claim(
        **inbound("in-2", received_ms=T0 + 999), stale_after_ms=1_000
    )
    rows = await inbound_by_id(ledger)
    assert set(rows) == {"in-1"}
    assert (rows["in-1"].outcome, rows["in-1"].claim) == ("PROCESSING", "decision/msg-1")


async def test_stale_processing_claim_is_taken_over(ledger: Ledger) -> None:
    assert await ledger.inbound.claim(**inbound("in-1"), stale_after_ms=1_000)
    assert await ledger.inbound.claim(
        **inbound("in-2", received_ms=T0 + 1_000), stale_after_ms=1_000
    )

    rows = await inbound_by_id(ledger)
    assert set(rows) == {"in-1", "in-2"}
    old, new = rows["in-1"], rows["in-2"]
    assert (old.outcome, old.claim) == ("ERROR", None)
    assert old.reason and "abandoned" in old.reason
    assert (new.outcome, new.claim) == ("PROCESSING", "decision/msg-1")
    # And the new holder is itself protected from a replay.
    assert not await ledger.inbound.claim(
        **inbound("in-3", received_ms=T0 + 1_001), stale_after_ms=1_000
    )


async def test_stale_after_defaults_to_two_minutes(ledger: Ledger) -> None:
    assert await ledger.inbound.claim(**inbound("in-1"))
    assert not await ledger.inbound.claim(**inbound("in-2", received_ms=T0 + 119_999))
    assert await ledger.inbound.claim(**inbound("in-3", received_ms=T0 + 120_000))


async def test_finished_claims_are_never_taken_over(ledger: Ledger) -> None:
    for outcome, message_id in (("ACCEPTED", "a"), ("REFUSED", "r")):
        assert await ledger.inbound.claim(**inbound(f"in-{message_id}", message_id=message_id))
        await ledger.inbound.finish(hook_id=f"in-{message_id}", outcome=outcome, reason=None)
        late = inbound(f"late-{message_id}", message_id=message_id, received_ms=T0 + 10**9)
        assert await ledger.inbound.claim(**late, stale_after_ms=1) is False

    rows = await inbound_by_id(ledger)
    assert set(rows) == {"in-a", "in-r"}
    assert (rows["in-a"].outcome, rows["in-a"].claim) == ("ACCEPTED", "decision/a")
    assert (rows["in-r"].outcome, rows["in-r"].claim) == ("REFUSED", "decision/r")


async def test_finish_inbound_sets_outcome_and_fields(ledger: Ledger) -> None:
    assert await ledger.inbound.claim(**inbound("in-1"))
    await ledger.inbound.finish(
        hook_id="in-1",
        outcome="ACCEPTED",
        reason="approved",
        event="TRANSITION_REQUEST_APPROVED",
        user_id="bob@example.com",
        request_id="req-9",
    )
    row = (await inbound_by_id(ledger))["in-1"]
    assert (row.outcome, row.reason, row.claim) == ("ACCEPTED", "approved", "decision/msg-1")
    assert (row.event, row.user_id, row.request_id) == (
        "TRANSITION_REQUEST_APPROVED",
        "bob@example.com",
        "req-9",
    )


async def test_finish_inbound_error_releases_the_claim(ledger: Ledger) -> None:
    assert await ledger.inbound.claim(**inbound("in-1"))
    await ledger.inbound.finish(hook_id="in-1", outcome="ERROR", reason="temporal unavailable")
    row = (await inbound_by_id(ledger))["in-1"]
    assert (row.outcome, row.reason, row.claim) == ("ERROR", "temporal unavailable", None)

    # The sender's retry is processed, at once (no need to wait for staleness).
    assert await ledger.inbound.claim(**inbound("in-2", received_ms=T0 + 1))
    assert (await inbound_by_id(ledger))["in-2"].claim == "decision/msg-1"


async def test_finish_inbound_of_unknown_row_does_nothing(ledger: Ledger) -> None:
    await ledger.inbound.finish(hook_id="nope", outcome="ACCEPTED", reason=None)
    assert await ledger.inbound.recent() == []


async def test_record_inbound_never_claims(ledger: Ledger) -> None:
    await ledger.inbound.record(**inbound("in-forged", outcome="REFUSED", reason="bad signature"))
    row = (await inbound_by_id(ledger))["in-forged"]
    assert (row.claim, row.outcome, row.reason) == (None, "REFUSED", "bad signature")

    # A forged message never uses up the id of a genuine one.
    assert await ledger.inbound.claim(**inbound("in-genuine", received_ms=T0 + 1))
    # Refused messages without a claim can be recorded any number of times.
    await ledger.inbound.record(**inbound("in-forged-2", outcome="REFUSED", received_ms=T0 + 2))
    assert set(await inbound_by_id(ledger)) == {"in-forged", "in-genuine", "in-forged-2"}


async def test_list_inbound_newest_first_filtered_and_limited(ledger: Ledger) -> None:
    await ledger.inbound.claim(**inbound("d-1", source="decision", message_id="1", received_ms=T0))
    await ledger.inbound.claim(
        **inbound("m-1", source="mlflow", message_id="1", received_ms=T0 + 10)
    )
    await ledger.inbound.record(
        **inbound("d-2", source="decision", message_id=None, received_ms=T0 + 20),
        outcome="PROCESSING",
    )
    await ledger.inbound.claim(
        **inbound("m-2", source="mlflow", message_id="2", received_ms=T0 + 30)
    )

    assert [r.id for r in await ledger.inbound.recent()] == ["m-2", "d-2", "m-1", "d-1"]
    assert [r.id for r in await ledger.inbound.recent(source="decision")] == ["d-2", "d-1"]
    assert [r.id for r in await ledger.inbound.recent(source="mlflow")] == ["m-2", "m-1"]
    assert await ledger.inbound.recent(source="nobody") == []
    assert [r.id for r in await ledger.inbound.recent(limit=2)] == ["m-2", "d-2"]
    assert [r.id for r in await ledger.inbound.recent(source="decision", limit=1)] == ["d-2"]


# --------------------------------------------------------------------------------------------
# Activities that belong to no request
# --------------------------------------------------------------------------------------------


def system_entry(entry_id: str, *, version: str = "1", ts: int = T0, **fields: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "id": entry_id,
        "request_id": "",
        "seq": 0,
        "model": MODEL,
        "version": version,
        "activity_type": AuditType.SYSTEM_TRANSITION,
        "user_id": "mlflow",
        "from_stage": "None",
        "to_stage": "Production",
        "system_comment": "Out-of-band change: stage changed from None to Production",
        "creation_timestamp": ts,
    }
    return AuditEntry(**(values | fields))


async def test_append_activities_is_idempotent_by_id(ledger: Ledger) -> None:
    entry = system_entry("oob-1")
    await ledger.requests.append_entries(entries=[entry])
    await ledger.requests.append_entries(entries=[entry])
    # Same id, different content: the first write stands.
    await ledger.requests.append_entries(
        entries=[system_entry("oob-1", to_stage="Archived", ts=T0 + 5)]
    )

    assert await ledger.requests.audit_trail(MODEL, "1") == [entry]
    stored = (await ledger.requests.audit_trail(MODEL, "1"))[0]
    assert stored.request_id == ""  # stored as NULL, read back as ""
    assert stored.activity_type == AuditType.SYSTEM_TRANSITION


async def test_append_activities_batch_with_duplicates_inside(ledger: Ledger) -> None:
    a, b = system_entry("oob-a", ts=T0), system_entry("oob-b", ts=T0 + 1, to_stage="Staging")
    await ledger.requests.append_entries(entries=[a, b])
    await ledger.requests.append_entries(
        entries=[b, system_entry("oob-c", ts=T0 + 2, version="2"), a]
    )

    assert [e.id for e in await ledger.requests.audit_trail(MODEL, "1")] == ["oob-a", "oob-b"]
    assert [e.id for e in await ledger.requests.audit_trail(MODEL, "2")] == ["oob-c"]


async def test_append_activities_keeps_a_request_id(ledger: Ledger) -> None:
    entry = system_entry(
        "bg-1",
        request_id="req-7",
        activity_type=AuditType.APPLIED_TRANSITION,
        user_id="oncall@example.com",
        comment="break glass",
    )
    await ledger.requests.append_entries(entries=[entry])
    assert await ledger.requests.audit_trail(MODEL, "1") == [entry]


async def test_append_no_activities_does_nothing(ledger: Ledger) -> None:
    await ledger.requests.append_entries(entries=[])
    assert await ledger.requests.audit_trail(MODEL, "1") == []


# --------------------------------------------------------------------------------------------
# Reconciler runs
# --------------------------------------------------------------------------------------------


def run_row(run_id: str, started_ms: int, **fields: Any) -> dict[str, Any]:
    """The keyword arguments of `ledger.runs.add` for one pass."""
    values: dict[str, Any] = {"versions": 0, "changes": 0, "baseline": False}
    return {
        "run_id": run_id,
        "started_ms": started_ms,
        "finished_ms": started_ms + 50,
        **(values | fields),
    }


async def test_reconciler_runs_newest_first_with_limit(ledger: Ledger) -> None:
    assert await ledger.runs.latest() == []

    await ledger.runs.add(**run_row("r-1", T0, versions=10, changes=0, baseline=True))
    assert [run.id for run in await ledger.runs.latest()] == ["r-1"]

    await ledger.runs.add(**run_row("r-3", T0 + 2_000, versions=11, changes=2))
    await ledger.runs.add(**run_row("r-2", T0 + 1_000, versions=10, changes=0))

    runs = await ledger.runs.latest()
    assert [r.id for r in runs] == ["r-3", "r-2", "r-1"]
    assert [(r.versions, r.changes, r.baseline) for r in runs] == [
        (11, 2, False),
        (10, 0, False),
        (10, 0, True),
    ]
    assert runs[0].finished_ms == T0 + 2_050
    assert [r.id for r in await ledger.runs.latest(limit=2)] == ["r-3", "r-2"]
    assert [r.id for r in await ledger.runs.latest(limit=1)] == ["r-3"]


async def test_mark_observed_ends_a_pending_mark_only_once_it_is_stale(ledger: Ledger) -> None:
    await ledger.marks.set_pending(
        model="m", version="1", request_id="r1", target="@x", stage="None", now_ms=T0
    )
    await ledger.marks.set_observed(
        model="m", version="1", stage="None", aliases=[], now_ms=T0 + 1000
    )
    mark = await ledger.marks.get("m", "1")
    assert mark is not None and mark.pending_target == "@x"  # still being applied

    await ledger.marks.set_observed(
        model="m", version="1", stage="None", aliases=[], now_ms=T0 + PENDING_GRACE_MS
    )
    mark = await ledger.marks.get("m", "1")
    assert mark is not None
    assert (mark.pending_request, mark.pending_target, mark.pending_ms) == (None, None, None)


async def test_an_exclusive_mark_is_refused_while_another_move_holds_it(ledger: Ledger) -> None:
    async def mark(request_id: str, now_ms: int, exclusive: bool = True) -> bool:
        return await ledger.marks.set_pending(
            model="m",
            version="1",
            request_id=request_id,
            target="Production",
            stage="None",
            now_ms=now_ms,
            exclusive=exclusive,
        )

    assert await mark("a", T0) is True  # creates the mark
    assert await mark("b", T0 + 1) is False  # held by a
    held = await ledger.marks.get("m", "1")
    assert held is not None and held.pending_request == "a"
    assert await mark("a", T0 + 2) is True  # the holder again (its own retry)
    assert await mark("b", T0 + 2 + PENDING_GRACE_MS) is True  # a never came back: stale
    assert await mark("c", T0 + 3 + PENDING_GRACE_MS, exclusive=False) is True  # governed: no check
    await ledger.marks.clear_pending(model="m", version="1", request_id="c")
    assert await mark("d", T0 + 4 + PENDING_GRACE_MS) is True  # free again


async def test_an_event_goes_only_to_webhooks_that_existed_when_it_happened(ledger: Ledger) -> None:
    def hook(hook_id: str, created_ms: int) -> dict[str, Any]:
        return {
            "webhook_id": hook_id,
            "model_name": "m",
            "events": ["COMMENT_CREATED"],
            "description": None,
            "status": "ACTIVE",
            "url": "https://receiver.example/hook",
            "enable_ssl_verification": True,
            "secret_enc": None,
            "authorization_enc": None,
            "created_by": "ada",
            "now_ms": created_ms,
        }

    await ledger.webhooks.add(**hook("early", T0))
    await ledger.webhooks.add(**hook("late", T0 + 10_000))
    matching = ledger.webhooks.matching
    assert [h.id for h in await matching("COMMENT_CREATED", "m", T0 + 5_000)] == ["early"]
    assert sorted(h.id for h in await matching("COMMENT_CREATED", "m", T0 + 10_000)) == [
        "early",
        "late",
    ]
    assert sorted(h.id for h in await matching("COMMENT_CREATED", "m")) == ["early", "late"]


async def test_activities_since_lists_one_type_from_a_time_on(ledger: Ledger) -> None:
    await ledger.requests.append_entries(
        entries=[
            system_entry("old", ts=T0),
            system_entry("new", ts=T0 + 1_000),
        ]
    )
    found = await ledger.requests.entries_since(AuditType.SYSTEM_TRANSITION, T0 + 1)
    assert [entry.id for entry in found] == ["new"]
    assert await ledger.requests.entries_since(AuditType.NEW_COMMENT, T0) == []
