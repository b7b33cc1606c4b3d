"""The ledger's registry marks, inbound-hook claims, free-standing activities and reconciler
runs, on a real SQLite file and a real PostgreSQL database (the `ledger` fixture runs every
test on both)."""

from __future__ import annotations

from typing import Any

from workflows.domain import AuditEntry, AuditType
from workflows.ledger import Ledger
from workflows.ledger.models import (
    InboundHookRow,
    ReconcilerRunRow,
    RegistryMarkRow,
    WebhookRow,
)
from workflows.ledger.store import PENDING_GRACE_MS

T0 = 1_700_000_000_000  # epoch ms
MODEL = "fraud-detector"


def marks_of(ledger: Ledger, model: str = MODEL) -> dict[str, tuple[str, list[str]]]:
    """{version: (stage, aliases)} of the model's marks."""
    return {m.version: (m.stage, list(m.aliases or [])) for m in ledger.model_marks(model)}


def pending_of(mark: RegistryMarkRow | None) -> tuple[str | None, str | None, int | None]:
    assert mark is not None
    return mark.pending_request, mark.pending_target, mark.pending_ms


# --------------------------------------------------------------------------------------------
# Registry marks
# --------------------------------------------------------------------------------------------


def test_get_mark_of_unknown_version_is_none(ledger: Ledger) -> None:
    assert ledger.get_mark(MODEL, "1") is None
    assert ledger.model_marks(MODEL) == []
    assert ledger.all_marks() == {}


def test_mark_pending_creates_mark_in_current_stage(ledger: Ledger) -> None:
    ledger.mark_pending(
        MODEL, "1", request_id="req-1", target="Production", stage="Staging", now_ms=T0
    )
    mark = ledger.get_mark(MODEL, "1")
    assert mark is not None
    assert (mark.model_name, mark.version, mark.stage, mark.aliases) == (
        MODEL,
        "1",
        "Staging",
        [],
    )
    assert pending_of(mark) == ("req-1", "Production", T0)
    assert mark.updated_ms == T0


def test_mark_pending_on_existing_mark_keeps_its_stage_and_aliases(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="Staging", aliases=["champion"], now_ms=T0)
    # The `stage` argument only seeds a new mark: the expected state is not changed by it.
    ledger.mark_pending(
        MODEL, "1", request_id="req-2", target="Production", stage="None", now_ms=T0 + 5
    )
    mark = ledger.get_mark(MODEL, "1")
    assert mark is not None
    assert (mark.stage, mark.aliases) == ("Staging", ["champion"])
    assert pending_of(mark) == ("req-2", "Production", T0 + 5)


def test_mark_applied_stage_target_sets_stage_and_clears_matching_pending(
    ledger: Ledger,
) -> None:
    ledger.mark_pending(MODEL, "1", request_id="req-1", target="Staging", stage="None", now_ms=T0)
    ledger.mark_applied(
        MODEL, "1", target="Staging", archive_others=False, now_ms=T0 + 10, request_id="req-1"
    )
    mark = ledger.get_mark(MODEL, "1")
    assert mark is not None
    assert (mark.stage, mark.aliases, mark.updated_ms) == ("Staging", [], T0 + 10)
    assert pending_of(mark) == (None, None, None)


def test_mark_applied_without_prior_mark_creates_one(ledger: Ledger) -> None:
    ledger.mark_applied(MODEL, "3", target="Production", archive_others=False, now_ms=T0)
    mark = ledger.get_mark(MODEL, "3")
    assert mark is not None
    assert (mark.stage, mark.aliases, mark.updated_ms) == ("Production", [], T0)
    assert pending_of(mark) == (None, None, None)


def test_mark_applied_keeps_pending_of_another_request(ledger: Ledger) -> None:
    ledger.mark_pending(MODEL, "1", request_id="req-B", target="Staging", stage="None", now_ms=T0)
    ledger.mark_applied(
        MODEL, "1", target="Staging", archive_others=False, now_ms=T0 + 1, request_id="req-A"
    )
    mark = ledger.get_mark(MODEL, "1")
    assert mark is not None
    assert mark.stage == "Staging"
    assert pending_of(mark) == ("req-B", "Staging", T0)


def test_mark_applied_without_request_id_clears_any_pending(ledger: Ledger) -> None:
    ledger.mark_pending(MODEL, "1", request_id="req-B", target="Staging", stage="None", now_ms=T0)
    ledger.mark_applied(MODEL, "1", target="Staging", archive_others=False, now_ms=T0 + 1)
    assert pending_of(ledger.get_mark(MODEL, "1")) == (None, None, None)


def test_mark_applied_alias_moves_it_off_other_versions(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="Production", aliases=["champion", "stable"], now_ms=T0)
    ledger.mark_observed(MODEL, "2", stage="Staging", aliases=["challenger"], now_ms=T0)
    ledger.mark_observed("other-model", "1", stage="None", aliases=["champion"], now_ms=T0)

    ledger.mark_applied(MODEL, "2", target="@champion", archive_others=True, now_ms=T0 + 1)

    assert marks_of(ledger) == {
        "1": ("Production", ["stable"]),
        "2": ("Staging", ["challenger", "champion"]),  # stage untouched, aliases sorted
    }
    # Another model's alias of the same name is its own.
    assert marks_of(ledger, "other-model") == {"1": ("None", ["champion"])}


def test_mark_applied_alias_on_new_version_keeps_stage_none(ledger: Ledger) -> None:
    ledger.mark_applied(MODEL, "5", target="@champion", archive_others=False, now_ms=T0)
    assert marks_of(ledger) == {"5": ("None", ["champion"])}


def test_mark_applied_alias_twice_keeps_one(ledger: Ledger) -> None:
    for now in (T0, T0 + 1):
        ledger.mark_applied(MODEL, "1", target="@champion", archive_others=False, now_ms=now)
    assert marks_of(ledger) == {"1": ("None", ["champion"])}


def test_mark_applied_archive_others_archives_that_stage_only(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="Production", aliases=[], now_ms=T0)
    ledger.mark_observed(MODEL, "2", stage="Production", aliases=["champion"], now_ms=T0)
    ledger.mark_observed(MODEL, "3", stage="Staging", aliases=[], now_ms=T0)
    ledger.mark_observed("other-model", "1", stage="Production", aliases=[], now_ms=T0)

    ledger.mark_applied(MODEL, "3", target="Production", archive_others=True, now_ms=T0 + 1)

    assert marks_of(ledger) == {
        "1": ("Archived", []),
        "2": ("Archived", ["champion"]),
        "3": ("Production", []),
    }
    assert marks_of(ledger, "other-model") == {"1": ("Production", [])}


def test_mark_applied_staging_with_archive_others(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="Staging", aliases=[], now_ms=T0)
    ledger.mark_observed(MODEL, "2", stage="Production", aliases=[], now_ms=T0)
    ledger.mark_applied(MODEL, "3", target="Staging", archive_others=True, now_ms=T0 + 1)
    assert marks_of(ledger) == {
        "1": ("Archived", []),
        "2": ("Production", []),
        "3": ("Staging", []),
    }


def test_mark_applied_without_archive_others_leaves_other_versions(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="Production", aliases=[], now_ms=T0)
    ledger.mark_applied(MODEL, "2", target="Production", archive_others=False, now_ms=T0 + 1)
    assert marks_of(ledger) == {"1": ("Production", []), "2": ("Production", [])}


def test_archive_others_does_nothing_for_archived_or_none(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="Archived", aliases=[], now_ms=T0)
    ledger.mark_observed(MODEL, "2", stage="None", aliases=[], now_ms=T0)
    ledger.mark_observed(MODEL, "3", stage="Production", aliases=[], now_ms=T0)
    ledger.mark_observed(MODEL, "4", stage="Production", aliases=[], now_ms=T0)

    ledger.mark_applied(MODEL, "3", target="Archived", archive_others=True, now_ms=T0 + 1)
    ledger.mark_applied(MODEL, "4", target="None", archive_others=True, now_ms=T0 + 2)

    assert marks_of(ledger) == {
        "1": ("Archived", []),
        "2": ("None", []),
        "3": ("Archived", []),
        "4": ("None", []),
    }


def test_clear_pending_only_for_the_matching_request(ledger: Ledger) -> None:
    ledger.mark_pending(MODEL, "1", request_id="req-1", target="Staging", stage="None", now_ms=T0)

    ledger.clear_pending(MODEL, "1", "req-other")
    assert pending_of(ledger.get_mark(MODEL, "1")) == ("req-1", "Staging", T0)

    ledger.clear_pending(MODEL, "1", "req-1")
    mark = ledger.get_mark(MODEL, "1")
    assert pending_of(mark) == (None, None, None)
    assert mark is not None and mark.stage == "None"  # nothing else changes


def test_clear_pending_of_unknown_version_does_nothing(ledger: Ledger) -> None:
    ledger.clear_pending(MODEL, "404", "req-1")
    assert ledger.get_mark(MODEL, "404") is None


def test_mark_observed_creates_and_overwrites(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="Staging", aliases=["b", "a"], now_ms=T0)
    mark = ledger.get_mark(MODEL, "1")
    assert mark is not None
    assert (mark.stage, mark.aliases, mark.updated_ms) == ("Staging", ["a", "b"], T0)

    ledger.mark_observed(MODEL, "1", stage="Production", aliases=[], now_ms=T0 + 7)
    mark = ledger.get_mark(MODEL, "1")
    assert mark is not None
    assert (mark.stage, mark.aliases, mark.updated_ms) == ("Production", [], T0 + 7)


def test_mark_observed_takes_its_aliases_off_other_versions(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="Production", aliases=["champion", "stable"], now_ms=T0)
    ledger.mark_observed(MODEL, "2", stage="Staging", aliases=["challenger"], now_ms=T0)
    ledger.mark_observed("other-model", "9", stage="None", aliases=["champion"], now_ms=T0)

    ledger.mark_observed(MODEL, "3", stage="None", aliases=["champion", "challenger"], now_ms=T0)

    assert marks_of(ledger) == {
        "1": ("Production", ["stable"]),
        "2": ("Staging", []),
        "3": ("None", ["challenger", "champion"]),
    }
    assert marks_of(ledger, "other-model") == {"9": ("None", ["champion"])}


def test_model_marks_and_all_marks(ledger: Ledger) -> None:
    ledger.mark_observed(MODEL, "1", stage="None", aliases=[], now_ms=T0)
    ledger.mark_observed(MODEL, "2", stage="Staging", aliases=[], now_ms=T0)
    ledger.mark_pending("other-model", "1", request_id="r", target="@x", stage="None", now_ms=T0)

    assert sorted(m.version for m in ledger.model_marks(MODEL)) == ["1", "2"]
    assert [m.version for m in ledger.model_marks("other-model")] == ["1"]
    assert ledger.model_marks("nobody") == []

    everything = ledger.all_marks()
    assert set(everything) == {(MODEL, "1"), (MODEL, "2"), ("other-model", "1")}
    assert everything[(MODEL, "2")].stage == "Staging"
    assert everything[("other-model", "1")].pending_target == "@x"


def test_marks_round_trip_awkward_names(ledger: Ledger) -> None:
    model = "team/mödel 'quoted' ✓"
    ledger.mark_observed(model, "12", stage="Staging", aliases=["blue-green", "v1.2"], now_ms=T0)
    mark = ledger.get_mark(model, "12")
    assert mark is not None
    assert mark.aliases == ["blue-green", "v1.2"]
    assert list(ledger.all_marks()) == [(model, "12")]


# --------------------------------------------------------------------------------------------
# Inbound hooks
# --------------------------------------------------------------------------------------------


def inbound(
    row_id: str,
    *,
    source: str = "decision",
    message_id: str | None = "msg-1",
    outcome: str = "PROCESSING",
    received_ms: int = T0,
    **fields: Any,
) -> InboundHookRow:
    claim = fields.pop("claim", f"{source}/{message_id}" if message_id else None)
    return InboundHookRow(
        id=row_id,
        source=source,
        message_id=message_id,
        claim=claim,
        outcome=outcome,
        received_ms=received_ms,
        **fields,
    )


def inbound_by_id(ledger: Ledger) -> dict[str, InboundHookRow]:
    return {row.id: row for row in ledger.list_inbound()}


def test_claim_inbound_first_wins_replay_refused(ledger: Ledger) -> None:
    assert ledger.claim_inbound(inbound("in-1")) is True
    assert ledger.claim_inbound(inbound("in-2", received_ms=T0 + 1)) is False

    rows = inbound_by_id(ledger)
    assert set(rows) == {"in-1"}  # the replay left no row
    assert rows["in-1"].claim == "decision/msg-1"
    assert rows["in-1"].outcome == "PROCESSING"


def test_claims_are_per_source_and_message(ledger: Ledger) -> None:
    assert ledger.claim_inbound(inbound("in-1", source="decision", message_id="m"))
    assert ledger.claim_inbound(inbound("in-2", source="mlflow", message_id="m"))
    assert ledger.claim_inbound(inbound("in-3", source="decision", message_id="n"))
    assert set(inbound_by_id(ledger)) == {"in-1", "in-2", "in-3"}


def test_recent_processing_claim_is_not_taken_over(ledger: Ledger) -> None:
    assert ledger.claim_inbound(inbound("in-1"), stale_after_ms=1_000)
    assert not ledger.claim_inbound(inbound("in-2", received_ms=T0 + 999), stale_after_ms=1_000)
    rows = inbound_by_id(ledger)
    assert set(rows) == {"in-1"}
    assert (rows["in-1"].outcome, rows["in-1"].claim) == ("PROCESSING", "decision/msg-1")


def test_stale_processing_claim_is_taken_over(ledger: Ledger) -> None:
    assert ledger.claim_inbound(inbound("in-1"), stale_after_ms=1_000)
    assert ledger.claim_inbound(inbound("in-2", received_ms=T0 + 1_000), stale_after_ms=1_000)

    rows = inbound_by_id(ledger)
    assert set(rows) == {"in-1", "in-2"}
    old, new = rows["in-1"], rows["in-2"]
    assert (old.outcome, old.claim) == ("ERROR", None)
    assert old.reason and "abandoned" in old.reason
    assert (new.outcome, new.claim) == ("PROCESSING", "decision/msg-1")
    # And the new holder is itself protected from a replay.
    assert not ledger.claim_inbound(inbound("in-3", received_ms=T0 + 1_001), stale_after_ms=1_000)


def test_stale_after_defaults_to_two_minutes(ledger: Ledger) -> None:
    assert ledger.claim_inbound(inbound("in-1"))
    assert not ledger.claim_inbound(inbound("in-2", received_ms=T0 + 119_999))
    assert ledger.claim_inbound(inbound("in-3", received_ms=T0 + 120_000))


def test_finished_claims_are_never_taken_over(ledger: Ledger) -> None:
    for outcome, message_id in (("ACCEPTED", "a"), ("REFUSED", "r")):
        assert ledger.claim_inbound(inbound(f"in-{message_id}", message_id=message_id))
        ledger.finish_inbound(f"in-{message_id}", outcome=outcome, reason=None)
        late = inbound(f"late-{message_id}", message_id=message_id, received_ms=T0 + 10**9)
        assert ledger.claim_inbound(late, stale_after_ms=1) is False

    rows = inbound_by_id(ledger)
    assert set(rows) == {"in-a", "in-r"}
    assert (rows["in-a"].outcome, rows["in-a"].claim) == ("ACCEPTED", "decision/a")
    assert (rows["in-r"].outcome, rows["in-r"].claim) == ("REFUSED", "decision/r")


def test_finish_inbound_sets_outcome_and_fields(ledger: Ledger) -> None:
    assert ledger.claim_inbound(inbound("in-1"))
    ledger.finish_inbound(
        "in-1",
        outcome="ACCEPTED",
        reason="approved",
        event="TRANSITION_REQUEST_APPROVED",
        user_id="bob@example.com",
        request_id="req-9",
    )
    row = inbound_by_id(ledger)["in-1"]
    assert (row.outcome, row.reason, row.claim) == ("ACCEPTED", "approved", "decision/msg-1")
    assert (row.event, row.user_id, row.request_id) == (
        "TRANSITION_REQUEST_APPROVED",
        "bob@example.com",
        "req-9",
    )


def test_finish_inbound_error_releases_the_claim(ledger: Ledger) -> None:
    assert ledger.claim_inbound(inbound("in-1"))
    ledger.finish_inbound("in-1", outcome="ERROR", reason="temporal unavailable")
    row = inbound_by_id(ledger)["in-1"]
    assert (row.outcome, row.reason, row.claim) == ("ERROR", "temporal unavailable", None)

    # The sender's retry is processed, at once (no need to wait for staleness).
    assert ledger.claim_inbound(inbound("in-2", received_ms=T0 + 1))
    assert inbound_by_id(ledger)["in-2"].claim == "decision/msg-1"


def test_finish_inbound_of_unknown_row_does_nothing(ledger: Ledger) -> None:
    ledger.finish_inbound("nope", outcome="ACCEPTED", reason=None)
    assert ledger.list_inbound() == []


def test_record_inbound_never_claims(ledger: Ledger) -> None:
    ledger.record_inbound(inbound("in-forged", outcome="REFUSED", reason="bad signature"))
    row = inbound_by_id(ledger)["in-forged"]
    assert (row.claim, row.outcome, row.reason) == (None, "REFUSED", "bad signature")

    # A forged message never uses up the id of a genuine one.
    assert ledger.claim_inbound(inbound("in-genuine", received_ms=T0 + 1))
    # Refused messages without a claim can be recorded any number of times.
    ledger.record_inbound(inbound("in-forged-2", outcome="REFUSED", received_ms=T0 + 2))
    assert set(inbound_by_id(ledger)) == {"in-forged", "in-genuine", "in-forged-2"}


def test_list_inbound_newest_first_filtered_and_limited(ledger: Ledger) -> None:
    ledger.claim_inbound(inbound("d-1", source="decision", message_id="1", received_ms=T0))
    ledger.claim_inbound(inbound("m-1", source="mlflow", message_id="1", received_ms=T0 + 10))
    ledger.record_inbound(inbound("d-2", source="decision", message_id=None, received_ms=T0 + 20))
    ledger.claim_inbound(inbound("m-2", source="mlflow", message_id="2", received_ms=T0 + 30))

    assert [r.id for r in ledger.list_inbound()] == ["m-2", "d-2", "m-1", "d-1"]
    assert [r.id for r in ledger.list_inbound("decision")] == ["d-2", "d-1"]
    assert [r.id for r in ledger.list_inbound("mlflow")] == ["m-2", "m-1"]
    assert ledger.list_inbound("nobody") == []
    assert [r.id for r in ledger.list_inbound(limit=2)] == ["m-2", "d-2"]
    assert [r.id for r in ledger.list_inbound("decision", limit=1)] == ["d-2"]


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


def test_append_activities_is_idempotent_by_id(ledger: Ledger) -> None:
    entry = system_entry("oob-1")
    ledger.append_activities([entry])
    ledger.append_activities([entry])
    # Same id, different content: the first write stands.
    ledger.append_activities([system_entry("oob-1", to_stage="Archived", ts=T0 + 5)])

    assert ledger.list_activities(MODEL, "1") == [entry]
    stored = ledger.list_activities(MODEL, "1")[0]
    assert stored.request_id == ""  # stored as NULL, read back as ""
    assert stored.activity_type == AuditType.SYSTEM_TRANSITION


def test_append_activities_batch_with_duplicates_inside(ledger: Ledger) -> None:
    a, b = system_entry("oob-a", ts=T0), system_entry("oob-b", ts=T0 + 1, to_stage="Staging")
    ledger.append_activities([a, b])
    ledger.append_activities([b, system_entry("oob-c", ts=T0 + 2, version="2"), a])

    assert [e.id for e in ledger.list_activities(MODEL, "1")] == ["oob-a", "oob-b"]
    assert [e.id for e in ledger.list_activities(MODEL, "2")] == ["oob-c"]


def test_append_activities_keeps_a_request_id(ledger: Ledger) -> None:
    entry = system_entry(
        "bg-1",
        request_id="req-7",
        activity_type=AuditType.APPLIED_TRANSITION,
        user_id="oncall@example.com",
        comment="break glass",
    )
    ledger.append_activities([entry])
    assert ledger.list_activities(MODEL, "1") == [entry]


def test_append_no_activities_does_nothing(ledger: Ledger) -> None:
    ledger.append_activities([])
    assert ledger.list_activities(MODEL, "1") == []


# --------------------------------------------------------------------------------------------
# Reconciler runs
# --------------------------------------------------------------------------------------------


def run_row(run_id: str, started_ms: int, **fields: Any) -> ReconcilerRunRow:
    return ReconcilerRunRow(id=run_id, started_ms=started_ms, finished_ms=started_ms + 50, **fields)


def test_reconciler_runs_newest_first_with_limit(ledger: Ledger) -> None:
    assert ledger.list_reconciler_runs() == []

    ledger.add_reconciler_run(run_row("r-1", T0, versions=10, changes=0, baseline=True))
    assert [run.id for run in ledger.list_reconciler_runs()] == ["r-1"]

    ledger.add_reconciler_run(run_row("r-3", T0 + 2_000, versions=11, changes=2))
    ledger.add_reconciler_run(run_row("r-2", T0 + 1_000, versions=10, changes=0))

    runs = ledger.list_reconciler_runs()
    assert [r.id for r in runs] == ["r-3", "r-2", "r-1"]
    assert [(r.versions, r.changes, r.baseline) for r in runs] == [
        (11, 2, False),
        (10, 0, False),
        (10, 0, True),
    ]
    assert runs[0].finished_ms == T0 + 2_050
    assert [r.id for r in ledger.list_reconciler_runs(limit=2)] == ["r-3", "r-2"]
    assert [r.id for r in ledger.list_reconciler_runs(limit=1)] == ["r-3"]


def test_mark_observed_ends_a_pending_mark_only_once_it_is_stale(ledger: Ledger) -> None:
    ledger.mark_pending("m", "1", request_id="r1", target="@x", stage="None", now_ms=T0)
    ledger.mark_observed("m", "1", stage="None", aliases=[], now_ms=T0 + 1000)
    mark = ledger.get_mark("m", "1")
    assert mark is not None and mark.pending_target == "@x"  # still being applied

    ledger.mark_observed("m", "1", stage="None", aliases=[], now_ms=T0 + PENDING_GRACE_MS)
    mark = ledger.get_mark("m", "1")
    assert mark is not None
    assert (mark.pending_request, mark.pending_target, mark.pending_ms) == (None, None, None)


def test_an_exclusive_mark_is_refused_while_another_move_holds_it(ledger: Ledger) -> None:
    def mark(request_id: str, now_ms: int, exclusive: bool = True) -> bool:
        return ledger.mark_pending(
            "m",
            "1",
            request_id=request_id,
            target="Production",
            stage="None",
            now_ms=now_ms,
            exclusive=exclusive,
        )

    assert mark("a", T0) is True  # creates the mark
    assert mark("b", T0 + 1) is False  # held by a
    held = ledger.get_mark("m", "1")
    assert held is not None and held.pending_request == "a"
    assert mark("a", T0 + 2) is True  # the holder again (its own retry)
    assert mark("b", T0 + 2 + PENDING_GRACE_MS) is True  # a never came back: stale
    assert mark("c", T0 + 3 + PENDING_GRACE_MS, exclusive=False) is True  # governed: no check
    ledger.clear_pending("m", "1", "c")
    assert mark("d", T0 + 4 + PENDING_GRACE_MS) is True  # free again


def test_an_event_goes_only_to_webhooks_that_existed_when_it_happened(ledger: Ledger) -> None:
    def hook(hook_id: str, created_ms: int) -> WebhookRow:
        return WebhookRow(
            id=hook_id,
            model_name="m",
            events=["COMMENT_CREATED"],
            status="ACTIVE",
            url="https://receiver.example/hook",
            created_by="ada",
            created_ms=created_ms,
            updated_ms=created_ms,
        )

    ledger.add_webhook(hook("early", T0))
    ledger.add_webhook(hook("late", T0 + 10_000))
    matching = ledger.matching_webhooks
    assert [h.id for h in matching("COMMENT_CREATED", "m", T0 + 5_000)] == ["early"]
    assert sorted(h.id for h in matching("COMMENT_CREATED", "m", T0 + 10_000)) == ["early", "late"]
    assert sorted(h.id for h in matching("COMMENT_CREATED", "m")) == ["early", "late"]


def test_activities_since_lists_one_type_from_a_time_on(ledger: Ledger) -> None:
    ledger.append_activities(
        [
            system_entry("old", ts=T0),
            system_entry("new", ts=T0 + 1_000),
        ]
    )
    found = ledger.activities_since(AuditType.SYSTEM_TRANSITION, T0 + 1)
    assert [entry.id for entry in found] == ["new"]
    assert ledger.activities_since(AuditType.NEW_COMMENT, T0) == []
